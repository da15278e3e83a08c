"""Resume a failed run (``rentalctl run --resume RUN_ID``): the same run id, tables and windows,
from where it failed.

Every step of a run records its result in the lake (``runs/run_id=<id>/``), and a step whose
result is there does not run again (``jobs._step``). So a resumed run goes through the state
machine from the top, and the steps that completed before are skipped: extracts keep their
files and windows, the transform keeps the tables it finished, the merge, the KPI rebuild and the
bookmark commit are not repeated once recorded. What the failure settled is undone first: the
raw rows it discarded are loaded again (their raw-load results are set aside, so the load runs
again), and the failure markers are set aside so that a failure recorded as final does not end
the resumed run at once. Both go to ``runs/run_id=<id>/attempt-<n>/``, with the record of the
failed attempt kept in the run record's ``attempts``.

A run is resumed only while it is the latest run: a later run read the same windows again (a
failed run moves no bookmark), so resuming after it would only repeat that work.
"""

from __future__ import annotations

from typing import Any

from rentalctl.context import Context
from rentalctl.errors import ConfigError
from rentalctl.pipeline.settle import DISCARDED, PENDING
from rentalctl.run.layout import result_key, run_folder

RESUMABLE = ("FAILED", "CANCELLED", "ABORTED", "TIMED_OUT")
_ATTEMPT_FIELDS = ("started_at", "ended_at", "status", "error", "states", DISCARDED, PENDING)


def check_resumable(ctx: Context, run_id: str) -> dict[str, Any]:
    """The run's record, or ConfigError saying why the run cannot be resumed."""
    record = ctx.state.get_run(run_id)
    if record is None:
        raise ConfigError(f"no run {run_id} in {ctx.state.name}: see `rentalctl status`")
    status = record.get("status")
    if status == "SUCCEEDED":
        raise ConfigError(f"run {run_id} succeeded: there is nothing to resume")
    if status not in RESUMABLE:
        raise ConfigError(
            f"run {run_id} is {status}: only a run that ended without success can be resumed "
            "(a run whose process died is settled by the next run, and can then be resumed)"
        )
    later = [
        r["run_id"]
        for r in ctx.state.list_runs(50)
        if r["run_id"] != run_id and str(r.get("started_at")) > str(record.get("started_at"))
    ]
    if later:
        raise ConfigError(
            f"run {run_id} cannot be resumed: run {later[-1]} started after it and read its "
            "windows again (a failed run moves no bookmark), so its rows were settled by that "
            "run; start a new run (or a backfill) instead"
        )
    return record


def reopen(ctx: Context, run_id: str, execution_arn: str | None = None) -> dict[str, Any]:
    """Undo what the failure settled and mark the run RUNNING again, keeping the failed
    attempt in ``attempts``; returns the record. Called holding the pipeline lock (locally), or
    right before the new execution ``execution_arn`` starts (on AWS). Should the run then not
    start, the next run's Begin settles it again, as any run that ended without closing its
    record."""
    record = check_resumable(ctx, run_id)
    attempt = len(record.get("attempts") or []) + 1
    aside = f"{run_folder(run_id)}attempt-{attempt}/"
    reload = sorted(set(record.get(PENDING) or []) | set(record.get(DISCARDED) or {}))
    for table in reload:
        key = result_key(run_id, "load-raw", table)
        if ctx.lake.exists(key):
            ctx.lake.move(key, aside + key.rsplit("/", 1)[1])
    failed = run_folder(run_id) + "failed/"
    for key in ctx.lake.list(failed):
        ctx.lake.move(key, aside + key[len(run_folder(run_id)) :])

    def reopen_record(found: dict[str, Any] | None) -> dict[str, Any]:
        current = dict(found or record)
        past = {k: current[k] for k in _ATTEMPT_FIELDS if k in current}
        for k in ("states", DISCARDED, PENDING):
            current.pop(k, None)
        attempts = [*(current.get("attempts") or []), past]
        reopened = {**current, "attempts": attempts, "status": "RUNNING"}
        reopened.update(ended_at=None, error=None)
        if execution_arn:
            reopened["execution_arn"] = execution_arn
        return reopened

    return ctx.state.update_run(run_id, reopen_record)
