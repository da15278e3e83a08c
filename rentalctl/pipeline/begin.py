"""The first state of every run (job ``begin``), however the execution was started (``rentalctl
run``, the schedule, the console): take the pipeline lock, open the run record, and settle the
runs that ended without closing theirs.

The lock's holder is alive while its run can still act: locally while its process lives
(``lock.is_stale``); on AWS while its execution is RUNNING (DescribeExecution), since a stopped,
timed-out or failed execution runs no more states — not even RecordFailure. A run held by a live
other run is refused (LockHeld); the failure path of the refused run then releases nothing and
settles nothing of the other run's (it holds no lock; its record is its own).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from rentalctl import aws
from rentalctl import run_records as records
from rentalctl.context import Context
from rentalctl.curated import output_prefix
from rentalctl.errors import ConfigError
from rentalctl.pipeline.settle import settle_failed_run
from rentalctl.run.layout import run_folder, run_prefix
from rentalctl.run_lock import describe_self, is_stale

log = logging.getLogger(__name__)


def begin(
    ctx: Context,
    run_id: str,
    *,
    execution_arn: str | None,
    mode: str,
    since: str | None,
    until: str | None,
    tables: list[str],
) -> dict[str, Any]:
    aws = ctx.settings.target == "aws"
    if aws and not execution_arn:
        raise ConfigError("job argument --execution_id is required on AWS")
    execution_status = _execution_status(ctx) if aws else None
    holder, is_stale = _holder(run_id, execution_arn, execution_status)
    # A holder with this very run id is this run: the local CLI takes the lock before it starts
    # the executor, and a retried Begin finds its own lock.
    ctx.state.acquire_lock(holder, lambda h: h.get("run_id") == run_id or is_stale(h))
    records.start(
        ctx,
        run_id,
        mode=mode,
        since=since,
        until=until,
        tables=tables,
        target=ctx.settings.target,
        execution_arn=execution_arn if aws else None,
    )
    settled = settle_stale(ctx, run_id, execution_arn, execution_status)
    return {"lock": run_id, "settled": settled}


def _holder(
    run_id: str,
    execution_arn: str | None,
    execution_status: Callable[[str], str | None] | None,
) -> tuple[dict[str, Any], Callable[[dict[str, Any]], bool]]:
    if execution_status is None:
        return describe_self(run_id), is_stale
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    holder = {
        "run_id": run_id,
        "host": "aws-step-functions",
        "execution_arn": execution_arn,
        "acquired_at": now,
        "heartbeat_at": now,
    }

    def stale(other: dict[str, Any]) -> bool:
        if other.get("pid") and not other.get("execution_arn"):
            return is_stale(other)  # an operator's command (`bookmarks set`) on a machine
        arn = other.get("execution_arn") or _sibling(str(execution_arn), str(other["run_id"]))
        return execution_status(arn) != "RUNNING"

    return holder, stale


def holder_is_stale(ctx: Context) -> Callable[[dict[str, Any]], bool]:
    """Whether a lock holder is gone, judged as ``begin`` judges it: by its process locally, by
    its execution's status on AWS."""
    if ctx.settings.target != "aws":
        return is_stale
    execution_status = _execution_status(ctx)

    def stale(holder: dict[str, Any]) -> bool:
        arn = holder.get("execution_arn")
        return execution_status(arn) != "RUNNING" if arn else is_stale(holder)

    return stale


def _sibling(execution_arn: str, run_id: str) -> str:
    """The ARN of the execution named ``run_id`` of the same state machine."""
    return f"{execution_arn.rsplit(':', 1)[0]}:{run_id}"


def _execution_status(ctx: Context) -> Callable[[str], str | None]:
    """The status of an execution by ARN (None when it does not exist, or no longer)."""
    client = aws.client("stepfunctions", ctx._session())

    def status(arn: str) -> str | None:
        with aws.errors(f"reading execution {arn}"):
            try:
                return str(client.describe_execution(executionArn=arn)["status"])
            except client.exceptions.ExecutionDoesNotExist:
                return None

    return status


def settle_stale(
    ctx: Context,
    run_id: str,
    execution_arn: str | None,
    execution_status: Callable[[str], str | None] | None,
) -> list[str]:
    """Close and settle every other run still RUNNING whose run is over; returns their ids.
    Called holding the lock: locally no other run can still be running then; on AWS an
    execution between its start and its Begin has no record yet, and one that is RUNNING is
    left alone."""
    settled = []
    for record in ctx.state.list_runs(50):
        other = str(record["run_id"])
        if record.get("status") != "RUNNING" or other == run_id:
            continue
        if execution_status is None:
            abandon(ctx, other, run_id)
        else:
            arn = record.get("execution_arn") or _sibling(str(execution_arn), other)
            status = execution_status(arn)
            if status == "RUNNING":
                continue
            ended = status or "gone (its history expired)"
            close_failed(
                ctx,
                other,
                {
                    "Error": f"Rentalctl.Execution{(status or 'Gone').title().replace('_', '')}",
                    "Cause": f"its execution {arn} ended {ended} without closing the run "
                    f"record; settled by run {run_id}",
                },
            )
        settled.append(other)
    return settled


def abandon(ctx: Context, dead_run: str | None, by_run: str) -> None:
    """A local run whose process died holding the lock never finished: say so in its record,
    and put right what it left."""
    record = ctx.state.get_run(dead_run) if dead_run else None
    if record and record.get("status") == "RUNNING":
        close_failed(
            ctx,
            str(dead_run),
            {
                "Error": "Rentalctl.Abandoned",
                "Cause": f"its process ended without finishing (killed, or the machine "
                f"restarted); the lock was recovered by run {by_run}",
            },
        )


def close_failed(ctx: Context, run_id: str, error: dict[str, Any]) -> None:
    log.warning("run %s ended without closing its record: %s", run_id, error["Cause"])
    record = records.update(ctx, run_id, status="FAILED", ended_at=records.now(), error=error)
    settle_failed_run(ctx, run_id)
    discard_unfinished_writes(ctx, run_id, list(record.get("tables") or []))


def discard_unfinished_writes(ctx: Context, run_id: str, tables: list[str]) -> None:
    """A run that died mid-write (kill -9 while one of its tables wrote a step record, say)
    leaves temporary files in its folders. No reader takes them for data, but nothing else
    would remove them; the run is over, so none of them can still be written."""
    prefixes = [run_folder(run_id)]
    for name in tables:
        prefixes += [run_prefix(name, run_id)]
        prefixes += [output_prefix(kind, name, run_id) for kind in ("curated", "rejected")]
    removed = sum(ctx.lake.discard_unfinished(prefix) for prefix in prefixes)
    if removed:
        log.info("removed %s unfinished file(s) left by run %s", removed, run_id)
