"""A local run SIGKILLed at every state boundary and in the middle of each step (the whole
process group: the CLI and its Spark JVM), then run again. The source holds a few values their
columns cannot hold, so every run quarantines rows as invalid_value. Afterwards every warehouse
table (curated.rejected_rows with its quarantined rows included) must equal a clean run's over
the same source, the bookmarks too, no file a reader could take may be
partial, and the killed run's lock must have been taken over and its record closed.

The killed run is a real process (``killpoints.py`` arms the point from outside rentalctl); the
rerun runs in this process on the session's SparkSession, which keeps the suite's time down.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.reliability import support
from tests.reliability.killpoints import POINTS, RUN_SETTINGS, KillPoint
from tests.support.cli import ok_json

pytestmark = pytest.mark.slow

KILLPOINTS = Path(__file__).with_name("killpoints.py")
SCALE = "0.004"  # bookings: 2000 rows, two part files of 1000


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo source for every case (generated once, copied into each home)."""
    home = tmp_path_factory.mktemp("kill-source")
    result = subprocess.run(
        [sys.executable, "-m", "rentalctl", "demo-data", "--scale", SCALE],
        env={**os.environ, "RENTALCTL_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(home / "source.db") as db:
        for sql, values in UNFIT_ROWS:
            db.execute(sql, values)
    db.close()
    return home / "source.db"


# Values their columns cannot hold, so that every run quarantines these rows as invalid_value
# and every comparison below includes them. Stamped inside the demo's history but before the
# last lookback window: a lookback re-read of few rows with one of these would trip the
# rejected-share gate, which is not what this suite tests.
UNFIT_ROWS: list[tuple[str, tuple[object, ...]]] = [
    (
        "INSERT INTO apartments (id, title, price, currency, last_modified_timestamp) "
        "VALUES (?, ?, ?, ?, ?)",
        (900001, "Loft", "call us", "USD", "2024-06-01 10:00:00.000000"),
    ),
    (
        "INSERT INTO apartment_attributes (id, category, latitude, last_modified_timestamp) "
        "VALUES (?, ?, ?, ?)",
        (900001, "housing/rent", "north", "2024-06-01 10:00:01.000000"),
    ),
    (
        "INSERT INTO bookings (booking_id, user_id, apartment_id, checkin_date, checkout_date, "
        "total_price, currency, booking_status, last_modified_timestamp) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            900001,
            1,
            1,
            "2024-06-01",
            "2024-06-03",
            "n/a",
            "USD",
            "confirmed",
            "2024-06-02 10:00:00.000000",
        ),
    ),
    (
        "INSERT INTO bookings (booking_id, user_id, apartment_id, checkin_date, checkout_date, "
        "total_price, currency, booking_status, last_modified_timestamp) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            900002,
            1,
            1,
            "2024-02-30",
            "2024-03-02",
            "10.00",
            "USD",
            "confirmed",
            "2024-06-03 10:00:00.000000",
        ),
    ),
    (
        "INSERT INTO user_viewing (id, user_id, apartment_id, viewed_at, is_wishlisted) "
        "VALUES (?, ?, ?, ?, ?)",
        (5000, 1, 1, "2024-00-10 12:00:00", "no"),
    ),
]


