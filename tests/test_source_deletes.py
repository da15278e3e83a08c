"""Rows deleted in the source leave the curated layer and the KPIs at the next run that
reconciles keys (``extract.reconcile_every_runs``), each recorded in ``curated.deleted_rows``;
a run that does not reconcile leaves them; a key inserted again comes back, even below its
table's bookmark. After each reconciling run the curated tables and the KPIs equal those of one
fresh run over the same source."""

from __future__ import annotations

import gzip
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest

from rentalctl import config
from rentalctl.adapters.lake_local import LocalLake
from rentalctl.context import Context
from rentalctl.pipeline import archive, steps
from rentalctl.pipeline.merge import merge
from rentalctl.pipeline.reconcile import reconciles, write_keys
from rentalctl.tables import TABLES
from tests.reliability.support import warehouse_snapshot
from tests.support.cli import invoke, ok_json
from tests.test_extract_raw import Pipeline, apt, make_pipeline

__all__ = ["make_pipeline"]  # the fixture, shared with the extract tests

OLD = "2023-01-01 00:00:00.000000"  # before every demo row: never a table's newest
APARTMENTS = [
    (id_, f"Flat {id_}", "RentLingo", "1000.00", "USD", "2022-06-01 10:00:00", 1, OLD)
    for id_ in (990001, 990002)
]
BOOKINGS = [
    (id_, 7, 990001, "2024-05-01 10:00:00", day, "2024-06-10", "700.00", "USD", "confirmed", OLD)
    for id_, day in ((990001, "2024-06-01"), (990002, "2024-06-03"))
]
# Viewing ids follow the demo's 1..600; 602 stays the newest, so deleting 601 moves no high mark.
VIEWINGS = [
    (601, 7, 990001, "2024-04-01 10:00:00", "Yes", "save"),
    (602, 7, 990001, "2024-04-02 10:00:00", "No", "call"),
]


def source_write(home: Path, sql: str, rows: list[tuple[Any, ...]]) -> None:
    with sqlite3.connect(home / "source.db") as conn:
        conn.executemany(sql, rows)


def insert(home: Path, table: str, rows: list[tuple[Any, ...]]) -> None:
    marks = ", ".join("?" * len(rows[0]))
    source_write(home, f"INSERT INTO {table} VALUES ({marks})", rows)


