"""Run the pipeline on AWS: start an execution of the deployed state machine, follow it through
its execution history, and read a run's state back for ``rentalctl status``.

The run record is opened by the run's first Glue job (``begin``), however the execution was
started, and closed by its last (``publish`` or ``record-failure``). This module writes the
record only once the execution has ended: while it runs, those jobs may write the same record,
and a read-modify-write from here could put an old status back. Live progress therefore comes
from the execution history, fed to the same ``StateTracker`` a local run uses.

The pipeline lock is taken by ``begin`` in the state store. ``start`` refuses at once while an
execution runs (``LockHeld``, exit 4), a fast answer before anything starts; two starts in the
same instant can both pass that check, and the second one's ``begin`` then refuses its run.

``StepFunctionsRunner`` is the runner of the AWS target. botocore is imported where used: local
commands (``status``, ``report``) import this module too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rentalctl import aws
from rentalctl import run_records as records
from rentalctl.context import Context
from rentalctl.errors import ConfigError, LockHeld, ResourceUnavailable, StoppedFollowing
from rentalctl.orchestration.cancel import CANCELLED, ERROR, close_cancelled
from rentalctl.orchestration.progress import StateTracker
from rentalctl.orchestration.resume import reopen
from rentalctl.orchestration.runner import Ended, Launch, Progress, Runner, Started
from rentalctl.pipeline.begin import close_failed

DEPLOY_HINT = "run `rentalctl deploy-sfn`"
# AWS error codes meaning the credentials, permissions or service are the problem (exit 3).


def _sfn(ctx: Context) -> Any:
    return aws.client("stepfunctions", ctx._session())


def state_machine_arn(ctx: Context) -> str:
    """The ARN of the deployed state machine (``aws.state_machine_name`` in this account)."""
    return aws.state_machine_arn(ctx._session(), ctx.settings.aws.state_machine_name)


def _missing(arn: str) -> ResourceUnavailable:
    return ResourceUnavailable(f"state machine {arn} does not exist: {DEPLOY_HINT}")


def start(
    ctx: Context,
    *,
    run_id: str,
    mode: str,
    since: str | None,
    until: str | None,
    tables: list[str],
    name: str | None = None,
    before: Callable[[str], object] | None = None,
) -> str:
    """Start a run as an execution named ``run_id`` (or ``name``: a resumed run's new
    execution); returns the execution's ARN. ``before(arn)`` runs once no other execution is
    running, right before this one starts.

    Raises LockHeld when an execution of the state machine is running, ResourceUnavailable
    when the state machine is not deployed, ConfigError when ``run_id`` was used already.
    Writes no record: the execution's ``begin`` job opens it.
    """
    from botocore.exceptions import ClientError

    sfn = _sfn(ctx)
    machine = state_machine_arn(ctx)
    with aws.errors(f"listing the running executions of {machine}"):
        try:
            running = sfn.list_executions(
                stateMachineArn=machine, statusFilter="RUNNING", maxResults=10
            )["executions"]
        except ClientError as exc:
            if aws.error_code(exc) == "StateMachineDoesNotExist":
                raise _missing(machine) from None
            raise
    if running:
        other = min(running, key=lambda e: e["startDate"])
        started = _iso(other["startDate"])
        raise LockHeld(
            f"run {other['name']} is running on AWS (execution {other['executionArn']}, "
            f"started {started}): wait for it to end (`rentalctl status {other['name']}`) or "
            f"stop that execution"
        )

    payload = {"run_id": run_id, "mode": mode, "since": since, "until": until, "tables": tables}
    name = name or run_id
    if before is not None:
        before(execution_arn(machine, name))
    with aws.errors(f"starting an execution of {machine}"):
        try:
            return str(
                sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(payload))[
                    "executionArn"
                ]
            )
        except ClientError as exc:
            code = aws.error_code(exc)
            if code == "StateMachineDoesNotExist":
                raise _missing(machine) from None
            if code == "ExecutionAlreadyExists":
                raise ConfigError(
                    f"run id {run_id!r} was used by an execution of {machine} already: "
                    f"choose another"
                ) from None
            if code in ("InvalidName", "InvalidExecutionInput", "ValidationException"):
                raise ConfigError(f"starting run {run_id}: AWS refused it ({code})") from None
            raise


def execution_arn(machine_arn: str, name: str) -> str:
    """The ARN an execution named ``name`` of the state machine ``machine_arn`` gets."""
    return f"{machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _plain(event: dict[str, Any]) -> dict[str, Any]:
    """An event as the tracker and the record store take it: timestamps as ISO strings."""
    return {k: _iso(v) if isinstance(v, datetime) else v for k, v in event.items()}


class _History:
    """The events of one execution, read in pages, each event handed out once.

    Step Functions has no "events after id N" cursor (a ``nextToken`` exists only while more
    pages follow), so each read pages from the start and skips the events already seen.
    """

    def __init__(self, sfn: Any, execution_arn: str) -> None:
        self.sfn = sfn
        self.arn = execution_arn
        self.last_id = 0

    def new_events(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": self.arn, "maxResults": 1000}
        with aws.errors(f"reading the history of execution {self.arn}"):
            while True:
                page = self.sfn.get_execution_history(**kwargs)
                events += [_plain(e) for e in page["events"] if int(e["id"]) > self.last_id]
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
        events.sort(key=lambda e: int(e["id"]))
        if events:
            self.last_id = int(events[-1]["id"])
        return events


def _describe(sfn: Any, execution_arn: str) -> dict[str, Any]:
    with aws.errors(f"reading execution {execution_arn}"):
        return dict(sfn.describe_execution(executionArn=execution_arn))


def _outcome(description: dict[str, Any]) -> dict[str, Any]:
    """The fields that close a run record, from a finished execution's description."""
    status = str(description["status"])
    if status == "SUCCEEDED":
        return {"status": "SUCCEEDED", "ended_at": _ended(description), "error": None}
    error = {
        "Error": description.get("error") or f"States.{status.title().replace('_', '')}",
        "Cause": description.get("cause") or f"the execution ended {status}",
    }
    return {"status": "FAILED", "ended_at": _ended(description), "error": error}


