"""Deletes in the source, found by reconciling keys.

A watermark window only ever sees rows that exist: a row deleted in the source leaves no trace
to extract. So every ``extract.reconcile_every_runs`` runs, the extract also reads the table's
keys (the key column only, streamed in batches, in the same snapshot as the window) into one
gzip CSV file next to the run's part files, listed in the manifest with its checksum: every key,
or only those of the key pages whose fingerprint changed since the last reconciling merge
(``key_pages``). The merge then deletes, in its one transaction, every curated row of the pages
read whose key that set lacks, and records each in ``curated.deleted_rows`` (table, key, run,
time): the presentation layer built after the merge follows the source.

Idempotent per run: a repeated merge of the run finds no curated row to delete any more, and an
audit row is written only together with the deletion of its row, once per (table, key, run). A
key re-inserted later comes back: as a new key its row is merged like any other, and a row whose
watermark is below the bookmark (an id re-used, a row restored from a backup) is read again by
the next reconciling extract, which also reads the rows of keys deleted before (see
``reinserted_rows``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rentalctl.adapters.lake import Lake
from rentalctl.adapters.source import Snapshot, Source
from rentalctl.adapters.warehouse import Warehouse
from rentalctl.context import Context
from rentalctl.curated import CURATED, SCHEMA
from rentalctl.pipeline import curated_sql as sql
from rentalctl.pipeline import key_pages
from rentalctl.pipeline.key_pages import Baseline
from rentalctl.pipeline.rawfiles import _gzip_text, put_part
from rentalctl.run.manifest import PartFile
from rentalctl.tables import TableSpec

KEYS_FILE = "_keys.csv.gz"
PAGES_FILE = "_key_pages.csv.gz"
DELETED_ROWS = "deleted_rows"


def reconciles(ctx: Context, table: str, run_id: str) -> bool:
    """Whether ``run_id`` reads the key set of ``table``: never when the setting is 0, else
    when none of the ``N - 1`` runs before it reconciled the table (their merge reports say).
    The runs counted are those started before this one, so a retried extract decides alike."""
    every = ctx.settings.reconcile_every_runs
    if every <= 0:
        return False
    if every == 1:
        return True
    earlier = [r for r in ctx.state.list_runs(limit=every) if r.get("run_id") != run_id]
    return not any(
        ((r.get("quality") or {}).get(table) or {}).get("reconciled") for r in earlier[: every - 1]
    )


@dataclass(frozen=True)
class KeySet:
    """What a reconciling extract read of a table's keys: the keys file, the pages file
    (``key_pages.PAGE_COLUMNS``) and whether the keys file holds every key, not only those of
    the pages marked read."""

    keys: PartFile
    pages: PartFile
    whole: bool


def write_keys(
    lake: Lake,
    source: Source,
    snap: Snapshot,
    spec: TableSpec,
    prefix: str,
    batch_size: int,
    baseline: Baseline | None,
) -> KeySet:
    """Stream the keys of ``spec``'s table in ``snap`` into ``prefix + KEYS_FILE``: those of the
    pages whose fingerprint differs from ``baseline``, or all of them (no baseline, or changes
    scattered over more than ``MAX_RANGES`` ranges); memory holds one batch. A key that is not
    an integer (SQLite stores anything) is left out: its row is quarantined by the extract and
    never curated."""
    now = key_pages.fingerprints(source, snap, spec)
    read = None if baseline is None else key_pages.changed(now, baseline)
    spans = None if read is None else key_pages.ranges(read)
    if spans is not None and len(spans) > key_pages.MAX_RANGES:
        read = spans = None
    key, name = source.quote(spec.key), source.quote(spec.name)
    every = f"SELECT {key} FROM {name} WHERE {source.integer_condition(key)}"
    p = source.placeholder
    queries = (
        [(every, [])]
        if spans is None
        else [(f"{every} AND {key} BETWEEN {p} AND {p}", [low, high]) for low, high in spans]
    )

    def lines() -> Iterator[str]:
        for query, params in queries:
            for batch in snap.stream(query, params, batch_size):
                if not batch:
                    continue
                (keys,) = zip(*batch)
                if set(map(type, keys)) != {int}:  # the usual case checked in one call
                    keys = tuple(filter(_integer, keys))
                if keys:
                    yield "\n".join(map(str, keys)) + "\n"

    keys_file = _write_csv(lake, prefix + KEYS_FILE, [spec.key], lines())
    rows = key_pages.page_rows(now, baseline, None if read is None else set(read))
    pages = (",".join(map(str, row)) + "\n" for row in rows)
    pages_file = _write_csv(lake, prefix + PAGES_FILE, key_pages.PAGE_COLUMNS, pages)
    return KeySet(keys_file, pages_file, whole=read is None)


def _write_csv(lake: Lake, key: str, header: Sequence[str], chunks: Iterable[str]) -> PartFile:
    """Write ``header`` and ``chunks`` (whole lines) as gzip CSV at ``key``; its rows are the
    chunks' lines."""
    rows = 0
    with tempfile.TemporaryDirectory(prefix="rentalctl-keys-") as tmp:
        path = Path(tmp) / key.rsplit("/", 1)[-1]
        sink = _gzip_text(path)
        try:
            sink.write(",".join(header) + "\n")
            for chunk in chunks:
                rows += chunk.count("\n")
                sink.write(chunk)
        finally:
            sink.close()
        return put_part(lake, path, key, rows)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def keys_stage(table: str) -> str:
    return f"stage_keys_{table}"