def curated(home: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def keys(home: Path) -> dict[str, list[int]]:
    """The test's own keys found in the curated layer."""
    own = {"apartments": "id >= 990001", "bookings": "booking_id >= 990001"}
    own["user_viewing"] = "id > 600"
    out = {}
    for table, where in own.items():
        key = "booking_id" if table == "bookings" else "id"
        sql = f"SELECT {key} FROM curated.{table} WHERE {where} ORDER BY 1"
        out[table] = [r[0] for r in curated(home, sql)]
    return out


def deleted_rows(home: Path) -> list[tuple[Any, ...]]:
    return curated(
        home, "SELECT source_table, record_key, run_id FROM curated.deleted_rows ORDER BY ALL"
    )


def followed(home: Path) -> dict[str, Any]:
    """The curated tables and the KPIs, as compared with a fresh run."""
    skip = ("curated.rejected_rows", "curated.deleted_rows", "curated.fx_rates")
    return {
        name: rows
        for name, rows in warehouse_snapshot(home).items()
        if name.split(".")[0] in ("curated", "presentation") and name not in skip
    }


@pytest.fixture
def fresh(home: Path, tmp_path: Path) -> Callable[[], dict[str, Any]]:
    """One run over a copy of ``home``'s source in a new home made from the demo's state."""
    template = tmp_path / "template"

    def run_fresh() -> dict[str, Any]:
        other = tmp_path / f"fresh{len(list(tmp_path.glob('fresh*')))}"
        shutil.copytree(template, other)
        shutil.copy(home / "source.db", other / "source.db")
        with pytest.MonkeyPatch.context() as m:
            m.setenv("RENTALCTL_HOME", str(other))
            assert ok_json("run")["status"] == "SUCCEEDED"
        return followed(other)

    ok_json("demo-data", "--scale", "0.002")
    shutil.copytree(home, template)
    return run_fresh


def run(*settings: str) -> dict[str, Any]:
    args = [a for s in settings for a in ("--set", s)]
    doc = ok_json(*args, "run")
    assert doc["status"] == "SUCCEEDED"
    return doc


def test_deleted_rows_leave_curated_and_the_kpis_and_come_back_when_inserted_again(
    home: Path, fresh: Callable[[], dict[str, Any]]
) -> None:
    insert(home, "apartments", APARTMENTS)
    insert(home, "bookings", BOOKINGS)
    insert(home, "user_viewing", VIEWINGS)
    first = run()
    everything = {
        "apartments": [990001, 990002],
        "bookings": [990001, 990002],
        "user_viewing": [601, 602],
    }
    assert keys(home) == everything
    assert deleted_rows(home) == []
    assert {t: s["deleted"] for t, s in first["summary"].items()} == {
        "apartments": 0,
        "apartment_attributes": 0,
        "user_viewing": 0,
        "bookings": 0,
    }

    source_write(home, "DELETE FROM bookings WHERE booking_id = ?", [(990001,)])
    source_write(home, "DELETE FROM apartments WHERE id = ?", [(990002,)])
    source_write(home, "DELETE FROM user_viewing WHERE id = ?", [(601,)])
    idle = run("extract.reconcile_every_runs=0")  # reads no key set: deletes stay unseen
    assert keys(home) == everything
    assert deleted_rows(home) == []
    assert {s["deleted"] for s in idle["summary"].values()} == {None}

    with pytest.MonkeyPatch.context() as m:  # keep the run's raw files to merge it again
        m.setattr(archive, "archive_run", lambda ctx, run_id, tables: 0)
        third = run()
    run_id = third["run_id"]
    assert keys(home) == {"apartments": [990001], "bookings": [990002], "user_viewing": [602]}
    assert deleted_rows(home) == [
        ("apartments", "990002", run_id),
        ("bookings", "990001", run_id),
        ("user_viewing", "601", run_id),
    ]
    times = curated(home, "SELECT DISTINCT deleted_at FROM curated.deleted_rows")
    assert len(times) == 1 and times[0][0] is not None
    assert {t: s["deleted"] for t, s in third["summary"].items()} == {
        "apartments": 1,
        "apartment_attributes": 0,
        "user_viewing": 1,
        "bookings": 1,
    }
    shown = invoke("status", run_id)
    assert shown.exit_code == 0
    assert (
        "deleted from curated (their keys left the source): apartments 1, bookings 1, "
        "user_viewing 1"
    ) in " ".join(shown.stdout.split()), shown.stdout
    assert followed(home) == fresh()

    # The same run merged again (a retried step) deletes nothing twice and records nothing twice.
    ctx = Context(config.load(env={"RENTALCTL_HOME": str(home)}))
    tables = list(ctx.settings.tables)
    again = merge(ctx, run_id, tables)
    assert {t: again[t]["deleted"] for t in tables} == dict.fromkeys(tables, 0)
    assert len(deleted_rows(home)) == 3

    # Inserted again with their old watermarks, below the bookmarks: the next reconciling run
    # reads them again. The audit keeps the deletion.
    insert(home, "apartments", [APARTMENTS[1]])
    insert(home, "user_viewing", [VIEWINGS[0]])
    run()
    assert keys(home) == {
        "apartments": [990001, 990002],
        "bookings": [990002],
        "user_viewing": [601, 602],
    }
    assert deleted_rows(home) == [
        ("apartments", "990002", run_id),
        ("bookings", "990001", run_id),
        ("user_viewing", "601", run_id),
    ]
    assert followed(home) == fresh()


def _ctx(every: int, runs: list[dict[str, Any]]) -> Any:
    state = SimpleNamespace(list_runs=lambda limit: runs[:limit])
    return SimpleNamespace(settings=SimpleNamespace(reconcile_every_runs=every), state=state)


def _record(run_id: str, reconciled: bool) -> dict[str, Any]:
    return {"run_id": run_id, "quality": {"bookings": {"reconciled": True} if reconciled else {}}}


def test_every_n_runs_counts_the_runs_before_this_one() -> None:
    now = {"run_id": "R9"}  # the run deciding; its own record comes first
    assert reconciles(_ctx(1, [now]), "bookings", "R9")
    assert not reconciles(_ctx(0, [now]), "bookings", "R9")
    assert reconciles(_ctx(3, [now]), "bookings", "R9")  # no run before: the first reconciles
    history = [now, _record("R8", False), _record("R7", True), _record("R6", False)]
    assert not reconciles(_ctx(3, history), "bookings", "R9")  # R7 is within the last two
    assert reconciles(_ctx(2, history), "bookings", "R9")  # only R8 counts
    assert reconciles(_ctx(3, history), "apartments", "R9")  # per table


def test_a_key_that_is_no_integer_is_left_out_of_the_key_set(tmp_path: Path) -> None:
    """SQLite stores anything in a key column; such a row is quarantined by the extract, never
    curated, so it has no place in the key set either. Batches of integers only are the usual
    case, written whole."""

    class Source:
        placeholder = "?"

        def quote(self, name: str) -> str:
            return f'"{name}"'

        def integer_condition(self, column: str) -> str:
            return f"{column} IS NOT NULL"

        def remainder(self, dividend: str, divisor: int) -> str:
            return f"MOD({dividend}, {divisor})"

    class Snapshot:
        def query(self, query: str) -> list[Any]:
            return []  # no page fingerprints: every key is read

        def stream(self, query: str, params: list[Any], batch_size: int) -> Any:
            yield [(3,), (1,)]
            yield [("x7",), (True,), (2,), (4.0,)]
            yield []
            yield [(2**40,)]

    lake = LocalLake(tmp_path / "lake")
    prefix = "raw/apartments/run_id=R1/"
    keys = write_keys(lake, Source(), Snapshot(), TABLES["apartments"], prefix, 10, None).keys  # type: ignore[arg-type]
    text = gzip.decompress(lake.get_bytes(keys.key)).decode()
    assert (keys.rows, text) == (4, f"id\n3\n1\n2\n{2**40}\n")


def test_the_key_set_is_streamed_from_either_source(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    """On SQLite and on a real MariaDB: the keys only, streamed in the extract's snapshot;
    none when reconciling is off."""
    p = make_pipeline()
    p.insert("apartments", [apt(i, "2025-01-01 10:00:00.000000") for i in (5, 1, 4, 2, 3)])
    p.execute("DELETE FROM apartments WHERE id = ?", "DELETE FROM apartments WHERE id = %s", (4,))
    manifest = steps.extract(p.ctx, "apartments", "R1")
    assert manifest.keys_file is not None
    assert (manifest.keys_file.key, manifest.keys_file.rows) == (
        "raw/apartments/run_id=R1/_keys.csv.gz",
        4,
    )
    text = gzip.decompress(Path(p.ctx.lake.uri(manifest.keys_file.key)).read_bytes()).decode()
    lines = text.splitlines()
    assert (lines[0], sorted(lines[1:], key=int)) == ("id", ["1", "2", "3", "5"])

    off = make_pipeline(**{"extract.reconcile_every_runs": "0"})
    assert steps.extract(off.ctx, "apartments", "R2").keys_file is None
    assert off.ctx.lake.list("raw/apartments/run_id=R2/") == [
        "raw/apartments/run_id=R2/_manifest.json",
        "raw/apartments/run_id=R2/part-00000.csv.gz",
    ]