def fresh_home(base: Path, source: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = base / "home"
    home.mkdir()
    shutil.copy(source, home / "source.db")
    monkeypatch.setenv("RENTALCTL_HOME", str(home))
    ok_json("seed-bookmarks")
    return home


def run_here() -> dict[str, Any]:
    doc: dict[str, Any] = ok_json(*RUN_SETTINGS, "run")
    return doc


@pytest.fixture(scope="module")
def clean(source: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What an undisturbed run over the same source leaves, and what a second run after it
    leaves: that one re-reads the lookback window (docs/contract.md §4), so each raw table whose
    bookmark had moved holds those rows once more (once per run); nothing else changes."""
    with pytest.MonkeyPatch.context() as mp:
        home = fresh_home(tmp_path_factory.mktemp("kill-clean"), source, mp)
        run_here()
        once = support.warehouse_snapshot(home)
        # The source's unfit rows are quarantined, once each.
        quarantined = [r for r in once["curated.rejected_rows"].elements() if "invalid_value" in r]
        assert len(quarantined) == len(UNFIT_ROWS), quarantined
        bookmarks = support.bookmarks(home)
        run_here()
        twice = support.warehouse_snapshot(home)
        assert support.bookmarks(home) == bookmarks
        assert {n for n in support.differences(once, twice)} <= {f"raw.{t}" for t in bookmarks}
        return {"once": once, "twice": twice, "bookmarks": bookmarks}


def expected_warehouse(clean: dict[str, Any], committed: set[str]) -> support.Snapshot:
    """A clean history's warehouse when the killed run had committed the bookmarks of
    ``committed``: for those tables the run after it was a second run, for the others a
    first."""
    return {
        name: clean["twice" if name.removeprefix("raw.") in committed else "once"][name]
        for name in clean["once"]
    }


def kill_run(home: Path, point: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run ``rentalctl run`` in its own process group with ``point`` armed; returns the result
    and the group id."""
    proc = subprocess.Popen(
        [sys.executable, str(KILLPOINTS), point, *RUN_SETTINGS, "run"],
        env={**os.environ, "RENTALCTL_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), proc.pid


def lake_keys(home: Path, prefix: str) -> list[str]:
    from rentalctl.adapters.lake_local import LocalLake

    return LocalLake(home / "lake").list(prefix)


def lock_is_free(home: Path) -> bool:
    """A new holder that treats every holder as alive gets the lock at once."""
    from rentalctl import config
    from rentalctl.context import Context
    from rentalctl.run_lock import describe_self

    store = Context(config.load(env={"RENTALCTL_HOME": str(home)})).state
    try:
        taken = store.acquire_lock(describe_self("PROBE"), lambda holder: False) is None
        store.release_lock("PROBE")
        return taken
    finally:
        store.close()


def group_alive(pgid: int) -> bool:
    """True while a process of the group still runs. SIGKILL reaches each member on its own,
    so the JVM may outlive the CLI by a moment; a zombie (dead, not yet reaped by init) is dead."""
    deadline = time.monotonic() + 10
    while True:
        found = subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True, text=True)
        running = [pid for pid in found.stdout.split() if _state(pid) not in ("Z", "X", None)]
        if not running or time.monotonic() > deadline:
            return bool(running)
        time.sleep(0.2)


def _state(pid: str) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def partial_files(home: Path, *, killed: bool = False) -> list[str]:
    """Files the lake lists (what a reader can take) that are not whole: every gzip file must
    decompress to its end, every JSON document parse, every Parquet file carry its footer. Also
    temporary files of interrupted writes, except right after a kill (``killed``): a write the
    kill interrupted leaves one, which no reader takes, and the next run removes."""
    from rentalctl.adapters.lake_local import LocalLake

    lake = LocalLake(home / "lake")
    bad = []
    for key in lake.list(""):
        data = lake.get_bytes(key)
        try:
            if key.endswith(".gz"):
                gzip.decompress(data)
            elif key.endswith(".json"):
                json.loads(data)
            elif key.endswith(".parquet"):
                assert data[:4] == data[-4:] == b"PAR1"
        except (OSError, EOFError, ValueError, AssertionError):
            bad.append(key)
    unfinished = support.unfinished_lake_files(home)
    if killed:
        unfinished = [f for f in unfinished if not Path(f).name.startswith(".tmp-")]
    return bad + unfinished


@pytest.mark.parametrize("point", POINTS, ids=[p.name for p in POINTS])
def test_a_killed_run_is_recovered_by_the_next(
    point: KillPoint,
    source: Path,
    clean: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reliability: Any,
) -> None:
    home = fresh_home(tmp_path, source, monkeypatch)
    killed, pgid = kill_run(home, point.name)
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-3000:])
    assert not group_alive(pgid), "a process of the killed run survived"
    [dead] = [r["run_id"] for r in ok_json("status")["runs"]]
    assert partial_files(home, killed=True) == []
    committed = {t for t, b in support.bookmark_entries(home).items() if b.run_id == dead}
    expected = expected_warehouse(clean, committed)

    rerun = run_here()
    assert rerun["status"] == "SUCCEEDED"
    after = ok_json("status", dead)
    if point.name == "enter-succeeded":
        # Archive had closed the record as SUCCEEDED before the kill; nothing is left to do.
        assert after["status"] == "SUCCEEDED"
        fate = "the killed run had already recorded success"
    else:
        assert after["status"] == "FAILED"
        assert after["error"]["Error"] == "Rentalctl.Abandoned"
        assert rerun["run_id"] in after["error"]["Cause"]
        discarded = sum((after.get("raw_discarded") or {}).values())
        fate = "the killed run was recorded as abandoned" + (
            "; whatever raw rows it had loaded were discarded"
            if point.beside
            else f"; its {discarded} uncommitted raw rows were discarded"
            if discarded
            else ""
        )
    assert after.get("raw_to_discard", []) == []
    # The tables the dead run had committed are done with: their raw files are archived.
    assert [k for t in committed for k in lake_keys(home, f"raw/{t}/run_id={dead}/")] == [], (
        "a committed table's raw files were left in raw/"
    )

    actual = support.warehouse_snapshot(home)
    assert support.differences(expected, actual) == {}
    assert support.bookmarks(home) == clean["bookmarks"]
    assert partial_files(home) == []
    assert lock_is_free(home)

    reliability(
        "kill",
        f"killed {point.description}",
        f"{fate}; the next run took the lock over and succeeded; every warehouse table (the "
        f"source's {len(UNFIT_ROWS)} unfit rows quarantined once each in curated.rejected_rows "
        "as invalid_value) and bookmark equals a clean run's, and no partial file is visible "
        "in the lake",
        support.lost(expected, actual),
    )


# Rows the source loses between two runs: valid curated rows, none a table's newest (deleting
# that would read as a source gone back in time).
DELETES = [("bookings", "booking_id", 1), ("apartments", "id", 2)]
# Kill points around the transaction that deletes them, and after it.
DELETING_POINTS = [
    p for p in POINTS if p.name in ("mid-merge", "enter-presentation", "enter-archive")
]


def delete_rows(home: Path) -> None:
    with sqlite3.connect(home / "source.db") as db:
        for table, key, value in DELETES:
            db.execute(f"DELETE FROM {table} WHERE {key} = ?", (value,))
    db.close()


def curated_and_kpis(home: Path) -> support.Snapshot:
    """The curated and presentation tables: the raw layer holds whatever lookbacks re-read."""
    snap = support.warehouse_snapshot(home)
    return {n: rows for n, rows in snap.items() if not n.startswith("raw.")}


@pytest.fixture(scope="module")
def clean_deletes(source: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An undisturbed run, the deletes in the source, and a run that removes them."""
    with pytest.MonkeyPatch.context() as mp:
        home = fresh_home(tmp_path_factory.mktemp("kill-clean-deletes"), source, mp)
        run_here()
        delete_rows(home)
        run_here()
        after = curated_and_kpis(home)
        assert sorted(after["curated.deleted_rows"].elements()) == [
            (table, str(value)) for table, _, value in sorted(DELETES)
        ]
        assert still_curated(home) == []
        return {"after": after, "bookmarks": support.bookmarks(home)}


def still_curated(home: Path) -> list[tuple[str, int]]:
    """The deleted rows the curated layer still holds."""
    import duckdb

    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return [
            (table, value)
            for table, key, value in DELETES
            if conn.execute(
                f"SELECT COUNT(*) FROM curated.{table} WHERE {key} = ?", [value]
            ).fetchall()[0][0]
        ]
    finally:
        conn.close()


@pytest.mark.parametrize("point", DELETING_POINTS, ids=[p.name for p in DELETING_POINTS])
def test_a_killed_run_that_deletes_is_recovered_by_the_next(
    point: KillPoint,
    source: Path,
    clean_deletes: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reliability: Any,
) -> None:
    home = fresh_home(tmp_path, source, monkeypatch)
    run_here()
    assert still_curated(home) == [(table, value) for table, _, value in DELETES]
    delete_rows(home)
    killed, pgid = kill_run(home, point.name)
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-3000:])
    assert not group_alive(pgid), "a process of the killed run survived"

    assert run_here()["status"] == "SUCCEEDED"
    expected, actual = clean_deletes["after"], curated_and_kpis(home)
    assert support.differences(expected, actual) == {}
    assert still_curated(home) == []
    assert support.bookmarks(home) == clean_deletes["bookmarks"]
    assert partial_files(home) == []
    assert lock_is_free(home)
    reliability(
        "kill",
        f"killed a run that deletes rows {point.description}",
        "the next run succeeded; the rows deleted in the source are gone from the curated "
        "tables and the KPIs and recorded once each in curated.deleted_rows, every curated and "
        "presentation table and bookmark equals a clean history's",
        support.lost(expected, actual),
    )
