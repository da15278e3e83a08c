"""The extract/raw-load/bookmark steps of a run, each callable on its own (the state machine
calls them one by one, on AWS as Glue jobs and locally in-process).

Exactly-once, in three moves (docs/contract.md §4):
1. ``extract`` reads the table's bookmark B and writes the window ``(B - lookback, high]`` into
   the lake under the run's own prefix, recording B and ``high`` in the manifest;
2. the run's loads and merges replace that run's rows (idempotent);
3. ``commit_bookmarks`` — only after the merge has committed — moves each bookmark from B to
   ``high`` with a conditional write. A failure anywhere before leaves B, and the next run
   re-reads the same rows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rentalctl.context import Context
from rentalctl.curated import SCHEMA
from rentalctl.errors import ConfigError
from rentalctl.pipeline import curated_sql as sql
from rentalctl.pipeline.extract import (
    ExtractPlan,
    Window,
    backfill_window,
    count_window,
    extract_table,
    incremental_window,
    plan_extract,
    reaches,
    read_high,
)
from rentalctl.pipeline.settle import discard_pending
from rentalctl.run.manifest import Manifest, read_manifest, verify_files
from rentalctl.tables import table

if TYPE_CHECKING:
    from rentalctl.adapters.warehouse import Warehouse

log = logging.getLogger(__name__)


def extract(
    ctx: Context,
    table_name: str,
    run_id: str,
    *,
    mode: str = "incremental",
    since: str | None = None,
    until: str | None = None,
) -> Manifest:
    plan = extract_plan(ctx, table_name, run_id, mode=mode, since=since, until=until)
    return extract_table(ctx, plan)


def extract_plan(
    ctx: Context,
    table_name: str,
    run_id: str,
    *,
    mode: str = "incremental",
    since: str | None = None,
    until: str | None = None,
) -> ExtractPlan:
    """What ``extract`` reads (the window from the bookmark), decided where the run runs."""
    spec = table(table_name)
    state = ctx.state
    bookmarks = state.bookmarks()  # a missing store is an error: `rentalctl seed-bookmarks`
    if spec.name not in bookmarks:
        state.seed([spec.name])  # a table added to the config later starts with a full extract
        bookmarks = state.bookmarks()
    bookmark = bookmarks[spec.name].value
    window: Window
    if mode == "backfill":
        if not since:
            raise ConfigError("a backfill needs --since")
        window = backfill_window(since, until)
    else:
        window = incremental_window(spec, bookmark, ctx.settings.lookback[spec.name])
    return plan_extract(ctx, spec.name, run_id, bookmark=bookmark, window=window)


def rows_to_extract(ctx: Context, plan: ExtractPlan) -> int | None:
    """How many rows the extract of ``plan`` reads from its window, counted now in the source;
    None when it also reads every key of the table (reconciling, with no key pages' fingerprints
    to compare with)."""
    if plan.reconciling and plan.baseline is None:
        return None
    spec = table(plan.table)
    with ctx.source() as source, source.snapshot() as snap:
        return count_window(source, snap, spec, plan.window, read_high(source, snap, spec))


def load_raw(ctx: Context, table_name: str, run_id: str) -> dict[str, Any]:
    """Load the run's extracted files of one table into ``raw.<table>`` (replacing that run's
    rows, so a repeated load never duplicates), once every file is found as its manifest lists
    it. Failed runs' rows of the table that are still to be discarded go first
    (``rentalctl.pipeline.settle``). Returns the rows loaded and how many of them the curated
    layer does not hold yet (``not_curated``; the transform skips a table where that is 0)."""
    manifest = read_manifest(ctx.lake, table(table_name).name, run_id)
    verify_files(ctx.lake, manifest)  # before COPY too: Redshift would load whatever is there
    discard_pending(ctx, manifest.table)
    with ctx.warehouse() as warehouse:
        rows = warehouse.load_raw(ctx.lake, manifest)
        not_curated = _not_curated(ctx, warehouse, manifest.table, run_id, rows) if rows else 0
    return {"table": manifest.table, "rows": rows, "not_curated": not_curated}


def _not_curated(
    ctx: Context, warehouse: Warehouse, table_name: str, run_id: str, rows: int
) -> int:
    """The loaded rows the curated layer does not hold at their version or a newer one; all of
    them when the configured fx rates are not the ones the curated layer was built with (a row
    curated before could be converted, or rejected, differently now)."""
    if len(warehouse.tables_present(SCHEMA, [table_name, "fx_rates"])) < 2:
        return rows  # nothing is curated before the first merge
    used = warehouse.query(f"SELECT currency, rate_to_usd FROM {sql.qualified('fx_rates')}")
    configured = {c: Decimal(str(r)) for c, r in ctx.settings.fx_rates.items()}
    if {str(c): Decimal(str(r)) for c, r in used} != configured:
        return rows
    ((count,),) = warehouse.query(sql.not_curated_sql(table_name, warehouse.placeholder), [run_id])
    return int(count)


@dataclass(frozen=True)
class BookmarkMove:
    table: str
    before: str | int | None
    after: str | int | None
    moved: bool


def commit_bookmarks(ctx: Context, run_id: str, tables: list[str]) -> list[BookmarkMove]:
    """Move each table's bookmark to the high mark its extract recorded. Runs only after the
    run's data is committed in the warehouse. Backfills and empty tables move nothing, and no
    bookmark moves past the source's clock plus the allowed skew (``extract.bookmark_cap``);
    a bookmark that changed since the extract raises BookmarkConflict for that table."""
    moves = []
    for name in tables:
        manifest = read_manifest(ctx.lake, table(name).name, run_id)
        new = manifest.bookmark_high  # high, or below rows dated in the future
        if (
            manifest.mode == "backfill"
            or new is None
            or new == manifest.bookmark
            or (manifest.bookmark is not None and not reaches(new, manifest.bookmark))
        ):
            moves.append(BookmarkMove(name, manifest.bookmark, manifest.bookmark, False))
            continue
        ctx.state.commit_bookmark(name, manifest.bookmark, new, run_id)
        log.info("bookmark %s: %s -> %s", name, manifest.bookmark, new)
        moves.append(BookmarkMove(name, manifest.bookmark, new, True))
    return moves
