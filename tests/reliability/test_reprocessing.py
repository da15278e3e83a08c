"""Reprocessing by hand: a bookmark rewound (or set back) makes the next run read those rows
again, and the curated and presentation layers end exactly as after one clean run — nothing lost,
nothing doubled — with the bookmarks back at the source's high marks and every change in the
history. The raw layer keeps each run's reads (README, Raw layer), so it is not compared.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.reliability.support import bookmarks, differences, lost, warehouse_snapshot
from tests.reliability.test_transient_faults import SCALE, Reference, clean_reference, cli_ok
from tests.support.cli import ok_json

pytestmark = pytest.mark.slow


@pytest.fixture
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return clean_reference(tmp_path_factory)


def served(snapshot: dict[str, Counter[tuple[Any, ...]]]) -> dict[str, Any]:
    return {k: v for k, v in snapshot.items() if k.split(".")[0] in ("curated", "presentation")}


def raw_rows(home: Path, run_id: str, table: str) -> int:
    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        found = conn.execute(
            f"SELECT COUNT(*) FROM raw.{table} WHERE _run_id = ?", [run_id]
        ).fetchone()
        return int(found[0]) if found else 0
    finally:
        conn.close()


def test_rewound_bookmarks_re_read_and_end_as_a_clean_run(
    home: Path, reference: Reference, reliability: Any
) -> None:
    cli_ok(home, "demo-data", "--scale", SCALE)
    first = ok_json("run")["run_id"]
    marks = bookmarks(home)
    assert marks == reference.bookmarks

    ok_json("bookmarks", "rewind", "bookings", "--by", "30d", "--yes")
    ok_json("bookmarks", "rewind", "user_viewing", "--by", "500", "--yes")
    plan = ok_json("run", "--dry-run")
    planned = {t["table"]: t["rows"] for t in plan["tables"]}
    assert plan["estimate"]["based_on_run"] == first

    second = ok_json("run")["run_id"]
    # The dry run's counts are the rows the run then read, table by table.
    assert {t: raw_rows(home, second, t) for t in planned} == planned
    # The 500 ids rewound and the 10,000-id lookback before them: all 600 viewings.
    assert planned["user_viewing"] == 600
    assert served(warehouse_snapshot(home)) == served(reference.snapshot), differences(
        served(reference.snapshot), served(warehouse_snapshot(home))
    )
    assert bookmarks(home) == reference.bookmarks

    history = ok_json("bookmarks", "history")["changes"]
    by = [(c["table"], c["run_id"] or c["command"]) for c in history]
    assert by == [
        ("apartments", first),
        ("apartment_attributes", first),
        ("user_viewing", first),
        ("bookings", first),
        ("bookings", "bookmarks rewind bookings --by 30d"),
        ("user_viewing", "bookmarks rewind user_viewing --by 500"),
        ("user_viewing", second),  # the run commits in table order; unmoved tables: no entry
        ("bookings", second),
    ]
    assert history[-1]["new"] == marks[history[-1]["table"]]
    reliability(
        "reprocessing",
        "After a run, `bookmarks rewind bookings --by 30d` and `rewind user_viewing --by 500`, "
        "then `run --dry-run` and `run`",
        "The dry run's row count per table is what the run then read; the curated and "
        "presentation layers equal a clean run's, the bookmarks are back at the high marks, and "
        "the history holds each run's commits and both rewinds",
        lost(served(reference.snapshot), served(warehouse_snapshot(home))),
    )
