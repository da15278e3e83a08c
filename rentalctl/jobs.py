"""The pipeline's jobs by name: what each state of the state machine runs.

On AWS each is a Glue job (``glue/`` entrypoints parse the job arguments and call ``run_job``);
locally the executor's Glue handler calls ``run_job`` in-process with the same arguments. Every
job records its result in the lake (``runs/run_id=<id>/<job>[.<table>].json``), where ``status``
finds it on either target.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from rentalctl.context import Context
from rentalctl.errors import ConfigError

# Glue job type of each job: Python shell for light work, Spark for the transform.
JOB_TYPES = {
    "extract": "pythonshell",
    "load-raw": "pythonshell",
    "transform": "glueetl",
    "merge": "pythonshell",
    "presentation": "pythonshell",
    "commit-bookmarks": "pythonshell",
    "archive": "pythonshell",
    "record-failure": "pythonshell",
}

# Whether each job gets the Glue connections (aws.glue_connections), keyed by job: every job but
# the Spark transform reaches the source database or Redshift. The transform reads and writes S3
# only, and a job without a connection does not start in the VPC, so it needs no VPC endpoints.
USES_CONNECTIONS = {job: job != "transform" for job in JOB_TYPES}


def result_key(run_id: str, job: str, table: str | None = None) -> str:
    return f"runs/run_id={run_id}/{job}{'.' + table if table else ''}.json"


def _arg(args: Mapping[str, str], name: str, required: bool = True) -> str | None:
    value = args.get(f"--{name}")
    if value in (None, "", "null", "None"):  # States.Format renders JSON null as "null"
        if required:
            raise ConfigError(f"job argument --{name} is required")
        return None
    return value


def _tables(args: Mapping[str, str]) -> list[str]:
    from rentalctl.tables import table

    raw = _arg(args, "tables") or "[]"
    names = json.loads(raw) if raw.startswith("[") else raw.split(",")
    return [table(str(n).strip()).name for n in names]


def _extract(ctx: Context, args: Mapping[str, str], spark: Any) -> dict[str, Any]:
    from rentalctl.pipeline import steps

    m = steps.extract(
        ctx,
        str(_arg(args, "table")),
        str(_arg(args, "run_id")),
        mode=_arg(args, "mode", required=False) or "incremental",
        since=_arg(args, "since", required=False),
        until=_arg(args, "until", required=False),
    )
    return {
        "table": m.table,
        "mode": m.mode,
        "rows": m.rows,
        "files": len(m.files),
        "bookmark": m.bookmark,
        "lower": m.lower,
        "high": m.high,
        "since": m.since,
        "until": m.until,
    }


def _load_raw(ctx: Context, args: Mapping[str, str], spark: Any) -> dict[str, Any]:
    from rentalctl.pipeline import steps

    table = str(_arg(args, "table"))
    return {"table": table, "rows": steps.load_raw(ctx, table, str(_arg(args, "run_id")))}


def _transform(ctx: Context, args: Mapping[str, str], spark: Any) -> dict[str, Any]:
    from rentalctl.pipeline.transform_job import run_transform

    run_id = str(_arg(args, "run_id"))
    return {t: run_transform(ctx, t, run_id, spark) for t in _tables(args)}


def _merge(ctx: Context, args: Mapping[str, str], spark: Any) -> dict[str, Any]:
    from rentalctl.pipeline.merge import merge

    return merge(ctx, str(_arg(args, "run_id")), _tables(args))


def _presentation(ctx: Context, args: Mapping[str, str], spark: Any) -> dict[str, Any]:
    from rentalctl.pipeline.kpi_summary import snapshot, to_json
    from rentalctl.pipeline.presentation import refresh_presentation

    with ctx.warehouse() as warehouse:
        # The headline KPIs as of this run, for `run` and `status RUN_ID` to show later.
        return {"rows": refresh_presentation(warehouse), "kpis": to_json(snapshot(warehouse))}


def _commit_bookmarks(ctx: Context, args: Mapping[str, str], spark: Any) -> dict[str, Any]:
    from dataclasses import asdict

    from rentalctl.pipeline import steps

    moves = steps.commit_bookmarks(ctx, str(_arg(args, "run_id")), _tables(args))
    return {m.table: asdict(m) for m in moves}


def _archive(ctx: Context, args: Mapping[str, str], spark: Any) -> dict[str, Any]:
    from rentalctl.orchestration import runs
    from rentalctl.pipeline.archive import archive_run

    run_id = str(_arg(args, "run_id"))
    moved = archive_run(ctx, run_id, _tables(args))
    runs.finish(ctx, run_id, "SUCCEEDED")
    return {"files_archived": moved}


def _record_failure(ctx: Context, args: Mapping[str, str], spark: Any) -> dict[str, Any]:
    from rentalctl.orchestration import runs

    run_id = str(_arg(args, "run_id"))
    try:
        error = json.loads(_arg(args, "error", required=False) or "{}")
    except json.JSONDecodeError:
        error = {"Error": "States.TaskFailed", "Cause": _arg(args, "error", required=False)}
    runs.finish(ctx, run_id, "FAILED", error=error)
    from rentalctl.pipeline.settle import settle_failed_run

    settle_failed_run(ctx, run_id)
    return {"recorded": True}


JOBS: dict[str, Callable[[Context, Mapping[str, str], Any], dict[str, Any]]] = {
    "extract": _extract,
    "load-raw": _load_raw,
    "transform": _transform,
    "merge": _merge,
    "presentation": _presentation,
    "commit-bookmarks": _commit_bookmarks,
    "archive": _archive,
    "record-failure": _record_failure,
}
assert set(JOBS) == set(JOB_TYPES)


def run_job(ctx: Context, job: str, args: Mapping[str, str], spark: Any = None) -> dict[str, Any]:
    """Run one job and record its result in the lake."""
    if job not in JOBS:
        raise ConfigError(f"unknown job {job!r}: expected one of {', '.join(JOBS)}")
    result = JOBS[job](ctx, args, spark)
    run_id = _arg(args, "run_id")
    table = args.get("--table")
    if run_id and job != "record-failure":
        ctx.lake.put_bytes(
            result_key(run_id, job, table),
            json.dumps(result, sort_keys=True, default=str).encode(),
        )
    return result
