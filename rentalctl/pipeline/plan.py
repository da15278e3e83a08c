"""What a run would read, without running it: the plan of ``run --dry-run``,
``backfill --dry-run`` and ``bookmarks set/rewind --dry-run``.

Each table's window is computed by the very functions the extract uses
(``incremental_window``, ``backfill_window``) and counted with the extract's own condition
(``count_window``) against the table's high mark read in the same snapshot, so the plan and a
run started at the same moment read the same rows. Nothing is written anywhere: the bookmarks
are only read, and a table without one counts as a full extract.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from rentalctl.adapters.state import Watermark
from rentalctl.context import Context
from rentalctl.pipeline.extract import (
    Window,
    backfill_window,
    bookmark_cap,
    count_window,
    incremental_window,
    reaches,
    read_high,
)
from rentalctl.run_records import duration
from rentalctl.tables import table


@dataclass(frozen=True)
class TablePlan:
    table: str
    mode: str  # full | incremental | backfill
    bookmark: Watermark | None  # the bookmark the window starts from
    lower: Watermark | None  # incremental: exclusive lower end
    since: str | None  # backfill: inclusive ends
    until: str | None
    high: Watermark | None  # the source's highest watermark now
    rows: int  # source rows in the window
    bookmark_after: Watermark | None  # where the run would leave the bookmark

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def window_for(
    ctx: Context, name: str, bookmark: Watermark | None, since: str | None, until: str | None
) -> Window:
    """The window a run reads: ``[since, until]`` for a backfill (``since`` given), else
    ``(bookmark - lookback, high]``."""
    if since is not None:
        return backfill_window(since, until)
    return incremental_window(table(name), bookmark, ctx.settings.lookback[name])


def plan_table(
    ctx: Context,
    name: str,
    bookmark: Watermark | None,
    since: str | None = None,
    until: str | None = None,
) -> TablePlan:
    """The window of ``name`` starting from ``bookmark`` and the rows in it, read now."""
    spec = table(name)
    window = window_for(ctx, name, bookmark, since, until)
    with ctx.source() as source, source.snapshot() as snap:
        high = read_high(source, snap, spec)
        rows = count_window(source, snap, spec, window, high)
        moves = window.mode != "backfill" and high is not None
        after = bookmark_cap(source, snap, spec, high, ctx.settings.max_clock_skew_seconds).value
    moves = moves and after is not None and (bookmark is None or reaches(after, bookmark))
    return TablePlan(
        table=name,
        mode=window.mode,
        bookmark=bookmark,
        lower=window.lower,
        since=window.since,
        until=window.until,
        high=high,
        rows=rows,
        bookmark_after=after if moves else bookmark,
    )


def plan_run(
    ctx: Context, tables: list[str], since: str | None = None, until: str | None = None
) -> dict[str, Any]:
    """The plan of a whole run: every table's window and rows, and an estimate of the work."""
    marks = ctx.state.bookmarks()  # read only: a table without an entry is a full extract
    plans = [
        plan_table(ctx, name, marks[name].value if name in marks else None, since, until)
        for name in tables
    ]
    return {
        "mode": "backfill" if since is not None else "incremental",
        "tables": [p.to_json() for p in plans],
        "bookmarks_left_alone": [p.table for p in plans if p.bookmark_after == p.bookmark],
        "estimate": estimate(ctx, [p.rows for p in plans]),
    }


def estimate(ctx: Context, rows_per_table: list[int]) -> dict[str, Any]:
    """Rows, raw part files, and a rough duration scaled from the latest successful run that
    read rows (a run costs its fixed start-up whatever it reads, so never less than that)."""
    rows = sum(rows_per_table)
    files = sum(math.ceil(r / ctx.settings.part_file_rows) for r in rows_per_table)
    out: dict[str, Any] = {"rows": rows, "part_files": files, "seconds": None, "based_on_run": None}
    for record in ctx.state.list_runs(limit=20):
        seconds = duration(record)
        read = sum(int(t.get("extracted") or 0) for t in (record.get("summary") or {}).values())
        if record.get("status") == "SUCCEEDED" and seconds is not None and read > 0:
            out["seconds"] = round(seconds * max(1.0, rows / read), 1)
            out["based_on_run"] = record["run_id"]
            break
    return out
