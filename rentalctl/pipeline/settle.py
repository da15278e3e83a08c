"""Put right what a run that did not finish leaves behind, so the next run neither loses nor
doubles anything.

A run loads its extracted rows into ``raw.*`` before it merges; they become part of the record
when the run commits its bookmarks (SPEC section 4). A run that fails or dies before that leaves
its bookmarks where they were, and the next run extracts and loads the same rows again, so the
failed run's raw rows must go or ``raw.*`` would hold them twice. Its curated merge, if it got
that far, needs nothing: merges are idempotent.

Which of its tables a failed run had committed is decided once, when the failure is recorded
(by ``record-failure``, or by the run that recovers a dead run's lock): all of them when the
``commit-bookmarks`` job completed, else those whose bookmark the run itself moved. No later run
can have moved a bookmark yet at that point, since runs hold the one pipeline lock. The decision
is kept in the run record (``raw_to_discard``) and carried out at once; when the warehouse
cannot be reached, each later raw load finishes it. A run that committed but did not archive
has its raw files archived.
"""

from __future__ import annotations

import logging
from typing import Any

from rentalctl.context import Context
from rentalctl.errors import PipelineFailed, ResourceUnavailable
from rentalctl.orchestration import runs
from rentalctl.tables import table

log = logging.getLogger(__name__)

PENDING = "raw_to_discard"  # run record field: tables whose raw rows are still to discard
DISCARDED = "raw_discarded"  # run record field: rows discarded per table


def _committed_tables(ctx: Context, run_id: str, tables: list[str]) -> list[str]:
    from rentalctl.jobs import result_key

    if ctx.lake.exists(result_key(run_id, "commit-bookmarks")):
        return tables
    marks = ctx.state.bookmarks()
    return [t for t in tables if t in marks and marks[t].run_id == run_id]


def settle_failed_run(ctx: Context, run_id: str) -> None:
    """Decide (once) and carry out what the failed run ``run_id`` leaves to put right. Never
    raises for an unreachable warehouse or lake: what is left is finished by later raw loads."""
    record = ctx.state.get_run(run_id)
    if record is None:
        return
    if PENDING not in record:
        tables = list(record.get("tables") or [])
        committed = _committed_tables(ctx, run_id, tables)
        record = runs.update(ctx, run_id, **{PENDING: [t for t in tables if t not in committed]})
        if committed:
            _archive(ctx, run_id, committed)
    _discard(ctx, record, list(record[PENDING]))


def discard_pending(ctx: Context, table_name: str) -> None:
    """Before a raw load of ``table_name``: discard that table's rows of recent failed runs
    whose discarding could not be done when they failed."""
    for record in ctx.state.list_runs(50):
        if record.get("status") == "SUCCEEDED":
            break  # runs before a successful one were settled before it loaded anything
        if record.get("status") != "FAILED":
            continue
        if PENDING not in record:
            settle_failed_run(ctx, record["run_id"])
        elif table_name in record[PENDING]:
            _discard(ctx, record, [table_name])


def _discard(ctx: Context, record: dict[str, Any], tables: list[str]) -> None:
    run_id = record["run_id"]
    for name in tables:
        try:
            with ctx.warehouse() as warehouse:
                count = warehouse.discard_raw(table(name), run_id)
        except (ResourceUnavailable, PipelineFailed) as exc:
            log.warning("raw rows of %s from failed run %s kept for now: %s", name, run_id, exc)
            return
        current = ctx.state.get_run(run_id) or record
        runs.update(
            ctx,
            run_id,
            **{
                PENDING: [t for t in current.get(PENDING, []) if t != name],
                DISCARDED: {**current.get(DISCARDED, {}), name: count},
            },
        )
        log.info("discarded %s raw rows of %s from failed run %s", count, name, run_id)


def _archive(ctx: Context, run_id: str, tables: list[str]) -> None:
    from rentalctl.pipeline.archive import archive_run

    try:
        moved = archive_run(ctx, run_id, tables)
    except (ResourceUnavailable, PipelineFailed) as exc:
        log.warning("raw files of failed run %s not archived: %s", run_id, exc)
        return
    if moved:
        log.info("archived %s raw files of run %s, which committed before it failed", moved, run_id)
