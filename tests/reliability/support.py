"""What the reliability suite compares: a local home's warehouse, bookmarks and lake, in forms
that two runs over the same source must agree on whatever happened in between.

Run ids and extraction times differ between any two runs, so the columns holding them
(``_run_id``, ``_extracted_at``, ``rejected_rows.run_id``, ``deleted_rows.run_id`` and
``deleted_at``) are left out; everything else of every table in the raw, curated and
presentation schemas is compared as a multiset, so a row lost or a row doubled shows (DOUBLE
values to 12 significant digits).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

RUN_COLUMNS = {"_run_id", "_extracted_at", "run_id", "deleted_at"}

Snapshot = dict[str, Counter[tuple[Any, ...]]]


def warehouse_snapshot(home: Path) -> Snapshot:
    """Every table of the three layers: its rows without the run columns, as a multiset."""
    import duckdb

    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('raw', 'curated', 'presentation') ORDER BY ALL"
        ).fetchall()
        out: Snapshot = {}
        for schema, name in tables:
            cols = [
                c
                for (c,) in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                    [schema, name],
                ).fetchall()
                if c not in RUN_COLUMNS
            ]
            listed = ", ".join(f'"{c}"' for c in cols)
            rows = conn.execute(f'SELECT {listed} FROM {schema}."{name}"').fetchall()
            out[f"{schema}.{name}"] = Counter(tuple(map(_approx, row)) for row in rows)
        return out
    finally:
        conn.close()


def _approx(value: Any) -> Any:
    """DOUBLE values to 12 significant digits: an average (docs/contract.md §6: DOUBLE, not rounded)
    sums in whatever order DuckDB's threads take the rows, so its last bits vary between equal
    runs."""
    return float(f"{value:.12g}") if isinstance(value, float) else value


def differences(expected: Snapshot, actual: Snapshot) -> dict[str, dict[str, int]]:
    """Per table, rows missing from ``actual`` and rows it has in excess; {} when equal."""
    out = {}
    for name in sorted(set(expected) | set(actual)):
        want, got = expected.get(name, Counter()), actual.get(name, Counter())
        missing, extra = sum((want - got).values()), sum((got - want).values())
        if missing or extra or (name in expected) != (name in actual):
            out[name] = {"missing": missing, "extra": extra}
    return out


def lost(expected: Snapshot, actual: Snapshot) -> str:
    """'nothing', or which tables lost or doubled how many rows (for the report)."""
    diff = differences(expected, actual)
    if not diff:
        return "nothing"
    return "; ".join(
        f"{name}: {d['missing']} missing, {d['extra']} extra" for name, d in diff.items()
    )


def bookmark_entries(home: Path) -> dict[str, Any]:
    """The bookmark store's entries (rentalctl.adapters.state.Bookmark) by table."""
    from rentalctl import config
    from rentalctl.context import Context

    ctx = Context(config.load(env={"RENTALCTL_HOME": str(home)}))
    try:
        return dict(ctx.state.bookmarks())
    finally:
        ctx.state.close()


def bookmarks(home: Path) -> dict[str, Any]:
    """Each table's bookmark value."""
    return {t: b.value for t, b in bookmark_entries(home).items()}


def unfinished_lake_files(home: Path) -> list[str]:
    """Files a reader could take for data but that are not whole: temporary files of an
    interrupted write, and files a manifest lists that are missing or of another size."""
    lake = home / "lake"
    bad = [str(p.relative_to(lake)) for p in lake.rglob(".tmp-*")]
    for manifest in lake.rglob("_manifest.json"):
        doc = json.loads(manifest.read_text())
        for entry in doc.get("files", []):
            path = lake / entry["key"]
            if not path.is_file() and not (lake / "archive" / entry["key"]).is_file():
                bad.append(f"missing: {entry['key']}")
    return sorted(bad)
