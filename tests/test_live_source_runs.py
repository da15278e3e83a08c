"""Through ``rentalctl run`` over demo data: a row dated 9999-12-31 is curated, shown as a
warning by ``status`` and leaves the bookmark below the clock; and a second row of a booking's
version, read by a later run's lookback, ends as one run over both rows would leave it (the
greatest columns win, whichever arrived first)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support.cli import invoke, ok_json

pytestmark = pytest.mark.slow

FUTURE = "9999-12-31 23:59:59.000000"


def booking(conn: sqlite3.Connection, booking_id: int, status: str, stamp: str) -> None:
    conn.execute(
        "INSERT INTO bookings VALUES (?, 7, (SELECT MIN(id) FROM apartments), "
        "'2025-03-01 10:00:00', '2025-04-01', '2025-04-03', 200.00, 'USD', ?, ?)",
        (booking_id, status, stamp),
    )


def test_future_rows_and_same_version_rows_through_runs(home: Path, spark: Any) -> None:
    ok_json("demo-data", "--scale", "0.002")
    source = home / "source.db"
    with sqlite3.connect(source) as conn:
        (newest,) = conn.execute("SELECT MAX(last_modified_timestamp) FROM bookings").fetchone()
        conn.execute(
            "INSERT INTO apartments VALUES (990001, 'Loft', 'test', 1000.00, 'USD', "
            "'2025-01-01 00:00:00', 1, ?)",
            (FUTURE,),
        )
        booking(conn, 992000, "confirmed", newest)
        booking(conn, 992001, "pending", newest)
    first = ok_json("run")
    assert first["status"] == "SUCCEEDED"
    shown = invoke("status", first["run_id"])
    assert "warning: apartments: 1 row(s) with last_modified_timestamp after " in " ".join(
        shown.stderr.split() + shown.stdout.split()
    )
    marks = ok_json("bookmarks", "show")["bookmarks"]
    assert marks["apartments"]["value"] < "9999"

    # Second rows of both versions: same timestamp, another status.
    with sqlite3.connect(source) as conn:
        conn.execute("UPDATE bookings SET booking_status = 'pending' WHERE booking_id = 992000")
        conn.execute("UPDATE bookings SET booking_status = 'confirmed' WHERE booking_id = 992001")
    second = ok_json("run")
    assert second["status"] == "SUCCEEDED"
    assert second["summary"]["bookings"]["already_curated"] is None  # transformed, not skipped
    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        rows = conn.execute(
            "SELECT booking_id, booking_status FROM curated.bookings "
            "WHERE booking_id >= 992000 ORDER BY 1"
        ).fetchall()
        future = conn.execute(
            "SELECT COUNT(*) FROM curated.apartments WHERE id = 990001"
        ).fetchone()
    finally:
        conn.close()
    # 'pending' sorts after 'confirmed': it wins whichever of the two arrived first.
    assert rows == [(992000, "pending"), (992001, "pending")]
    assert future == (1,)