def _ended(description: dict[str, Any]) -> str:
    stop = description.get("stopDate")
    return _iso(stop) if stop is not None else records.now()


def _close(
    ctx: Context, run_id: str, states: list[dict[str, Any]], description: dict[str, Any]
) -> dict[str, Any]:
    """Store the states of an ended execution; close the record if its jobs could not (a
    stopped or timed-out execution runs no RecordFailure), settling what the run left."""
    record = ctx.state.get_run(run_id)
    fields: dict[str, Any] = {"states": states}
    if record is None or record.get("status") == "RUNNING":
        outcome = _outcome(description)
        if description.get("error") == ERROR:  # stopped by `rentalctl cancel`
            closed = close_cancelled(ctx, run_id, str(description.get("cause")))
            outcome.update(status=CANCELLED, error=closed.get("error"))
        elif outcome["status"] == "FAILED":
            close_failed(ctx, run_id, outcome["error"])
        fields.update(outcome)
    return records.update(ctx, run_id, **fields)


def follow(
    ctx: Context,
    execution_arn: str,
    tables: list[str],
    progress: Progress | None = None,
    poll_seconds: float = 2.0,
    sleep: Callable[[float], Any] = time.sleep,
) -> dict[str, Any]:
    """Follow an execution to its end, reporting each state change; returns the run record."""
    sfn = _sfn(ctx)
    history = _History(sfn, execution_arn)
    tracker = StateTracker(tables)
    while True:
        # Described before the history is read: once it has ended, that read is complete.
        description = _describe(sfn, execution_arn)
        for event in history.new_events():
            change = tracker.feed(event)
            if change and progress:
                progress(change[0], change[1], tracker.states)
        if description["status"] != "RUNNING":
            break
        sleep(poll_seconds)
    return _close(ctx, str(description["name"]), tracker.as_list(), description)


def refresh_status(ctx: Context, record: dict[str, Any]) -> dict[str, Any]:
    """A run record brought up to date from its execution (for ``rentalctl status RUN_ID``).

    A record of a local run, or of an AWS run that ended and has its states, is returned as it
    is. Otherwise its states are rebuilt from the execution history and, when the execution has
    ended, stored (and the record closed if its jobs could not close it). While the execution
    runs, nothing is written: the run's own jobs may be writing the record.
    """
    from botocore.exceptions import ClientError

    arn = record.get("execution_arn")
    if not arn or (record.get("status") != "RUNNING" and record.get("states")):
        return record
    sfn = _sfn(ctx)
    try:
        description = _describe(sfn, arn)
    except ClientError as exc:
        if aws.error_code(exc) == "ExecutionDoesNotExist":
            return record  # its history has expired (90 days): the record is all there is
        raise
    tracker = StateTracker(list(record.get("tables") or []))
    for event in _History(sfn, arn).new_events():
        tracker.feed(event)
    if description["status"] == "RUNNING":
        return {**record, "states": tracker.as_list()}
    return _close(ctx, str(record["run_id"]), tracker.as_list(), description)


class StepFunctionsRunner(Runner):
    """Runs on AWS: an execution named after the run (a resumed run's: ``<run id>.resume-<n>``),
    followed through its history."""

    resumes_in_background = True

    def __init__(self, context: Context) -> None:
        self.context = context

    @property
    def where(self) -> str:
        return f"state store {self.context.settings.state}"

    def _start(self, launch: Launch) -> str:
        context, run_id = self.context, launch.run_id
        context.state.ensure()
        context.state.seed(launch.tables)
        resumed_as = None if launch.resume is None else f"{run_id}.resume-{launch.resume}"
        return start(
            context,
            run_id=run_id,
            mode=launch.mode,
            since=launch.since,
            until=launch.until,
            tables=launch.tables,
            name=resumed_as,
            before=(lambda arn: reopen(context, run_id, arn)) if resumed_as else None,
        )

    def start(self, launch: Launch) -> Started:
        arn = self._start(launch)
        doc = {
            "run_id": launch.run_id,
            "status": "STARTED",
            "mode": launch.mode,
            "tables": launch.tables,
            "execution_arn": arn,
        }
        return Started(
            doc,
            f"Started run {launch.run_id} ({arn}); follow it with "
            f"`rentalctl status {launch.run_id}`",
        )

    def run(self, launch: Launch, progress: Progress | None = None) -> Ended:
        arn = self._start(launch)
        try:
            return Ended(follow(self.context, arn, launch.tables, progress))
        except KeyboardInterrupt:
            # Only this process stops: the execution is AWS's, and stopping it is a decision of
            # its own (`cancel`), not a side effect of leaving the terminal.
            run_id = launch.run_id
            raise StoppedFollowing(
                f"stopped following run {run_id}; its execution goes on in AWS: "
                f"`rentalctl cancel {run_id}` stops it, "
                f"`rentalctl status {run_id} --watch` follows it"
            ) from None
