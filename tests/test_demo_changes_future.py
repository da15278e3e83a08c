"""``demo-data --changes`` over a source holding a row dated ``9999-12-31`` plays the day after
the newest change that is not in the future (as a run's bookmark stops there), instead of failing
on a date past year 9999."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from rentalctl.adapters.factories import open_source
from rentalctl.demo.writer import write_demo
from rentalctl.errors import ConfigError
from rentalctl.urls import SqliteURL

FUTURE = "9999-12-31 23:59:59.000000"


def write(path: Path, changes: bool) -> None:
    with open_source(SqliteURL(path), create=True) as source:
        write_demo(source, scale=0.002, seed=3, changes=changes, replace=False, progress=False)


def test_changes_start_after_the_newest_change_not_in_the_future(tmp_path: Path) -> None:
    db = tmp_path / "source.db"
    write(db, changes=False)
    with sqlite3.connect(db) as conn:
        newest = max(
            conn.execute(f"SELECT MAX(last_modified_timestamp) FROM {t}").fetchone()[0]
            for t in ("apartments", "apartment_attributes", "bookings")
        )
        conn.execute(
            "UPDATE bookings SET last_modified_timestamp = ? WHERE booking_id = "
            "(SELECT MIN(booking_id) FROM bookings)",
            (FUTURE,),
        )
    write(db, changes=True)
    day_ends = datetime.fromisoformat(newest) + timedelta(hours=1, days=1)
    with sqlite3.connect(db) as conn:
        stamps = [
            datetime.fromisoformat(ts)
            for t in ("apartments", "apartment_attributes", "bookings")
            for (ts,) in conn.execute(
                f"SELECT last_modified_timestamp FROM {t} "
                "WHERE last_modified_timestamp > ? AND last_modified_timestamp < ?",
                (newest, FUTURE),
            )
        ]
        (future,) = conn.execute(
            "SELECT COUNT(*) FROM bookings WHERE last_modified_timestamp = ?", (FUTURE,)
        ).fetchone()
    assert stamps and max(stamps) <= day_ends  # a day of changes after the real newest one
    assert future == 1


def test_a_source_dated_only_in_the_future_is_refused_in_plain_words(tmp_path: Path) -> None:
    db = tmp_path / "source.db"
    write(db, changes=False)
    with sqlite3.connect(db) as conn:
        for t in ("apartments", "apartment_attributes", "bookings"):
            conn.execute(f"UPDATE {t} SET last_modified_timestamp = ?", (FUTURE,))
    with pytest.raises(ConfigError, match="every change in the source's apartments is dated after"):
        write(db, changes=True)
