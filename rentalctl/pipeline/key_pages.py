"""Which keys a reconciling extract has to read: key pages and their fingerprints.

Reading a table's whole key set on every reconciling run costs time in proportion to the table
(12 million keys at the demo's scale 10), though a source usually deletes few rows, if any. So
the keys are cut into pages of ``PAGE_KEYS`` consecutive values, and the source tells, in one
``GROUP BY``, each page's fingerprint: how many keys it holds, the sum of their offsets in the
page and the sum of the offsets' squares. The merge of a reconciling run keeps the fingerprints
it read in ``curated.key_pages``; the next reconciling extract reads the keys of the pages whose
fingerprint changed (or that vanished) only, and the merge deletes curated rows of those pages
only.

Why a fingerprint that did not change means no key left the page: a key deleted and none added
changes the count. Keys added in the same page as the ones deleted leave the count alone; a new
key from an auto-increment is greater than every key deleted before it, so the offset sum grows.
Only keys chosen by hand can offset both sums at once, and the squares besides.

The stored fingerprints describe the curated layer as long as every curated key of a page came
from the source while the page had that fingerprint: the merge of a run that curates a key new
to the layer without reconciling (a backfill, or a run between reconciling ones when
``extract.reconcile_every_runs`` is above 1) removes the table's fingerprints, and the next
reconciling extract reads every key again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rentalctl.adapters.source import Snapshot, Source
from rentalctl.adapters.warehouse import Warehouse
from rentalctl.curated import SCHEMA
from rentalctl.pipeline import curated_sql as sql
from rentalctl.tables import TableSpec

PAGE_KEYS = 1024
PAGES_TABLE = "key_pages"
# The pages file a reconciling extract writes (gzip CSV, one header row, BIGINT columns): every
# page the source or the stored fingerprints know, its key range, its fingerprint now (0 keys:
# the page vanished), and whether the keys file holds its keys.
PAGE_COLUMNS = (
    "page_base",
    "low_key",
    "high_key",
    "key_count",
    "offset_sum",
    "offset_squares",
    "keys_read",
)
# More ranges than this to read one by one, and the extract reads the whole key set instead.
MAX_RANGES = 200

Fingerprint = tuple[int, int, int]  # keys, sum of offsets, sum of squared offsets


@dataclass(frozen=True)
class Baseline:
    """The fingerprints the merge of ``run_id`` kept, by page base."""

    run_id: str
    pages: Mapping[int, Fingerprint]


def fingerprints(source: Source, snap: Snapshot, spec: TableSpec) -> dict[int, Fingerprint]:
    """Each page's fingerprint in ``snap``, by page base. The remainder and the base (key minus
    offset) are integer arithmetic in SQLite and MySQL alike; a negative key has a negative
    offset and shares page 0 with the first positive ones."""
    key = source.quote(spec.key)
    offset = source.remainder(key, PAGE_KEYS)
    base = f"({key} - {offset})"
    rows = snap.query(
        f"SELECT {base}, COUNT(*), SUM({offset}), SUM({offset} * {offset}) "
        f"FROM {source.quote(spec.name)} WHERE {source.integer_condition(key)} GROUP BY {base}"
    )
    return {int(b): (int(n), int(s), int(s2)) for b, n, s, s2 in rows}


def bounds(base: int) -> tuple[int, int]:
    """The first and last key of the page at ``base`` (page 0 spans both signs)."""
    low = base - (PAGE_KEYS - 1) if base <= 0 else base
    high = base + (PAGE_KEYS - 1) if base >= 0 else base
    return low, high


def changed(now: Mapping[int, Fingerprint], baseline: Baseline) -> list[int]:
    """Bases of the pages whose keys may differ from the baseline's: new, vanished or changed."""
    kept = baseline.pages
    return sorted(b for b in now.keys() | kept.keys() if now.get(b) != kept.get(b))


def ranges(bases: Iterable[int]) -> list[tuple[int, int]]:
    """The key ranges of the pages at ``bases``, neighbours joined."""
    out: list[tuple[int, int]] = []
    for low, high in sorted(bounds(b) for b in bases):
        if out and low == out[-1][1] + 1:
            out[-1] = (out[-1][0], high)
        else:
            out.append((low, high))
    return out


def page_rows(
    now: Mapping[int, Fingerprint], baseline: Baseline | None, read: set[int] | None
) -> list[tuple[int, ...]]:
    """The pages file's rows; ``read`` None: the keys file holds every key."""
    known = now.keys() | (baseline.pages.keys() if baseline else set())
    return [
        (b, *bounds(b), *now.get(b, (0, 0, 0)), int(read is None or b in read))
        for b in sorted(known)
    ]


def stored(warehouse: Warehouse, table: str) -> Baseline | None:
    """The fingerprints kept for ``table`` (None: none kept, or no table to keep them yet)."""
    if not warehouse.tables_present(SCHEMA, [PAGES_TABLE]):
        return None
    rows = warehouse.query(
        "SELECT run_id, page_base, key_count, offset_sum, offset_squares "
        f"FROM {sql.qualified(PAGES_TABLE)} WHERE source_table = {warehouse.placeholder}",
        [table],
    )
    if not rows:
        return None
    return Baseline(str(rows[0][0]), {int(r[1]): (int(r[2]), int(r[3]), int(r[4])) for r in rows})


def kept_by(warehouse: Warehouse, table: str) -> str | None:
    """The run whose fingerprints of ``table`` are kept (None: none are)."""
    if not warehouse.tables_present(SCHEMA, [PAGES_TABLE]):
        return None
    rows = warehouse.query(
        f"SELECT MAX(run_id) FROM {sql.qualified(PAGES_TABLE)} "
        f"WHERE source_table = {warehouse.placeholder}",
        [table],
    )
    return str(rows[0][0]) if rows and rows[0][0] is not None else None


def pages_stage(table: str) -> str:
    return f"stage_key_pages_{table}"


def keep_statements(table: str, run_id: str, dialect: str, *, keep: bool) -> list[sql.Statement]:
    """Replace the fingerprints kept for ``table`` by the staged ones of ``run_id`` (``keep``),
    or remove them."""
    target = sql.qualified(PAGES_TABLE)
    p = sql.PARAM
    out: list[sql.Statement] = [(f"DELETE FROM {target} WHERE source_table = {p}", [table])]
    if keep:
        out.append(
            (
                f"INSERT INTO {target} (source_table, run_id, page_base, key_count, offset_sum, "
                f"offset_squares) SELECT {p}, {p}, page_base, key_count, offset_sum, "
                f"offset_squares FROM {sql.q(pages_stage(table))} WHERE key_count > 0",
                [table, run_id],
            )
        )
    return sql.for_dialect(out, dialect)


def forget_statements(table: str, dialect: str) -> list[sql.Statement]:
    """For the merge of a run that did not reconcile ``table``: remove its fingerprints if the
    merge curated a key new to the layer (``sql.counts_name(table)`` must exist), a key the
    kept fingerprints may not know. Updated rows keep their keys, and the fingerprints."""
    counts = sql.q(sql.counts_name(table))
    return sql.for_dialect(
        [
            (
                f"DELETE FROM {sql.qualified(PAGES_TABLE)} WHERE source_table = {sql.PARAM} "
                f"AND EXISTS (SELECT 1 FROM {counts} WHERE inserted > 0)",
                [table],
            )
        ],
        dialect,
    )
