"""Extract step: one source table's window into the lake as raw part files and a manifest.

The window is ``(bookmark - lookback, high]`` on the table's watermark column, where ``high``
is the column's maximum read in the same snapshot as the rows; no bookmark means a full extract.
A backfill reads ``[since, until]`` on the table's backfill column instead and never moves a
bookmark. SQL identifiers come from the table spec; every value is a bound parameter.

Why a lookback, for both kinds of watermark: a row's watermark is fixed when it is written, but
the row is seen when its transaction commits. A writer that stamps a row (or takes an
AUTO_INCREMENT id), then commits after a run read a higher watermark, lands below that run's
``high``. The window therefore starts ``lookback`` before the bookmark: seconds for timestamps
(default 300), ids for ``user_viewing`` (default 10,000, the ids a busy table takes while a
transaction stays open). Re-read rows are harmless: the merge takes new keys and newer versions
only, and a rejected row version is recorded once. Two alternatives were weighed and not taken.
Capping ``high`` below the first missing id would stall for good behind every rolled-back
insert, which leaves a permanent gap. MySQL's ``information_schema.innodb_trx`` lists open
transactions but not the ids they hold, needs the PROCESS privilege (a read-only user on Aurora
lacks it by default) and has no counterpart on SQLite. The lookback needs nothing from the
database and holds on all of them; its one assumption, as for timestamps, is that a transaction
commits before the lookback has passed it by (``lookback.TABLE`` widens it).

Columns are read by name: a source table may have more columns than its spec, in any order, but
one that lacks a spec column fails the extract with an error naming the table and each missing
column (PipelineFailed: the source answered, its schema broke the contract, no retry helps).

The manifest is written last: its presence marks the extract complete. Re-running the step for
the same run first removes that run's earlier files of the table, so a retry never mixes two
attempts; other runs' files are never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from rentalctl.adapters.lake import Lake
from rentalctl.adapters.source import Snapshot, Source, UnreadableValue
from rentalctl.adapters.state import Watermark
from rentalctl.context import Context
from rentalctl.errors import ConfigError, PipelineFailed
from rentalctl.pipeline.key_pages import Baseline
from rentalctl.pipeline.rawfiles import PartWriter
from rentalctl.pipeline.rawvalues import canonical_timestamp
from rentalctl.pipeline.reconcile import (
    read_before_extract,
    reconciles,
    reinserted_rows,
    write_keys,
)
from rentalctl.run.layout import MANIFEST, run_prefix
from rentalctl.run.manifest import Manifest
from rentalctl.tables import Kind, TableSpec, table

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    mode: str  # full | incremental | backfill
    lower: Watermark | None = None  # exclusive
    since: str | None = None  # backfill, inclusive
    until: str | None = None  # backfill, inclusive


def watermark_value(spec: TableSpec, value: Any) -> Watermark | None:
    """A watermark as bookmarks store it: int ids, or timestamps with six fractional digits."""
    if value is None:
        return None
    if spec.watermark_kind is Kind.INTEGER:
        return int(value)
    return canonical_timestamp(value)


def incremental_window(spec: TableSpec, bookmark: Watermark | None, lookback: int) -> Window:
    if bookmark is None:
        return Window("full")
    if spec.watermark_kind is Kind.INTEGER:
        return Window("incremental", lower=max(int(bookmark) - lookback, 0))
    moment = datetime.fromisoformat(str(bookmark))
    # A bookmark within the lookback of year 1 has nothing before it to re-read.
    start = moment - min(timedelta(seconds=lookback), moment - datetime.min)
    return Window("incremental", lower=canonical_timestamp(start))


def _backfill_date(option: str, value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError as exc:
        # Python's own words only when they add something ("hour must be in 0..23"), not for
        # a value in another form ("Invalid isoformat string: …").
        why = "" if str(exc).startswith("Invalid isoformat") else f" ({exc})"
        raise ConfigError(
            f"{option} {value!r} is not a date: use YYYY-MM-DD[ HH:MM:SS]{why}"
        ) from None


def backfill_window(since: str, until: str | None) -> Window:
    """``[since, until]``, both inclusive; a date alone as ``until`` means that whole day.

    The bounds are compared as text on SQLite, so they take the forms that order correctly
    against stored values with or without fractional seconds: the lower bound in its shortest
    form, the upper bound with six fractional digits.
    """
    start = _backfill_date("--since", since)
    end = _backfill_date("--until", until) if until else None
    if end is not None and until is not None and len(until.strip()) == 10:
        end += timedelta(days=1, microseconds=-1)
    if end is not None and end < start:
        raise ConfigError(f"backfill window is empty: --until {until} is before --since {since}")
    return Window(
        "backfill",
        since=canonical_timestamp(start, micros=False),
        until=canonical_timestamp(end) if end is not None else None,
    )


def missing_columns_message(spec: TableSpec, missing: list[str], source: str) -> str:
    """The error of a source table that lacks columns of its spec (docs/contract.md §3)."""
    listed = ", ".join(f"{c} {spec.column(c).mysql_type}" for c in missing)
    noun = "column" if len(missing) == 1 else "columns"
    return (
        f"source table {spec.name} has no {noun} {listed} (in {source}); rentalctl reads the "
        f"columns of docs/contract.md §3 by name: restore the {noun} in the source (extra columns "
        "are ignored). Nothing was extracted and no bookmark moved"
    )


def _where(source: Source, spec: TableSpec, window: Window, high: Any) -> tuple[str, list[Any]]:
    """The window as a WHERE condition with its bound values."""
    p = source.placeholder
    where: list[str]
    params: list[Any]
    if window.mode == "backfill":
        col = source.quote(spec.backfill_column)
        where, params = [f"{col} >= {p}"], [window.since]
        if window.until is not None:
            where.append(f"{col} <= {p}")
            params.append(window.until)
    else:
        wm = source.quote(spec.watermark)
        where, params = [f"{wm} <= {p}"], [high]
        if window.lower is not None:
            where.insert(0, f"{wm} > {p}")
            params.insert(0, window.lower)
    return " AND ".join(where), params


def _query(source: Source, spec: TableSpec, window: Window, high: Any) -> tuple[str, list[Any]]:
    cols = ", ".join(source.quote(c) for c in spec.column_names)
    where, params = _where(source, spec, window, high)
    return f"SELECT {cols} FROM {source.quote(spec.name)} WHERE {where}", params


def read_high(source: Source, snap: Snapshot, spec: TableSpec) -> Watermark | None:
    """The table's highest watermark in this snapshot (None for an empty table): the upper end
    of every incremental window, and the most a bookmark may be set to."""
    wm = source.quote(spec.watermark)
    high_raw = snap.query(f"SELECT MAX({wm}) FROM {source.quote(spec.name)}")[0][0]
    try:
        return watermark_value(spec, high_raw)
    except ValueError as exc:
        raise PipelineFailed(
            f"source value {spec.name}.{spec.watermark}: its highest value {high_raw!r} "
            f"is not a {spec.column(spec.watermark).mysql_type} watermark ({exc}). Fix the "
            "value in the source; no bookmark moved"
        ) from None


@dataclass(frozen=True)
class BookmarkCap:
    """Where a run may leave a bookmark: ``value``, the highest watermark not after ``limit``
    (the source's clock plus ``extract.max_clock_skew_seconds``), and the rows dated after it,
    which are read like any other but would stop every later run if the bookmark followed them
    (every real change would then be stamped before the bookmark)."""

    value: Watermark | None
    limit: str | None = None
    future_rows: int = 0


def bookmark_cap(
    source: Source, snap: Snapshot, spec: TableSpec, high: Watermark | None, skew: int
) -> BookmarkCap:
    """The value the bookmark moves to after a window read up to ``high`` in ``snap``."""
    if high is None or spec.watermark_kind is not Kind.DATETIME:
        return BookmarkCap(high)  # ids come from the database itself, never from a clock
    now = snap.query("SELECT CURRENT_TIMESTAMP")[0][0]
    limit = canonical_timestamp(datetime.fromisoformat(str(now)) + timedelta(seconds=skew))
    if str(high) <= limit:  # one text form, whose order is time's (watermark_value)
        return BookmarkCap(high, limit)
    wm, name, p = source.quote(spec.watermark), source.quote(spec.name), source.placeholder
    below = snap.query(f"SELECT MAX({wm}) FROM {name} WHERE {wm} <= {p}", [limit])[0][0]
    future = snap.query(f"SELECT COUNT(*) FROM {name} WHERE {wm} > {p}", [limit])[0][0]
    return BookmarkCap(watermark_value(spec, below), limit, int(future))


def count_window(
    source: Source, snap: Snapshot, spec: TableSpec, window: Window, high: Watermark | None
) -> int:
    """How many source rows an extract of ``window`` reads, with ``high`` read in ``snap``: the
    same condition the extract streams by, counted instead."""
    if high is None and window.mode != "backfill":
        return 0  # an empty table: the extract reads nothing
    where, params = _where(source, spec, window, high)
    return int(
        snap.query(f"SELECT COUNT(*) FROM {source.quote(spec.name)} WHERE {where}", params)[0][0]
    )


@dataclass(frozen=True)
class ExtractPlan:
    """What one extract reads, decided in the run's process from the state store and the
    warehouse. Plain data, so that the extract itself can run in a process of its own
    (``rentalctl.pipeline.child``), which then never opens the warehouse: DuckDB lets one
    process at a time open it, and the run's process holds it."""

    table: str
    run_id: str
    bookmark: Watermark | None
    window: Window
    reconciling: bool  # the extract also reads the table's key set (reconcile.py)
    deleted_keys: tuple[int, ...]  # read again wherever they are (reconcile.reinserted_rows)
    baseline: Baseline | None = None  # the key pages' fingerprints the extract compares with


def plan_extract(
    ctx: Context, table_name: str, run_id: str, *, bookmark: Watermark | None, window: Window
) -> ExtractPlan:
    reconciling = window.mode != "backfill" and reconciles(ctx, table_name, run_id)
    deleted: list[int] = []
    baseline = None
    if reconciling:
        incremental = window.mode == "incremental"
        deleted, baseline = read_before_extract(ctx, table_name, incremental=incremental)
    return ExtractPlan(table_name, run_id, bookmark, window, reconciling, tuple(deleted), baseline)


def extract_table(
    ctx: Context, plan: ExtractPlan, *, extracted_at: datetime | None = None
) -> Manifest:
    """Extract one table's window for its run and return its manifest (already in the lake).
    Touches the source, the lake and nothing else."""
    spec = table(plan.table)
    run_id, bookmark, window = plan.run_id, plan.bookmark, plan.window
    settings = ctx.settings
    lake: Lake = ctx.lake
    prefix = run_prefix(spec.name, run_id)
    lake.delete_prefix(prefix)  # a retry of this run starts clean; other runs are untouched
    moment = extracted_at or datetime.now(timezone.utc)

    with ctx.source() as source, source.snapshot() as snap:
        missing = source.missing_columns(snap, spec)
        if missing:
            raise PipelineFailed(missing_columns_message(spec, missing, source.name))
        high = read_high(source, snap, spec)
        if window.mode == "incremental" and bookmark is not None and not reaches(high, bookmark):
            raise PipelineFailed(behind_message(spec, high, bookmark))
        cap = BookmarkCap(None)
        if window.mode != "backfill":  # a backfill moves no bookmark
            cap = bookmark_cap(source, snap, spec, high, settings.max_clock_skew_seconds)
        writer = PartWriter(lake, spec, run_id, prefix, settings.part_file_rows)
        if high is not None or window.mode == "backfill":  # else the table is empty
            sql, params = _query(source, spec, window, high)
            log.debug("extract %s: %s %s", spec.name, sql, params)
            try:
                _write(writer, snap.stream(sql, params, settings.batch_size))
            except UnreadableValue as exc:
                # Bytes the driver cannot decode (SQLite stores any): read the window again in
                # the same snapshot, handing such values over as bytes, so that their rows are
                # quarantined like any value that does not fit.
                log.warning("source table %s: %s; reading it again", spec.name, exc)
                writer = PartWriter(lake, spec, run_id, prefix, settings.part_file_rows)
                _write(writer, snap.stream(sql, params, settings.batch_size, lenient=True))
        key_set = None
        if plan.reconciling:
            if window.mode == "incremental" and high is not None:
                window_where = _where(source, spec, window, high)
                again = reinserted_rows(source, snap, spec, window_where, plan.deleted_keys, 1000)
                _write(writer, again)
            key_set = write_keys(
                lake, source, snap, spec, prefix, settings.batch_size, plan.baseline
            )
        files = writer.close()
    manifest = Manifest(
        table=spec.name,
        run_id=run_id,
        mode=window.mode,
        watermark_column=spec.watermark,
        bookmark=bookmark,
        lower=window.lower,
        high=high,
        since=window.since,
        until=window.until,
        extracted_at=moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        columns=list(spec.column_names),
        rows=sum(f.rows for f in files),
        files=files,
        invalid_rows=writer.invalid_rows,
        invalid_file=writer.invalid_file,
        bookmark_high=cap.value,
        future_rows=cap.future_rows,
        future_after=cap.limit if cap.future_rows else None,
        keys_file=key_set.keys if key_set else None,
        key_pages_file=key_set.pages if key_set else None,
        keys_whole=key_set.whole if key_set else True,
        keys_baseline=plan.baseline.run_id if plan.baseline else None,
    )
    lake.put_bytes(prefix + MANIFEST, manifest.to_json())
    log.info("extracted %s rows of %s for run %s", manifest.rows, spec.name, run_id)
    if manifest.future_rows:
        log.warning(future_message(manifest))
    if manifest.invalid_rows:
        log.warning(
            "%s: %s row(s) quarantined as invalid_value (a value does not fit its column)",
            spec.name,
            manifest.invalid_rows,
        )
    return manifest


def future_message(manifest: Manifest) -> str:
    """The warning of a window holding rows dated after now plus the allowed clock skew."""
    return (
        f"{manifest.table}: {manifest.future_rows:,} row(s) with {manifest.watermark_column} "
        f"after {manifest.future_after} (the source's clock plus extract.max_clock_skew_seconds)"
        f"; processed, but the bookmark stays at {manifest.bookmark_high}"
    )


def reaches(high: Watermark | None, bookmark: Watermark) -> bool:
    # Both come from watermark_value: ints, or timestamps in one text form whose order is time's.
    return high is not None and (
        int(high) >= int(bookmark) if isinstance(bookmark, int) else str(high) >= str(bookmark)
    )


def behind_message(spec: TableSpec, high: Watermark | None, bookmark: Watermark) -> str:
    newest = "holds no rows" if high is None else f"has nothing newer than {high}"
    return (
        f"source table {spec.name} {newest}, behind its bookmark {bookmark}: the source went "
        "back in time (replaced, restored from an older backup, or its newest rows deleted), so "
        "rows it gets from now on could be stamped before the bookmark and never be read. "
        "Nothing was extracted and no "
        "bookmark moved. If the source was replaced on purpose, start the table over: "
        f"`rentalctl seed-bookmarks --reset {spec.name}` (for demo data, `rentalctl demo-data "
        "--replace` resets everything); to re-read a period, `rentalctl backfill --since DATE`"
    )


def _write(writer: PartWriter, batches: Iterable[list[tuple[Any, ...]]]) -> None:
    """Write every batch, or leave nothing behind: no part file for a reader to mistake for
    data (the cleanup is best effort: its own failure must not hide the error that matters,
    and a retry of the run deletes the prefix first anyway)."""
    try:
        for batch in batches:
            writer.write(batch)
    except BaseException:
        writer.abort()
        with suppress(Exception):
            writer.lake.delete_prefix(writer.prefix)
        raise
