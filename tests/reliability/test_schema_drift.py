"""Schema drift in the source (SQLite and MariaDB), through ``rentalctl run``.

The extract reads the columns of SPEC section 3 by name, and checks every value against its
column's type in the contract, not against whatever the source declares today. So:

- a column added (anywhere, in any order) is ignored;
- a column dropped (or renamed) fails the run at Extract with exit 1 and one line naming the
  table and every missing column: the pipeline ran and a step failed (SPEC section 8). It is no
  "resource that could not be reached" (exit 3, which invites a retry): the source answers, its
  schema broke the contract, and no retry can mend that;
- a column retyped is tolerated while its values still read as the contract's type, and a value
  that does not fails the run the way any value its column cannot hold does (test_bad_input).

A failed run leaves bookmarks, warehouse and lake as they were, and once the schema or the
value is put right, the next run completes.
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
        "0.1 + 0.2 = 0.30000000000000004",
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

    # A DECIMAL column retyped: what still reads as DECIMAL(12,2) passes, the rest is named.
    apply(source, RETYPE_PRICE.statements[backend])
    bad_price: Any = 0.1 + 0.2 if backend == "sqlite" else "abc"
    shown = "0.30000000000000004" if backend == "sqlite" else "'abc'"
    priced = stamped([book(10, total_price=bad_price)], LATER_STAMP)[0]
    source.insert("bookings", [priced.values])

    def names_the_price(line: str) -> None:
        assert f"bookings.total_price = {shown} (booking_id 10)" in line, line
        assert "does not fit DECIMAL(12,2)" in line and "no bookmark moved" in line, line

    fails(home, source, "bookings", before, marks, names_the_price)
    fixed_price: Any = 12.5 if backend == "sqlite" else "99.00"
    source.execute(
        "UPDATE `bookings` SET `total_price` = ? WHERE `booking_id` = 10", [[fixed_price]]
    )
    priced.values["total_price"] = fixed_price
    want_price = D("12.50") if backend == "sqlite" else D("99.00")
    priced.curated.update(total_price=want_price, total_price_usd=want_price)
    outcomes["price"] = (
        f"stored values that still read as DECIMAL(12,2) pass; {shown} fails the run at "
        "Extract with exit 1 naming bookings.total_price, the booking_id and the value; "
        "bookmarks, warehouse and lake unchanged; once the value is fixed the next run curates "
        "the row"
    )

    # A DATETIME column retyped: what still reads as a timestamp passes, the rest is named.
    apply(source, RETYPE_VIEWED_AT.statements[backend])
    bad_time: Any = 1709287200 if backend == "sqlite" else "2024-02-30 10:00:00"
    viewed = view(10, viewed_at=bad_time)
    source.insert("user_viewing", [viewed.values])

    def names_the_time(line: str) -> None:
        assert f"user_viewing.viewed_at = {bad_time!r} (id 10)" in line, line
        assert "does not fit DATETIME" in line and "no bookmark moved" in line, line

    fails(home, source, "user_viewing", before, marks, names_the_time)
    source.execute(
        "UPDATE `user_viewing` SET `viewed_at` = ? WHERE `id` = 10", [["2024-03-01T10:00:00"]]
    )
    viewed.values["viewed_at"] = "2024-03-01T10:00:00"
    viewed.curated.update(viewed_at=datetime(2024, 3, 1, 10))
    outcomes["viewed_at"] = (
        f"stored timestamps (and ISO 'T' text) pass; {bad_time!r} fails the run at Extract with "
        "exit 1 naming user_viewing.viewed_at, the id and the value; bookmarks, warehouse and "
        "lake unchanged; once the value is fixed the next run curates the row"
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
    every = by_table([*base, priced, viewed, added])
    assert_nothing_else(home, every)
    moved = bookmarks(home)
    assert moved["bookings"] == added.values["last_modified_timestamp"], moved
    assert moved["user_viewing"] == 10, moved
    assert record["summary"]["bookings"]["extracted"] == 5, record["summary"]  # 2 new + lookback
    outcomes["add"] = (
        "tolerated: columns are read by name, the new column is ignored; the run succeeds and "
        "curates every row, the ones fixed after the failures above included"
    )

    where = placements(home, every)
    for key, drift in (
        ("drop", DROP),
        ("price", RETYPE_PRICE),
        ("viewed_at", RETYPE_VIEWED_AT),
        ("add", ADD),
    ):
        rows = [*every["bookings"], *every["user_viewing"]]
        lost = lost_of(rows, where)
        assert lost == "nothing", (key, lost)
        reliability("schema-drift", f"{drift.name[backend]} ({backend})", outcomes[key], lost)
