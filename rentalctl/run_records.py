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
from rentalctl.run.layout import RUN_STEPS, TABLE_STEPS, result_key


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

    def open_record(found: dict[str, Any] | None) -> dict[str, Any]:
        record = dict(found or {})
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
        return record

    # Conditional, like every other change of a record: a local run's state tracker may be
    # writing the same record while Begin opens it.
    return ctx.state.update_run(run_id, open_record)


def duration(record: dict[str, Any]) -> float | None:
    """Seconds from a run's start to its end; None while it runs."""
    if not record.get("started_at") or not record.get("ended_at"):
        return None
    start = datetime.fromisoformat(record["started_at"])
    return (datetime.fromisoformat(record["ended_at"]) - start).total_seconds()


def update(ctx: Context, run_id: str, **fields: Any) -> dict[str, Any]:
    """Set fields of one run record, conditionally: the per-table jobs of a run update the same
    record at once, and none loses another's fields."""
    return ctx.state.update_run(
        run_id, lambda record: {**(record or {"run_id": run_id, "started_at": now()}), **fields}
    )


def step_result(ctx: Context, run_id: str, job: str, table: str | None = None) -> dict[str, Any]:
    """The result a step of the run recorded in the lake ({} when it recorded none)."""
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
        extract = step_result(ctx, run_id, "extract", table)
        q = quality.get(table, {})
        summary[table] = {
            # Rows read from the source: those in the raw files and those quarantined.
            "extracted": None
            if extract.get("rows") is None
            else extract["rows"] + extract.get("invalid_rows", 0),
            "window": {k: extract.get(k) for k in ("lower", "high", "since", "until")},
            "loaded_raw": step_result(ctx, run_id, "load-raw", table).get("rows"),
            "curated": q.get("curated"),
            "already_curated": q.get("already_curated"),
            "superseded": q.get("superseded"),
            "rejected": q.get("rejected"),
            "rejected_by_reason": {k: v for k, v in q.get("rejected_by_reason", {}).items() if v},
            "inserted": q.get("inserted"),
            "updated": q.get("updated"),
            "orphans": q.get("orphans"),
            # Curated rows removed because their key left the source (None: not reconciled).
            "deleted": q.get("deleted"),
            "warnings": q.get("warnings") or [],
        }
    return summary


def steps(ctx: Context, run_id: str, tables: list[str]) -> list[dict[str, Any]]:
    """Each step of the run, done or not, from the results in the lake: the steps inside the
    jobs (extract and raw load per table; merge, presentation, bookmark commit, archive inside
    ``publish``), which the execution's states do not show one by one."""
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
    ended_at = now()

    def close(record: dict[str, Any] | None) -> dict[str, Any]:
        base = record or {"run_id": run_id, "started_at": now(), "tables": []}
        closed = {**base, "status": status, "ended_at": ended_at, "error": error}
        closed["summary"] = summarize(ctx, run_id, closed)
        closed["steps"] = steps(ctx, run_id, list(closed.get("tables") or []))
        return closed

    ctx.state.update_run(run_id, close)
