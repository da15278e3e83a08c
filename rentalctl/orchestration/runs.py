"""Run records in the state store: what a run was asked to do, how each state went, and what it
moved — read by ``rentalctl status``.

A record is created by the run's first job (``begin``), and closed by its last (``publish`` on
success, ``record-failure`` on failure) on either target, with a summary built from the jobs'
results in the lake and the data-quality report. A local run also records each state's timing
from the executor's events; on AWS the same comes from the execution history.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from rentalctl.context import Context
from rentalctl.errors import ResourceUnavailable


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def start(
    ctx: Context,
    run_id: str,
    *,
    mode: str,
    since: str | None,
    until: str | None,
    tables: list[str],
    target: str,
    execution_arn: str | None = None,
) -> dict[str, Any]:
    """Create the run's record, RUNNING; a record the run opened already is kept (a retried
    ``begin``). What a local run recorded of its states before is kept too."""
    record = ctx.state.get_run(run_id) or {}
    if record.get("status"):
        return record
    record.update(
        run_id=run_id,
        mode=mode,
        since=since,
        until=until,
        tables=tables,
        target=target,
        status="RUNNING",
        started_at=record.get("started_at") or now(),
        ended_at=None,
        error=None,
    )
    record.setdefault("states", {})
    if execution_arn:
        record["execution_arn"] = execution_arn
    ctx.state.put_run(record)
    return record


def update(ctx: Context, run_id: str, **fields: Any) -> dict[str, Any]:
    """Read-modify-write of one run record (one writer at a time: the run's own process)."""
    record = ctx.state.get_run(run_id) or {"run_id": run_id, "started_at": now()}
    record.update(fields)
    ctx.state.put_run(record)
    return record


def _result(ctx: Context, run_id: str, job: str, table: str | None = None) -> dict[str, Any]:
    from rentalctl.jobs import result_key

    try:
        doc: dict[str, Any] = json.loads(ctx.lake.get_bytes(result_key(run_id, job, table)))
        return doc
    except ResourceUnavailable:
        return {}


def summarize(ctx: Context, run_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """Rows in and out per table, from the jobs' results and the quality report."""
    quality = record.get("quality") or {}
    summary: dict[str, Any] = {}
    for table in record.get("tables") or []:
        extract = _result(ctx, run_id, "extract", table)
        q = quality.get(table, {})
        summary[table] = {
            "extracted": extract.get("rows"),
            "window": {k: extract.get(k) for k in ("lower", "high", "since", "until")},
            "loaded_raw": _result(ctx, run_id, "load-raw", table).get("rows"),
            "curated": q.get("curated"),
            "superseded": q.get("superseded"),
            "rejected": q.get("rejected"),
            "rejected_by_reason": {k: v for k, v in q.get("rejected_by_reason", {}).items() if v},
            "inserted": q.get("inserted"),
            "updated": q.get("updated"),
            "orphans": q.get("orphans"),
        }
    return summary


def steps(ctx: Context, run_id: str, tables: list[str]) -> list[dict[str, Any]]:
    """Each step of the run, done or not, from the results in the lake: the steps inside the
    jobs (extract and raw load per table; merge, presentation, bookmark commit, archive inside
    ``publish``), which the execution's states do not show one by one."""
    from rentalctl.jobs import RUN_STEPS, TABLE_STEPS, result_key

    wanted: list[tuple[str, str | None]] = [(step, t) for t in tables for step in TABLE_STEPS]
    wanted += [(step, None) for step in RUN_STEPS]
    return [
        {
            "name": f"{step}[{t}]" if t else step,
            "done": ctx.lake.exists(result_key(run_id, step, t)),
        }
        for step, t in wanted
    ]


def finish(ctx: Context, run_id: str, status: str, error: dict[str, Any] | None = None) -> None:
    record = ctx.state.get_run(run_id) or {"run_id": run_id, "started_at": now(), "tables": []}
    record.update(status=status, ended_at=now(), error=error)
    record["summary"] = summarize(ctx, run_id, record)
    record["steps"] = steps(ctx, run_id, list(record.get("tables") or []))
    ctx.state.put_run(record)
