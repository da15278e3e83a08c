"""A SQLite source written the way other programs write one: tables declared with the types an
ORM or a script picks (NUMERIC, DATETIME, BOOLEAN, or no type at all), so SQLite stores what
its type affinity makes of each value: a decimal becomes a binary float (or an integer), a
number written as text stays text in an untyped column. Each row carries its expected fate,
written by hand: numbers are read as MySQL would store them (a float through its shortest text,
then rounded to the column's scale half away from zero), integers written as text and ISO
timestamps with ``T`` are values; a Unix epoch in a DATETIME column is quarantined as
``invalid_value`` (seconds or milliseconds cannot be told apart), and curated once a later
version holds a timestamp.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.plugin import Record
from tests.reliability.test_bad_input import (
    STAMP0,
    Case,
    D,
    Row,
    SourceDB,
    apt,
    assert_nothing_else,
    attr,
    book,
    lost_of,
    mismatches,
    placements,
    run_ok,
    stamp,
    stamped,
    write_fix,
)

pytestmark = pytest.mark.slow

# An ORM's declarations (NUMERIC and DATETIME have numeric affinity: '100.00' is stored as the
# integer 100, '46.6503622' as a REAL), and a script's table with no types at all (every value
# stored as the program passed it).
PROGRAM_TABLES = [
    'CREATE TABLE "apartments" ("id" INTEGER, "title" VARCHAR(255), "source" VARCHAR(50), '
    '"price" NUMERIC(12, 2), "currency" VARCHAR(10), "listing_created_on" DATETIME, '
    '"is_active" BOOLEAN, "last_modified_timestamp" DATETIME NOT NULL)',
    'CREATE TABLE "apartment_attributes" ("id" INTEGER, "category" VARCHAR(50), "body" TEXT, '
    '"amenities" TEXT, "bathrooms" NUMERIC, "bedrooms" NUMERIC, "fee" NUMERIC, '
    '"has_photo" VARCHAR(20), "pets_allowed" VARCHAR(50), "price_display" VARCHAR(50), '
    '"price_type" VARCHAR(20), "square_feet" INTEGER, "address" VARCHAR(255), '
    '"cityname" VARCHAR(100), "state" VARCHAR(50), "latitude" NUMERIC, "longitude" NUMERIC, '
    '"last_modified_timestamp" DATETIME NOT NULL)',
    'CREATE TABLE "bookings" ("booking_id", "user_id", "apartment_id", "booking_date", '
    '"checkin_date", "checkout_date", "total_price", "currency", "booking_status", '
    '"last_modified_timestamp")',
]
INVALID_DATETIME = "does not fit DATETIME: expected YYYY-MM-DD[ HH:MM:SS[.ffffff]]"


def program_source(tmp_path: Path) -> SourceDB:
    path = tmp_path / "source.db"
    with sqlite3.connect(path) as conn:
        for ddl in PROGRAM_TABLES:
            conn.execute(ddl)
    conn.close()
    return SourceDB(f"sqlite:///{path}", None)  # adds user_viewing, as rentalctl declares it


def cases() -> list[Case]:
    return [
        Case(
            "REAL in a NUMERIC column (apartment_attributes.latitude written as '46.6503622', "
            "stored as 46.650362200000004; 0.1 + 0.2 in apartments.price)",
            "a value: read through its shortest text and rounded to the column's scale "
            "(46.6503622, 0.30), and curated",
            [
                attr(1, latitude=46.650362200000004, curated=dict(latitude=D("46.6503622"))),
                apt(1, price=0.1 + 0.2, curated=dict(price=D("0.30"), price_usd=D("0.30"))),
            ],
        ),
        Case(
            "a float tie in a NUMERIC column (apartments.price = 2.675, "
            "apartment_attributes.longitude = -71.06000005)",
            "a value: its shortest text is a tie, rounded half away from zero as MySQL rounds "
            "(2.68, -71.0600001; the binary float alone would give 2.67), and curated",
            [
                apt(2, price=2.675, curated=dict(price=D("2.68"), price_usd=D("2.68"))),
                attr(2, longitude=-71.06000005, curated=dict(longitude=D("-71.0600001"))),
            ],
        ),
        Case(
            "integers written as text or as whole floats (bookings.user_id = '42', "
            "apartment_id = 7.0 in an untyped column)",
            "a value: the whole number, curated",
            [book(1, user_id="42", apartment_id=7.0, curated=dict(user_id=42, apartment_id=7))],
        ),
        Case(
            "ISO timestamps with 'T' (bookings.booking_date = '2024-05-01T09:30:00', "
            "checkout_date = '2024-06-05T00:00:00')",
            "a value: the same timestamp, curated",
            [
                book(
                    2,
                    booking_date="2024-05-01T09:30:00",
                    checkout_date="2024-06-05T00:00:00",
                    curated=dict(
                        booking_date=datetime(2024, 5, 1, 9, 30), checkout_date=date(2024, 6, 5)
                    ),
                )
            ],
        ),
        Case(
            "Unix epochs as integers in a DATETIME column (apartments.listing_created_on = "
            "1704103200; bookings.booking_date = 1714554000000, in milliseconds)",
            "a rejection: seconds or milliseconds cannot be told apart, so the row version is "
            "quarantined as invalid_value (the run goes on); a later version holding a "
            "timestamp is curated by the next run",
            [
                apt(3, "invalid_value", listing_created_on=1704103200),
                book(3, "invalid_value", booking_date=1714554000000),
            ],
        ),
    ]


def quarantine_records(rows: dict[str, list[Row]]) -> None:
    """The rejected records, written out by hand: the row as SQLite stored it, as text (the
    NUMERIC price '100.00' was stored as the integer 100; the untyped table keeps text)."""
    (apartment,) = [r for r in rows["apartments"] if r.reason]
    apartment.record = {
        "id": "3",
        "title": "Flat 3",
        "source": "RentLingo",
        "price": "100",
        "currency": "USD",
        "listing_created_on": "1704103200",
        "is_active": "1",
        "last_modified_timestamp": apartment.values["last_modified_timestamp"],
        "_invalid": f"listing_created_on = 1704103200 {INVALID_DATETIME}",
    }
    (booking,) = [r for r in rows["bookings"] if r.reason]
    booking.record = {
        "booking_id": "3",
        "user_id": "1",
        "apartment_id": "1",
        "booking_date": "1714554000000",
        "checkin_date": "2024-06-01",
        "checkout_date": "2024-06-05",
        "total_price": "400.00",
        "currency": "USD",
        "booking_status": "confirmed",
        "last_modified_timestamp": booking.values["last_modified_timestamp"],
        "_invalid": f"booking_date = 1714554000000 {INVALID_DATETIME}",
    }


def fixed_version(r: Row, column: str, value: str, n: int) -> Row:
    moment = datetime.fromisoformat(value)
    values = {**r.values, column: value, "last_modified_timestamp": stamp(later(n))}
    return Row(r.table, values, curated={column: moment})


def later(n: int) -> datetime:
    return STAMP0 + timedelta(days=1, seconds=n)


def test_sqlite_written_by_other_programs(tmp_path: Path, reliability: Record) -> None:
    home = tmp_path / "home"
    source = program_source(tmp_path)
    all_cases = cases()
    rows = stamped(all_cases, STAMP0)
    quarantine_records(rows)
    for table, table_rows in rows.items():
        if table_rows:
            source.insert(table, [r.values for r in table_rows])

    record = run_ok(home, source)
    assert record["summary"]["apartments"]["rejected_by_reason"] == {"invalid_value": 1}
    assert record["summary"]["bookings"]["rejected_by_reason"] == {"invalid_value": 1}
    problems = [p for case in all_cases for p in mismatches(home, case)]
    assert not problems, "\n".join(problems)
    assert_nothing_else(home, rows)
    where = placements(home, rows)

    # The epochs corrected by later versions of the rows: curated by the next run.
    epoch_apartment, epoch_booking = all_cases[-1].rows
    fixed = [
        fixed_version(epoch_apartment, "listing_created_on", "2024-01-01 10:00:00", 1),
        fixed_version(epoch_booking, "booking_date", "2024-05-01 09:00:00", 2),
    ]
    for r in fixed:
        write_fix(source, r)
    run_ok(home, source)
    every: dict[str, list[Any]] = {
        t: [*rs, *(r for r in fixed if r.table == t)] for t, rs in rows.items()
    }
    assert_nothing_else(home, every)
    after = placements(home, {t: [r for r in fixed if r.table == t] for t in rows})

    for case in all_cases:
        lost = lost_of(case.rows, where)
        if lost == "nothing" and case is all_cases[-1]:
            lost = lost_of(fixed, after)
        assert lost == "nothing", (case.name, lost)
        reliability("bad-input", f"{case.name} (sqlite)", case.outcome, lost)
