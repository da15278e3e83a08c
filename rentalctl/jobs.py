"""The pipeline's jobs by name: what each Glue task of the state machine runs.

Four jobs in sequence on the success path (``begin``, ``extract-load`` per table side by side,
``transform``, ``publish``), because each Glue job start costs start-up time; ``record-failure``
runs only on the failure path. On AWS each is a Glue job (``glue/`` entrypoints parse the job
arguments and call ``run_job``); locally the executor's Glue handler calls ``run_job`` in-process
with the same arguments, and with more than one table at a time each table's extract, and on
DuckDB each table's transform, runs in a child process (``rentalctl.pipeline.child``).

Each step inside a job records its result in the lake (``runs/run_id=<id>/<step>[.<table>].json``),
where ``status`` finds it on either target, and a retried job skips the steps whose result is
there. A job that fails for a reason no retry can fix (a bad value, a quality gate, a refused
lock) records that failure first (``failed/<job>[.<table>].json``): the state machine retries
every failed Glue task alike, since on AWS all of them reach it as ``States.TaskFailed``, and a
retried attempt then fails at once with the same error, doing nothing.

The transform job's module is imported where used: the Python shell jobs must not load a module
that imports pyspark.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rentalctl import run_records as records
from rentalctl.context import Context
from rentalctl.errors import (
    ConfigError,
    LockHeld,
    PipelineFailed,
    RentalctlError,
    ResourceUnavailable,
)
from rentalctl.pipeline import archive, steps
from rentalctl.pipeline.begin import begin
from rentalctl.pipeline.extract import extract_table
from rentalctl.pipeline.kpi_summary import snapshot, to_json
from rentalctl.pipeline.merge import merge
from rentalctl.pipeline.presentation import refresh_if_stale
from rentalctl.pipeline.settle import settle_failed_run
from rentalctl.run.layout import failure_key, result_key, run_folder
from rentalctl.run.manifest import read_manifest
from rentalctl.tables import table as table_spec

if TYPE_CHECKING:
    from rentalctl.pipeline.child import ChildRunner
    from rentalctl.pipeline.extract import ExtractPlan

# Glue job type of each job: Python shell for light work, Spark for the transform.
JOB_TYPES = {
    "begin": "pythonshell",
    "extract-load": "pythonshell",
    "transform": "glueetl",
    "publish": "pythonshell",
    "record-failure": "pythonshell",
}
# Error name a failure is recorded under, by type (the most specific first).
ERROR_NAMES: tuple[tuple[type[RentalctlError], str], ...] = (
    (ResourceUnavailable, "Rentalctl.ResourceUnavailable"),
    (LockHeld, "Rentalctl.LockHeld"),
    (ConfigError, "Rentalctl.ConfigError"),
    (PipelineFailed, "Rentalctl.PipelineFailed"),
)

# Whether each job gets the Glue connections (aws.glue_connections), keyed by job: every job but
# the Spark transform reaches the source database or Redshift. The transform reads and writes S3
# only, and a job without a connection does not start in the VPC, so it needs no VPC endpoints.
USES_CONNECTIONS = {job: job != "transform" for job in JOB_TYPES}


def error_name(exc: RentalctlError) -> str:
    for kind, name in ERROR_NAMES:
        if isinstance(exc, kind):
            return name
    return "Rentalctl.Error"


def _arg(args: Mapping[str, str], name: str, required: bool = True) -> str | None:
    value = args.get(f"--{name}")
    if value in (None, "", "null", "None"):  # States.Format renders JSON null as "null"
        if required:
            raise ConfigError(f"job argument --{name} is required")
        return None
    return value


def _tables(args: Mapping[str, str]) -> list[str]:
    raw = _arg(args, "tables") or "[]"
    names = json.loads(raw) if raw.startswith("[") else raw.split(",")
    return [table_spec(str(n).strip()).name for n in names]


def _mode(args: Mapping[str, str]) -> str:
    return _arg(args, "extract_mode", required=False) or "incremental"


def _step(ctx: Context, run_id: str, step: str, table: str | None, work: Callable[[], Any]) -> Any:
    """Run one step of a job, or return its recorded result when a previous attempt did it."""
    key = result_key(run_id, step, table)
    if ctx.lake.exists(key):
        return json.loads(ctx.lake.get_bytes(key))
    result = work()
    ctx.lake.put_bytes(key, json.dumps(result, sort_keys=True, default=str).encode())
    return result


def _begin(
    ctx: Context, args: Mapping[str, str], spark: Any, children: ChildRunner | None = None
) -> dict[str, Any]:
    return begin(
        ctx,
        str(_arg(args, "run_id")),
        execution_arn=_arg(args, "execution_id", required=False),
        mode=_mode(args),
        since=_arg(args, "since", required=False),
        until=_arg(args, "until", required=False),
        tables=_tables(args),
    )


def _extract(ctx: Context, plan: ExtractPlan) -> dict[str, Any]:
    m = extract_table(ctx, plan)
    return {
        "table": m.table,
        "mode": m.mode,
        "rows": m.rows,
        "invalid_rows": m.invalid_rows,
        "files": len(m.files),
        "bookmark": m.bookmark,
        "lower": m.lower,
        "high": m.high,
        "bookmark_high": m.bookmark_high,
        "future_rows": m.future_rows,
        "since": m.since,
        "until": m.until,
    }


def _extract_load(
    ctx: Context, args: Mapping[str, str], spark: Any, children: ChildRunner | None = None
) -> dict[str, Any]:
    """Extract, then load the table's raw layer. With ``children``, an extract of at least
    ``extract.parallel_min_rows`` rows runs in a process of its own (``rentalctl.pipeline.child``),
    beside the other tables'; a smaller one (an incremental run's) here, where a process would
    spend longer starting than extracting. Its plan is made here either way, since it reads the
    warehouse, which DuckDB lets only this process open."""
    table, run_id = str(_arg(args, "table")), str(_arg(args, "run_id"))

    def extract() -> dict[str, Any]:
        since, until = _arg(args, "since", required=False), _arg(args, "until", required=False)
        plan = steps.extract_plan(ctx, table, run_id, mode=_mode(args), since=since, until=until)
        if children is None or _few_rows(ctx, plan):
            return _extract(ctx, plan)
        return dict(children.run(ctx.settings, _extract, plan))

    extracted = _step(ctx, run_id, "extract", table, extract)
    loaded = _step(ctx, run_id, "load-raw", table, lambda: steps.load_raw(ctx, table, run_id))
    return {"extract": extracted, "load-raw": loaded}


def _few_rows(ctx: Context, plan: ExtractPlan) -> bool:
    rows = steps.rows_to_extract(ctx, plan)
    return rows is not None and rows < ctx.settings.extract_parallel_min_rows


def _transform(
    ctx: Context, args: Mapping[str, str], spark: Any, children: ChildRunner | None = None
) -> dict[str, Any]:
    """Transform each table (a step per table, so that a retried or resumed Transform does again
    only the tables not done). With ``children`` and the DuckDB engine, the tables with rows to
    transform run side by side, each in a process of its own, as many at once as there are
    cores: the engine's Python work holds the interpreter lock, and each process has its own
    in-memory DuckDB. A process starts in about a second before its first row (an interpreter,
    then DuckDB and SQLFrame to import), which the run's own process pays once: below
    ``transform.parallel_min_rows`` rows to transform (an incremental run's few thousand), the
    tables are transformed one after another here. The first failure, in table order, is
    raised once every table has ended."""
    from rentalctl.pipeline.transform_job import all_curated, run_transform

    run_id, tables = str(_arg(args, "run_id")), _tables(args)
    apart = (
        children is not None
        and spark is None
        and ctx.settings.transform_engine == "duckdb"
        and len(tables) > 1
        and _rows_to_transform(ctx, tables, run_id) >= ctx.settings.transform_parallel_min_rows
    )

    def one(table: str) -> dict[str, Any]:
        def work() -> dict[str, Any]:
            already = all_curated(ctx, table, run_id)
            if apart and children is not None and not already:
                return dict(children.run(ctx.settings, _transform_table, table, run_id))
            return run_transform(ctx, table, run_id, spark, already)

        return dict(_step(ctx, run_id, "transform", table, work))

    if not apart:
        return {t: one(t) for t in tables}
    with ThreadPoolExecutor(max_workers=min(len(tables), os.cpu_count() or 1)) as pool:
        started = {t: pool.submit(one, t) for t in tables}
    return {t: done.result() for t, done in started.items()}


def _rows_to_transform(ctx: Context, tables: list[str], run_id: str) -> int:
    """The rows of the run's raw files of ``tables``, but for tables already curated; a table
    whose manifest cannot be read counts none (its own step reports why)."""
    from rentalctl.pipeline.transform_job import all_curated

    rows = 0
    for table in tables:
        with contextlib.suppress(ResourceUnavailable):
            if not all_curated(ctx, table, run_id):
                rows += read_manifest(ctx.lake, table, run_id).rows
    return rows


def _transform_table(ctx: Context, table: str, run_id: str) -> dict[str, Any]:
    """One table's transform, as a child process runs it (it has rows to transform)."""
    from rentalctl.pipeline.transform_job import run_transform

    return run_transform(ctx, table, run_id, already_curated=False)


def _publish(
    ctx: Context, args: Mapping[str, str], spark: Any, children: ChildRunner | None = None
) -> dict[str, Any]:
    """Quality gate and merge, presentation, bookmark commit, archive; then the run is done.
    The bookmark commit follows the merge's commit, so a failure before it leaves every
    bookmark where it was (docs/contract.md §4)."""
    run_id, tables = str(_arg(args, "run_id")), _tables(args)

    def presentation() -> dict[str, Any]:
        with ctx.warehouse() as warehouse:
            refreshed, rows = refresh_if_stale(warehouse, run_id)
            # The headline KPIs as of this run, for `run` and `status RUN_ID` to show later.
            return {"rows": rows, "refreshed": refreshed, "kpis": to_json(snapshot(warehouse))}

    def commit() -> dict[str, Any]:
        return {m.table: asdict(m) for m in steps.commit_bookmarks(ctx, run_id, tables)}

    done = {
        "merge": _step(ctx, run_id, "merge", None, lambda: merge(ctx, run_id, tables)),
        "presentation": _step(ctx, run_id, "presentation", None, presentation),
        "commit-bookmarks": _step(ctx, run_id, "commit-bookmarks", None, commit),
        "archive": _step(
            ctx,
            run_id,
            "archive",
            None,
            lambda: {"files_archived": archive.archive_run(ctx, run_id, tables)},
        ),
    }
    records.finish(ctx, run_id, "SUCCEEDED")
    ctx.state.release_lock(run_id)
    return done


def _record_failure(
    ctx: Context, args: Mapping[str, str], spark: Any, children: ChildRunner | None = None
) -> dict[str, Any]:
    run_id = str(_arg(args, "run_id"))
    try:
        error = json.loads(_arg(args, "error", required=False) or "{}")
    except json.JSONDecodeError:
        error = {"Error": "States.TaskFailed", "Cause": _arg(args, "error", required=False)}
    records.finish(ctx, run_id, "FAILED", error=recorded_error(ctx, run_id) or error)
    settle_failed_run(ctx, run_id)
    ctx.state.release_lock(run_id)  # only if this run holds it: a refused run holds nothing
    return {"recorded": True}


def recorded_error(ctx: Context, run_id: str) -> dict[str, Any] | None:
    """The failure a job of the run recorded, as ``{"Error", "Cause"}``: on AWS a failed Glue
    task reaches the state machine as ``States.TaskFailed`` with the job run in the Cause; the
    job's own words are here. A failure no retry can fix wins over a transient one."""
    found = [
        json.loads(ctx.lake.get_bytes(key)) for key in ctx.lake.list(run_folder(run_id) + "failed")
    ]
    if not found:
        return None
    found.sort(key=lambda doc: str(doc.get("at")), reverse=True)  # the latest first
    doc = min(found, key=lambda doc: bool(doc.get("retryable", True)))  # a fatal one first
    return {"Error": doc["error"], "Cause": doc["cause"]}


# Each job: (context, arguments, Spark session or None, child runner or None) -> its result.
JOBS: dict[str, Callable[[Context, Mapping[str, str], Any, Any], dict[str, Any]]] = {
    "begin": _begin,
    "extract-load": _extract_load,
    "transform": _transform,
    "publish": _publish,
    "record-failure": _record_failure,
}
assert set(JOBS) == set(JOB_TYPES)
_FATAL = {name: kind for kind, name in ERROR_NAMES if kind is not ResourceUnavailable}


def run_job(
    ctx: Context,
    job: str,
    args: Mapping[str, str],
    spark: Any = None,
    children: ChildRunner | None = None,
) -> dict[str, Any]:
    """Run one job and record its result (or its failure) in the lake. ``children``: where
    the extract-load job runs its extract and the transform its tables (in-process without)."""
    if job not in JOBS:
        raise ConfigError(f"unknown job {job!r}: expected one of {', '.join(JOBS)}")
    run_id = _arg(args, "run_id")
    table = args.get("--table")
    marker = failure_key(run_id, job, table) if run_id and job != "record-failure" else None
    if marker and ctx.lake.exists(marker):
        doc = json.loads(ctx.lake.get_bytes(marker))
        if not doc.get("retryable", True):  # an earlier attempt failed for good: so does this one
            raise _FATAL[doc["error"]](doc["cause"])
    try:
        result = JOBS[job](ctx, args, spark, children)
    except RentalctlError as exc:
        if marker:
            _record_failed(ctx, marker, exc)
        raise
    if run_id and job != "record-failure":
        ctx.lake.put_bytes(
            result_key(run_id, job, table),
            json.dumps(result, sort_keys=True, default=str).encode(),
        )
    return result


def _record_failed(ctx: Context, key: str, exc: RentalctlError) -> None:
    doc = {
        "error": error_name(exc),
        "cause": str(exc),
        "retryable": isinstance(exc, ResourceUnavailable),
        "at": records.now(),
    }
    with contextlib.suppress(RentalctlError):  # an unreachable lake: a retry runs the job again
        ctx.lake.put_bytes(key, json.dumps(doc, sort_keys=True).encode())
