"""Reconciling extracts read the keys of the key pages whose fingerprint changed, not every key;
the merge deletes what left those pages, and forgets the fingerprints when rows came in from a
snapshot they do not describe."""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from rentalctl import config
from rentalctl.context import Context
from rentalctl.pipeline import archive, key_pages
from rentalctl.pipeline.key_pages import Baseline
from rentalctl.pipeline.merge import merge
from rentalctl.pipeline.reconcile import write_keys
from rentalctl.run.manifest import PartFile
from rentalctl.tables import TABLES
from tests.test_extract_raw import Pipeline, apt, make_pipeline
from tests.test_source_deletes import (
    OLD,
    curated,
    deleted_rows,
    followed,
    fresh,
    insert,
    run,
    source_write,
)

__all__ = ["fresh", "make_pipeline"]  # fixtures

STAMP = "2025-01-01 10:00:00.000000"


def lines(p: Pipeline, part: PartFile) -> list[list[str]]:
    text = gzip.decompress(Path(p.ctx.lake.uri(part.key)).read_bytes()).decode()
    return [line.split(",") for line in text.splitlines()]


def test_pages_bounds_and_ranges() -> None:
    assert key_pages.bounds(0) == (-1023, 1023)
    assert key_pages.bounds(1024) == (1024, 2047)
    assert key_pages.bounds(-1024) == (-2047, -1024)
    assert key_pages.ranges([4096, -1024, 0, 1024, 8192]) == [
        (-2047, 2047),
        (4096, 5119),
        (8192, 9215),
    ]