def deleted_name(table: str) -> str:
    return f"merge_deleted_{table}"


def delete_statements(
    table: str, run_id: str, moment: datetime, dialect: str, *, whole: bool
) -> list[sql.Statement]:
    """Delete the curated rows of ``table`` whose key the staged key set lacks (the stage
    ``keys_stage(table)`` must exist), recording each in curated.deleted_rows first; counts
    them into ``deleted_name(table)``. Unless the key set is ``whole``, only rows of the pages
    it was read for (``key_pages.pages_stage(table)``) are looked at. Run id and time (the
    merge's, UTC) are bound parameters."""
    key = sql.q(CURATED[table].key)
    target, stage = sql.qualified(table), sql.q(keys_stage(table))
    audit, gone = sql.qualified(DELETED_ROWS), sql.q(deleted_name(table))
    pages = (
        ""
        if whole
        else f"JOIN {sql.q(key_pages.pages_stage(table))} r "
        f"ON r.keys_read = 1 AND c.{key} BETWEEN r.low_key AND r.high_key "
    )
    p = sql.PARAM
    written: list[sql.Statement] = [
        f"DROP TABLE IF EXISTS {gone}",
        f"CREATE TEMP TABLE {gone} AS SELECT c.{key} AS k FROM {target} c {pages}"
        f"WHERE NOT EXISTS (SELECT 1 FROM {stage} s WHERE s.{key} = c.{key})",
        (
            f"INSERT INTO {audit} (source_table, record_key, run_id, deleted_at) "
            f"SELECT {p}, CAST(g.k AS VARCHAR(64)), {p}, {p} FROM {gone} g",
            [table, run_id, moment],
        ),
        f"DELETE FROM {target} WHERE {key} IN (SELECT k FROM {gone})",
    ]
    return sql.for_dialect(written, dialect)


def reinserted_rows(
    source: Source,
    snap: Snapshot,
    spec: TableSpec,
    window: tuple[str, list[Any]],
    keys: Sequence[int],
    batch_size: int,
) -> Iterator[list[tuple[Any, ...]]]:
    """The rows a reconciling extract reads besides its ``window`` (condition, values): rows of
    ``keys`` (``deleted_keys``, deleted by an earlier run) that the source holds again although
    their watermark is outside the window (an id re-used below the bookmark, a row restored with
    its old timestamp). Asked for in chunks of bound keys."""
    where, params = window
    cols = ", ".join(source.quote(c) for c in spec.column_names)
    for i in range(0, len(keys), _CHUNK):
        chunk = keys[i : i + _CHUNK]
        marks = ", ".join([source.placeholder] * len(chunk))
        query = (
            f"SELECT {cols} FROM {source.quote(spec.name)} "
            f"WHERE {source.quote(spec.key)} IN ({marks}) AND NOT ({where})"
        )
        yield from snap.stream(query, [*chunk, *params], batch_size)


_CHUNK = 500  # bound keys per query: far below SQLite's and MySQL's limits


def read_before_extract(
    ctx: Context, table: str, *, incremental: bool
) -> tuple[list[int], Baseline | None]:
    """What a reconciling extract of ``table`` needs from the warehouse, read in the run's
    process (``ExtractPlan``): the extract itself may run in a process of its own, and DuckDB
    lets one process at a time open the warehouse. The keys recorded as deleted and not curated
    now (at most the deletes since the curated layer began; for an incremental extract only),
    and the key pages' fingerprints kept by the last reconciling merge."""
    with ctx.warehouse() as warehouse:
        present = warehouse.tables_present(SCHEMA, [DELETED_ROWS, table])
        deleted = deleted_keys(warehouse, table) if incremental and len(present) == 2 else []
        return deleted, key_pages.stored(warehouse, table)


def deleted_keys(warehouse: Warehouse, table: str) -> list[int]:
    key = sql.q(CURATED[table].key)
    p = warehouse.placeholder
    rows = warehouse.query(
        f"SELECT DISTINCT d.record_key FROM {sql.qualified(DELETED_ROWS)} d "
        f"WHERE d.source_table = {p} AND NOT EXISTS (SELECT 1 FROM {sql.qualified(table)} c "
        f"WHERE CAST(c.{key} AS VARCHAR(64)) = d.record_key)",
        [table],
    )
    return sorted(int(k) for (k,) in rows)
