"""Schema drift in the source (SQLite and MariaDB), through ``rentalctl run``.

The extract reads the columns of docs/contract.md §3 by name, and checks every value against its
column's type in the contract, not against whatever the source declares today. So:

- a column added (anywhere, in any order) is ignored;
- a column dropped (or renamed) fails the run at Extract with exit 1 and one line naming the
  table and every missing column: the pipeline ran and a step failed (docs/contract.md §8). It is no
  "resource that could not be reached" (exit 3, which invites a retry): the source answers, its
  schema broke the contract, and no retry can mend that;
- a column retyped is tolerated while its values still read as the contract's type, and the
  row of a value that does not is quarantined as ``invalid_value``, the run going on, the way
  any value its column cannot hold is (test_bad_input).

A failed run leaves bookmarks, warehouse and lake as they were, and once the schema is put
right, the next run completes; once a quarantined value is fixed, its row is curated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rentalctl.tables import TABLES
from tests.reliability.plugin import Record
from tests.reliability.support import bookmarks, unfinished_lake_files, warehouse_snapshot
from tests.reliability.test_bad_input import (
    BACKENDS,
    NO_GATE,
    Row,
    SourceDB,
    assert_nothing_else,
    book,
    lost_of,
    make_source,
    placements,
    rentalctl,
    run_ok,
    stamp,
    view,
)

pytestmark = pytest.mark.slow


@pytest.fixture(params=BACKENDS)
def source(request: pytest.FixtureRequest, tmp_path: Path) -> SourceDB:
    return make_source(request, tmp_path)


D = Decimal
BASE_STAMP = datetime(2025, 3, 1)
LATER_STAMP = datetime(2025, 4, 1)  # past the base bookmarks and their lookback
TABLES_RUN = ("--tables", "user_viewing,bookings")


@dataclass
class Drift:
    """How one kind of drift is made, on each backend: SQL statements run in order."""

    name: dict[str, str]  # backend -> the case for the report
    statements: dict[str, list[str]]


def sqlite_rebuild(table: str, columns: list[str]) -> list[str]:
    """SQLite cannot change a column's type or position: a table is rebuilt with ``columns``
    (definitions), keeping the rows of the columns both versions have."""
    names = [c.split()[0] for c in columns]
    kept = ", ".join(f"`{n}`" for n in names if n in TABLES[table].column_names)
    return [
        f"CREATE TABLE `{table}_new` ({', '.join(columns)})",
        f"INSERT INTO `{table}_new` ({kept}) SELECT {kept} FROM `{table}`",
        f"DROP TABLE `{table}`",
        f"ALTER TABLE `{table}_new` RENAME TO `{table}`",
    ]


BOOKING_COLUMNS_SQLITE = [
    "booking_id INTEGER",
    "user_id INTEGER",
    "apartment_id INTEGER",
    "booking_date TEXT",
    "checkin_date TEXT",
    "checkout_date TEXT",
    "total_price TEXT",
    "currency TEXT",
    "booking_status TEXT",
    "last_modified_timestamp TEXT NOT NULL",
]


def retyped(columns: list[str], name: str, new_type: str) -> list[str]:
    return [f"{name} {new_type}" if c.split()[0] == name else c for c in columns]


DROP = Drift(
    {
        "sqlite": "two columns dropped (bookings.total_price and bookings.currency)",
        "mariadb": "two columns dropped (bookings.total_price and bookings.currency)",
    },
    {
        "sqlite": [
            "ALTER TABLE bookings DROP COLUMN total_price",
            "ALTER TABLE bookings DROP COLUMN currency",
        ],
        "mariadb": ["ALTER TABLE bookings DROP COLUMN total_price, DROP COLUMN currency"],
    },
)
RESTORE = {
    "sqlite": [
        "ALTER TABLE bookings ADD COLUMN total_price TEXT",
        "ALTER TABLE bookings ADD COLUMN currency TEXT",
    ],
    "mariadb": [
        "ALTER TABLE bookings ADD COLUMN total_price DECIMAL(12,2) NULL, "
        "ADD COLUMN currency VARCHAR(10) NULL"
    ],
}
RETYPE_PRICE = Drift(
    {
        "sqlite": "bookings.total_price retyped to REAL (binary floats), then holding "
        "0.1 + 0.2 = 0.30000000000000004 and 'abc'",
        "mariadb": "bookings.total_price retyped DECIMAL(12,2) -> VARCHAR(20), then holding 'abc'",
    },
    {
        "sqlite": sqlite_rebuild(
            "bookings", retyped(BOOKING_COLUMNS_SQLITE, "total_price", "REAL")
        ),
        "mariadb": ["ALTER TABLE bookings MODIFY total_price VARCHAR(20) NULL"],
    },
)
RETYPE_VIEWED_AT = Drift(
    {
        "sqlite": "user_viewing.viewed_at retyped to INTEGER, then holding Unix time 1709287200",
        "mariadb": "user_viewing.viewed_at retyped DATETIME -> VARCHAR(30), then holding "
        "'2024-02-30 10:00:00'",
    },
    {
        "sqlite": sqlite_rebuild(
            "user_viewing",
            [
                "id INTEGER PRIMARY KEY AUTOINCREMENT",
                "user_id INTEGER",
                "apartment_id INTEGER",
                "viewed_at INTEGER",
                "is_wishlisted TEXT",
                "call_to_action TEXT",
            ],
        ),
        "mariadb": ["ALTER TABLE user_viewing MODIFY viewed_at VARCHAR(30) NULL"],
    },
)
ADD = Drift(
    {
        "sqlite": "a column added to bookings, the table rebuilt with it first and every other "
        "column in reverse order",
        "mariadb": "a column added to bookings, first in the table (ADD COLUMN ... FIRST)",
    },
    {
        "sqlite": sqlite_rebuild(
            "bookings", ["discount_code TEXT", *reversed(BOOKING_COLUMNS_SQLITE)]
        ),
        "mariadb": ["ALTER TABLE bookings ADD COLUMN discount_code VARCHAR(20) NULL FIRST"],
    },
)


def apply(source: SourceDB, statements: list[str]) -> None:
    for sql in statements:
        source.execute(sql)


def stamped(rows: list[Row], start: datetime) -> list[Row]:
    for n, r in enumerate(rows, start=1):
        if r.table != "user_viewing":
            r.values["last_modified_timestamp"] = stamp(start + timedelta(seconds=n))
    return rows


def by_table(rows: list[Row]) -> dict[str, list[Row]]:
    return {t: [r for r in rows if r.table == t] for t in TABLES}


def fails(
    home: Path,
    source: SourceDB,
    table: str,
    before: Any,
    marks: dict[str, Any],
    check: Callable[[str], None],
) -> None:
    """A run of ``table`` fails at Extract, exit 1, one error line (``check`` reads it), and
    changes nothing."""
    done = rentalctl(home, source, *NO_GATE, "run", "--tables", table)
    assert done.exit_code == 1, done.output
    assert done.record["status"] == "FAILED"
    assert done.record["error"]["Error"] == "Rentalctl.PipelineFailed", done.record["error"]
    states = {s["name"]: s["status"] for s in done.record["states"]}
    assert states[f"ExtractLoad[{table}]"] == "FAILED", states
    assert "Transform" not in states, states
    (line,) = done.errors
    check(line)
    assert bookmarks(home) == marks
    assert warehouse_snapshot(home) == before
    assert unfinished_lake_files(home) == []
    assert not [p for p in (home / "lake" / "raw").rglob("*") if done.record["run_id"] in str(p)]


def quarantines(home: Path, source: SourceDB, table: str, rows: list[Row], bad: Row) -> str:
    """A run of ``table`` succeeds with the row version ``bad`` quarantined: in rejected_rows
    once, as invalid_value, with its exact record; every other row placed as before. Returns
    what was lost (for the report)."""
    record = run_ok(home, source, "--tables", table)
    assert record["summary"][table]["rejected_by_reason"] == {"invalid_value": 1}, record
    assert_nothing_else(home, by_table(rows))
    return lost_of([bad], placements(home, by_table([bad])))


def test_schema_drift(source: SourceDB, tmp_path: Path, reliability: Record) -> None:
    backend = source.backend
    home = tmp_path / "home"
    base = stamped([book(1), book(2), book(3), view(1), view(2), view(3)], BASE_STAMP)
    for table, rows in by_table(base).items():
        if rows:
            source.insert(table, [r.values for r in rows])
    run_ok(home, source, *TABLES_RUN)
    before, marks = warehouse_snapshot(home), bookmarks(home)
    outcomes: dict[str, str] = {}

    # A column dropped: the extract names the table and every missing column, with its type.
    saved = {r.values["booking_id"]: r.values for r in base if r.table == "bookings"}
    apply(source, DROP.statements[backend])

    def names_the_columns(line: str) -> None:
        assert "source table bookings has no columns" in line, line
        assert "total_price DECIMAL(12,2), currency VARCHAR(10)" in line, line
        assert "no bookmark moved" in line, line

    fails(home, source, "bookings", before, marks, names_the_columns)
    apply(source, RESTORE[backend])
    source.execute(
        "UPDATE `bookings` SET `total_price` = ?, `currency` = ? WHERE `booking_id` = ?",
        [[v["total_price"], v["currency"], k] for k, v in saved.items()],
    )
    outcomes["drop"] = (
        "run fails at Extract with exit 1, one error line naming the table and both missing "
        "columns with their types; bookmarks, warehouse and lake unchanged; after the columns "
        "are restored the next run completes"
    )

    # A DECIMAL column retyped: what still reads as DECIMAL(12,2) is a value (a float through
    # its shortest text, rounded to the scale), the rest is quarantined and the run goes on.
    apply(source, RETYPE_PRICE.statements[backend])
    if backend == "sqlite":
        floated = book(10, total_price=0.1 + 0.2)
        floated.curated.update(total_price=D("0.30"), total_price_usd=D("0.30"))
        priced = [floated, book(12, "invalid_value", total_price="abc")]
    else:
        priced = [book(12, "invalid_value", total_price="abc")]
    stamped(priced, LATER_STAMP)
    bad_price = priced[-1]
    bad_price.record = {
        "booking_id": "12",
        "user_id": "1",
        "apartment_id": "1",
        "booking_date": "2024-05-01 09:00:00",
        "checkin_date": "2024-06-01",
        "checkout_date": "2024-06-05",
        "total_price": "abc",
        "currency": "USD",
        "booking_status": "confirmed",
        # MariaDB hands a DATETIME(6) over without zero microseconds.
        "last_modified_timestamp": bad_price.values["last_modified_timestamp"]
        if backend == "sqlite"
        else bad_price.values["last_modified_timestamp"].removesuffix(".000000"),
        "_invalid": "total_price = 'abc' does not fit DECIMAL(12,2): not a number",
    }
    source.insert("bookings", [r.values for r in priced])
    lost_before = {"price": quarantines(home, source, "bookings", [*base, *priced], bad_price)}
    fixed_price = stamped(
        [book(12, total_price="99.00", curated=dict(total_price=D("99.00")))],
        LATER_STAMP + timedelta(seconds=30),
    )[0]
    fixed_price.curated.update(total_price_usd=D("99.00"))
    source.execute(
        "UPDATE `bookings` SET `total_price` = ?, `last_modified_timestamp` = ? "
        "WHERE `booking_id` = 12",
        [["99.00", fixed_price.values["last_modified_timestamp"]]],
    )
    outcomes["price"] = (
        "stored values that still read as DECIMAL(12,2) are values"
        + (" (0.30000000000000004 is curated as 0.30)" if backend == "sqlite" else "")
        + "; 'abc' is quarantined in curated.rejected_rows as invalid_value, its record the row "
        "as text naming bookings.total_price and the value, and the run goes on; a later "
        "version with the value fixed is curated by the next run"
    )

    # A DATETIME column retyped: what still reads as a timestamp is a value, the rest is
    # quarantined; user_viewing is append-only, so the fixed row is read again by a backfill.
    apply(source, RETYPE_VIEWED_AT.statements[backend])
    bad_time: Any = 1709287200 if backend == "sqlite" else "2024-02-30 10:00:00"
    viewed = view(10, "invalid_value", viewed_at=bad_time)
    viewed.record = {
        "id": "10",
        "user_id": "1010",
        "apartment_id": "1",
        "viewed_at": str(bad_time),
        "is_wishlisted": "yes",
        "call_to_action": "contact",
        "_invalid": f"viewed_at = {bad_time!r} does not fit DATETIME: "
        + (
            "expected YYYY-MM-DD[ HH:MM:SS[.ffffff]]"
            if backend == "sqlite"
            else "no such date or time (day is out of range for month)"
        ),
    }
    source.insert("user_viewing", [viewed.values])
    lost_before["viewed_at"] = quarantines(
        home, source, "user_viewing", [*base, *priced, viewed], viewed
    )
    source.execute(
        "UPDATE `user_viewing` SET `viewed_at` = ? WHERE `id` = 10", [["2024-03-01 10:00:00"]]
    )
    fixed_view = view(10, viewed_at="2024-03-01 10:00:00")
    fixed_view.curated.update(viewed_at=datetime(2024, 3, 1, 10))
    backfilled = rentalctl(
        home,
        source,
        *NO_GATE,
        "backfill",
        "--since",
        "2024-03-01",
        "--until",
        "2024-03-01",
        "--tables",
        "user_viewing",
    )
    assert backfilled.exit_code == 0, backfilled.output
    outcomes["viewed_at"] = (
        f"stored timestamps are values; {bad_time!r} is quarantined in "
        "curated.rejected_rows as invalid_value naming user_viewing.viewed_at and the value, "
        "and the run goes on; once the value is fixed a backfill of its day curates the row "
        "(user_viewing is append-only)"
    )

    # A column added, and the columns moved: read by name, the new one ignored.
    apply(source, ADD.statements[backend])
    added = stamped(
        [book(11, booking_status="pending", curated=dict(booking_status="pending"))],
        LATER_STAMP + timedelta(minutes=1),
    )[0]
    source.insert("bookings", [added.values])
    source.execute("UPDATE `bookings` SET `discount_code` = 'SPRING' WHERE `booking_id` = 11")

    record = run_ok(home, source, *TABLES_RUN)
    every = by_table([*base, *priced, viewed, fixed_price, fixed_view, added])
    assert_nothing_else(home, every)
    moved = bookmarks(home)
    assert moved["bookings"] == added.values["last_modified_timestamp"], moved
    assert moved["user_viewing"] == 10, moved
    # the fixed price and the new row, and the lookback's re-read of the fixed one
    assert record["summary"]["bookings"]["extracted"] == len(priced) + 1, record["summary"]
    outcomes["add"] = (
        "tolerated: columns are read by name, the new column is ignored; the run succeeds and "
        "curates every row, the ones fixed after the failures above included"
    )

    # The quarantined versions were checked when they were rejected; their keys are curated
    # now by the fixed versions.
    latest = by_table([r for rs in every.values() for r in rs if r not in (bad_price, viewed)])
    where = placements(home, latest)
    for key, drift in (
        ("drop", DROP),
        ("price", RETYPE_PRICE),
        ("viewed_at", RETYPE_VIEWED_AT),
        ("add", ADD),
    ):
        rows = [*latest["bookings"], *latest["user_viewing"]]
        lost = lost_before.get(key, "nothing")
        if lost == "nothing":
            lost = lost_of(rows, where)
        assert lost == "nothing", (key, lost)
        reliability("schema-drift", f"{drift.name[backend]} ({backend})", outcomes[key], lost)