def test_only_the_pages_that_changed_are_read_from_either_source(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline()
    p.insert("apartments", [apt(i, STAMP) for i in [*range(1, 11), 1500, 1501, 5000]])
    spec = TABLES["apartments"]
    with p.ctx.source() as source, source.snapshot() as snap:
        before = key_pages.fingerprints(source, snap, spec)
    # keys, sum of offsets in the page, sum of their squares
    assert before == {
        0: (10, 55, 385),
        1024: (2, 476 + 477, 476**2 + 477**2),
        4096: (1, 904, 904**2),
    }

    p.execute(
        "DELETE FROM apartments WHERE id = ?", "DELETE FROM apartments WHERE id = %s", (1501,)
    )
    p.insert("apartments", [apt(3000, STAMP)])
    with p.ctx.source() as source, source.snapshot() as snap:
        read = write_keys(
            p.ctx.lake, source, snap, spec, "raw/apartments/run_id=R2/", 2, Baseline("R1", before)
        )
    assert not read.whole
    assert lines(p, read.keys) == [["id"], ["1500"], ["3000"]]
    assert lines(p, read.pages) == [
        list(key_pages.PAGE_COLUMNS),
        ["0", "-1023", "1023", "10", "55", "385", "0"],
        ["1024", "1024", "2047", "1", "476", str(476**2), "1"],
        ["2048", "2048", "3071", "1", "952", str(952**2), "1"],
        ["4096", "4096", "5119", "1", "904", str(904**2), "0"],
    ]

    # Without fingerprints to compare with, every key is read and every page marked read.
    with p.ctx.source() as source, source.snapshot() as snap:
        whole = write_keys(p.ctx.lake, source, snap, spec, "raw/apartments/run_id=R3/", 5, None)
    assert whole.whole
    assert sorted(int(k) for [k] in lines(p, whole.keys)[1:]) == [*range(1, 11), 1500, 3000, 5000]
    assert {row[-1] for row in lines(p, whole.pages)[1:]} == {"1"}


def test_a_key_that_is_no_integer_counts_in_no_page(tmp_path: Path) -> None:
    """SQLite stores anything in a key column (a MySQL column keeps its type)."""
    p = Pipeline(tmp_path / "home", f"sqlite:///{tmp_path / 'source.db'}", {})
    p.insert("apartments", [apt(3, STAMP)])
    with p.ctx.source() as source:
        sql = "INSERT INTO apartments (id, last_modified_timestamp) VALUES (?, ?)"
        source.write([(sql, [("x7", STAMP), (4.5, STAMP), (None, STAMP)])])
        with source.snapshot() as snap:
            assert key_pages.fingerprints(source, snap, TABLES["apartments"]) == {0: (1, 3, 9)}


def pages_kept(home: Path, table: str) -> list[tuple[Any, ...]]:
    return curated(
        home,
        "SELECT run_id, page_base, key_count FROM curated.key_pages "
        f"WHERE source_table = '{table}' ORDER BY page_base",
    )


def manifest(home: Path, table: str, run_id: str) -> dict[str, Any]:
    """The run's extract manifest, kept in the lake's archive after the run."""
    found = list((home / "lake").rglob(f"{table}/run_id={run_id}/_manifest.json"))
    assert len(found) == 1, found
    return json.loads(found[0].read_text())


def source_count(home: Path, where: str) -> int:
    with sqlite3.connect(home / "source.db") as conn:
        return int(conn.execute(f"SELECT COUNT(*) FROM bookings WHERE {where}").fetchone()[0])


# Bookings of the test's own, in two key pages far above the demo's keys (page 0).
OWN = [990001, 990002, 995001, 995002]


def booking(id_: int, stamp: str) -> tuple[Any, ...]:
    return (id_, 7, 1, "2024-05-01 10:00:00", "2024-06-01", "2024-06-10", "700.00", "USD",
            "confirmed", stamp)  # fmt: skip


def test_deletes_are_found_in_the_pages_read(
    home: Path, fresh: Callable[[], dict[str, Any]]
) -> None:
    insert(home, "bookings", [booking(i, OLD) for i in OWN])
    first = run()
    assert manifest(home, "bookings", first["run_id"])["keys_whole"] is True
    demo = source_count(home, "typeof(booking_id) = 'integer' AND booking_id < 1024")
    assert pages_kept(home, "bookings") == [
        (first["run_id"], 0, demo),  # the demo's bookings
        (first["run_id"], 989184, 2),  # 990001 and 990002
        (first["run_id"], 994304, 2),
    ]

    # One key deleted in a page, and every key of another page.
    source_write(
        home, "DELETE FROM bookings WHERE booking_id IN (?, ?, ?)", [(990001, 995001, 995002)]
    )
    with pytest.MonkeyPatch.context() as m:  # keep the run's raw files to merge it again
        m.setattr(archive, "archive_run", lambda ctx, run_id, tables: 0)
        second = run()
    extract = manifest(home, "bookings", second["run_id"])
    assert (extract["keys_whole"], extract["keys_baseline"]) == (False, first["run_id"])
    assert extract["keys_file"]["rows"] == 1  # 990002, the key left in the pages that changed
    assert deleted_rows(home) == [
        ("bookings", str(k), second["run_id"]) for k in (990001, 995001, 995002)
    ]
    assert pages_kept(home, "bookings") == [
        (second["run_id"], 0, demo),
        (second["run_id"], 989184, 1),
    ]
    assert followed(home) == fresh()

    # The same run merged again (a retried step) keeps its own fingerprints.
    ctx = Context(config.load(env={"RENTALCTL_HOME": str(home)}))
    merge(ctx, second["run_id"], list(ctx.settings.tables))
    assert [r[1] for r in pages_kept(home, "bookings")] == [0, 989184]

    # Nothing changed: no key is read, nothing is deleted.
    third = run()
    extract = manifest(home, "bookings", third["run_id"])
    assert (extract["keys_whole"], extract["keys_file"]["rows"]) == (False, 0)
    assert third["summary"]["bookings"]["deleted"] == 0
    assert len(deleted_rows(home)) == 3

    # A merge whose extract compared with fingerprints no longer kept (another run's merge came
    # in between) forgets them rather than keep its own: the next extract reads every key.
    with pytest.MonkeyPatch.context() as m:
        m.setattr(archive, "archive_run", lambda ctx, run_id, tables: 0)
        fourth = run()
    conn = duckdb.connect(str(home / "warehouse.duckdb"))
    try:
        conn.execute("UPDATE curated.key_pages SET run_id = 'another run'")
    finally:
        conn.close()
    merge(ctx, fourth["run_id"], list(ctx.settings.tables))
    assert pages_kept(home, "bookings") == []


def test_a_merge_without_reconciling_forgets_the_fingerprints_of_a_table_it_added_keys_to(
    home: Path, fresh: Callable[[], dict[str, Any]]
) -> None:
    """A key curated by a run that does not reconcile, and deleted before the next run that
    does, leaves its page's fingerprint as the last reconciling run read it: those must not be
    trusted any more, and every key is read again."""
    every_other = "extract.reconcile_every_runs=2"
    run(every_other)  # reconciles: keeps the fingerprints
    newer = [booking(990001, "2026-01-01 00:00:00.000000")]
    newer.append(booking(990002, "2026-01-02 00:00:00.000000"))  # stays the newest
    insert(home, "bookings", newer)
    run(every_other)  # does not reconcile; curates both
    assert curated(home, "SELECT COUNT(*) FROM curated.bookings WHERE booking_id = 990001") == [
        (1,)
    ]
    assert pages_kept(home, "bookings") == []
    assert pages_kept(home, "apartments") != []  # no apartment new to the layer: kept

    source_write(home, "DELETE FROM bookings WHERE booking_id = ?", [(990001,)])
    third = run(every_other)
    assert manifest(home, "bookings", third["run_id"])["keys_whole"] is True
    assert manifest(home, "apartments", third["run_id"])["keys_whole"] is False
    assert third["summary"]["bookings"]["deleted"] == 1
    assert followed(home) == fresh()
