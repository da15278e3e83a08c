"""Put right what a run that did not finish (failed, died or was cancelled) leaves behind, so
the next run neither loses nor doubles anything.

A run loads its extracted rows into ``raw.*`` before it merges; they become part of the record
when the run commits its bookmarks (docs/contract.md §4). A run that fails or dies before that
leaves its bookmarks where they were, and the next run extracts and loads the same rows again, so
the failed run's raw rows must go or ``raw.*`` would hold them twice. Its curated merge, if it got
that far, needs nothing: merges are idempotent.

Which of its tables a failed run had committed is decided once, when the failure is recorded
(by ``record-failure``, or by the run that recovers a dead run's lock): all of them when the
``commit-bookmarks`` job completed, else those whose bookmark the run itself moved. No later run
can have moved a bookmark yet at that point, since runs hold the one pipeline lock. The decision
is kept in the run record (``raw_to_discard``) and carried out at once; when the warehouse
cannot be reached, each later raw load finishes its own table's part (the loads of a run's
tables run at the same time: each touches only its table's rows and files, and the record
through conditional updates). A run that committed but did not archive has its raw files
archived.
"""

from __future__ import annotations

import logging
from typing import Any

from rentalctl import run_records as records
from rentalctl.context import Context
from rentalctl.errors import PipelineFailed, ResourceUnavailable
from rentalctl.pipeline.archive import archive_run
from rentalctl.run.layout import result_key
from rentalctl.tables import table

log = logging.getLogger(__name__)

PENDING = "raw_to_discard"  # run record field: tables whose raw rows are still to discard
DISCARDED = "raw_discarded"  # run record field: rows discarded per table


def _committed_tables(ctx: Context, run_id: str, tables: list[str]) -> list[str]:
    if ctx.lake.exists(result_key(run_id, "commit-bookmarks")):
        return tables
    marks = ctx.state.bookmarks()
    return [t for t in tables if t in marks and marks[t].run_id == run_id]


def settle_failed_run(ctx: Context, run_id: str, only: str | None = None) -> None:
    """Decide (once) and carry out what the failed run ``run_id`` leaves to put right: for all
    its tables, or ``only`` that one. Never raises for an unreachable warehouse or lake: what is
    left is finished by later raw loads."""
    record = ctx.state.get_run(run_id)
    if record is None:
        return
    if PENDING not in record:
        record = _decide(ctx, run_id, list(record.get("tables") or []))
    tables = [t for t in record.get("tables") or [] if only in (None, t)]
    committed = [
        t for t in tables if t not in record[PENDING] and t not in record.get(DISCARDED, {})
    ]
    if committed:
        _archive(ctx, run_id, committed)
    _discard(ctx, run_id, [t for t in tables if t in record[PENDING]])


def _decide(ctx: Context, run_id: str, tables: list[str]) -> dict[str, Any]:
    """Record which tables' raw rows the run leaves to discard, unless a concurrent settler
    recorded it first (then its decision stands; both read the same bookmarks)."""
    committed = _committed_tables(ctx, run_id, tables)
    pending = [t for t in tables if t not in committed]

    def decide(record: dict[str, Any] | None) -> dict[str, Any]:
        record = record or {"run_id": run_id, "started_at": records.now(), "tables": tables}
        return record if PENDING in record else {**record, PENDING: pending}

    return ctx.state.update_run(run_id, decide)


def discard_pending(ctx: Context, table_name: str) -> None:
    """Before a raw load of ``table_name``: put right that table's part of what recent failed
    runs left, when it could not be done as they failed. Only that table: the loads of the
    other tables run at the same time and settle their own."""
    for record in ctx.state.list_runs(50):
        if record.get("status") == "SUCCEEDED":
            break  # runs before a successful one were settled before it loaded anything
        if record.get("status") not in ("FAILED", "CANCELLED"):
            continue
        if PENDING not in record or table_name in record[PENDING]:
            settle_failed_run(ctx, record["run_id"], only=table_name)


def _discard(ctx: Context, run_id: str, tables: list[str]) -> None:
    for name in tables:
        try:
            with ctx.warehouse() as warehouse:
                count = warehouse.discard_raw(table(name), run_id)
        except (ResourceUnavailable, PipelineFailed) as exc:
            log.warning("raw rows of %s from failed run %s kept for now: %s", name, run_id, exc)
            return

        def done(
            record: dict[str, Any] | None, name: str = name, count: int = count
        ) -> dict[str, Any]:
            current = record or {"run_id": run_id, "started_at": records.now()}
            return {
                **current,
                PENDING: [t for t in current.get(PENDING, []) if t != name],
                DISCARDED: {**current.get(DISCARDED, {}), name: count},
            }

        ctx.state.update_run(run_id, done)
        log.info("discarded %s raw rows of %s from failed run %s", count, name, run_id)


def _archive(ctx: Context, run_id: str, tables: list[str]) -> None:
    try:
        moved = archive_run(ctx, run_id, tables)
    except (ResourceUnavailable, PipelineFailed) as exc:
        log.warning("raw files of failed run %s not archived: %s", run_id, exc)
        return
    if moved:
        log.info("archived %s raw files of run %s, which committed before it failed", moved, run_id)
