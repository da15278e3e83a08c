"""Bad input in the source, through the whole pipeline (``rentalctl seed-bookmarks`` and
``rentalctl run`` in this process, on SQLite and on a real MariaDB).

The corpus holds, for the four source tables, the values operational data gets wrong: quotes,
delimiters and line ends inside text, SQL-looking text, every kind of Unicode, NULL versus empty
versus blank, text that looks like a CSV null marker, very long text, numbers and dates at the
edges of their types, MySQL's zero dates, and the words the cleaning rules must read. Each row
carries its expected fate, written by hand from docs/contract.md §5: the exact curated row, or the
rejection reason (the rejected record is the raw row, which the corpus itself states). After the
run, every source row must be in exactly one of the two places.

Values a column's type cannot hold at all (text in a DECIMAL, 30 February, an integer past the
column's range…) cannot reach the typed raw layer: their rows are quarantined, each in
curated.rejected_rows once as ``invalid_value`` with the source row as text and ``_invalid``
naming the column, the value and the problem, and the run goes on; once the value is fixed by a
later version, the next run curates the row. Only a watermark whose highest value is not a
timestamp still fails its table: no bookmark can be placed after it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rentalctl.adapters.factories import open_source
from rentalctl.cli import app
from rentalctl.curated import CURATED
from rentalctl.tables import TABLES, Kind
from rentalctl.urls import MysqlURL, SqliteURL, parse_source
from tests.reliability.plugin import Record
from tests.reliability.support import bookmarks, unfinished_lake_files, warehouse_snapshot

pytestmark = pytest.mark.slow

D = Decimal
# The corpus is dirty on purpose: far more than the default share of its rows is rejected.
NO_GATE = ("--set", "quality.max_rejected_share=1")

# --------------------------------------------------------------------------- the source


class SourceDB:
    """The test's own connection to the source, to write any value the database accepts
    (rentalctl only reads). SQL is written once with ``?`` placeholders and backticks."""

    def __init__(self, url: str, mysql: dict[str, Any] | None) -> None:
        self.url = url
        self.mysql = mysql
        self.backend = "mariadb" if mysql else "sqlite"
        with open_source(parse_source(url, Path.cwd()), create=True) as source:
            source.ensure_schema(TABLES.values())

    def execute(self, sql: str, rows: Sequence[Sequence[Any]] = ((),), sql_mode: str = "") -> None:
        """Run ``sql`` once per parameter row, in one transaction. On MariaDB in strict mode
        (every bad value refused) unless ``sql_mode`` says otherwise; zero dates are allowed,
        as the server's default allows them."""
        if self.mysql is None:
            parsed = parse_source(self.url, Path.cwd())
            assert isinstance(parsed, SqliteURL)
            conn = sqlite3.connect(parsed.path)
            try:
                conn.executemany(sql, [tuple(r) for r in rows])
                conn.commit()
            finally:
                conn.close()
            return
        import pymysql

        parsed = parse_source(self.url, Path.cwd())
        assert isinstance(parsed, MysqlURL)
        mconn = pymysql.connect(database=parsed.database, charset="utf8mb4", **self.mysql)
        try:
            with mconn.cursor() as cur:
                cur.execute("SET SESSION sql_mode = %s", [sql_mode or "STRICT_ALL_TABLES"])
                cur.executemany(sql.replace("?", "%s"), [tuple(r) for r in rows])
            mconn.commit()
        finally:
            mconn.close()

    def insert(self, table: str, rows: Sequence[dict[str, Any]], sql_mode: str = "") -> None:
        names = list(TABLES[table].column_names)
        sql = (
            f"INSERT INTO `{table}` ({', '.join(f'`{n}`' for n in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        values = [[row[n] for n in names] for row in rows]
        self.execute(sql, values, sql_mode)


BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mysql)]


def make_source(request: pytest.FixtureRequest, tmp_path: Path) -> SourceDB:
    """A fresh, empty source with the four tables: a SQLite file, or a database of its own
    on the MariaDB test server."""
    if request.param == "sqlite":
        return SourceDB(f"sqlite:///{tmp_path / 'source.db'}", None)
    url = request.getfixturevalue("mysql_url")
    return SourceDB(url, dict(request.getfixturevalue("mysql_server")))


@pytest.fixture(params=BACKENDS)
def source(request: pytest.FixtureRequest, tmp_path: Path) -> SourceDB:
    return make_source(request, tmp_path)


# --------------------------------------------------------------------------- running it


@dataclass
class Outcome:
    exit_code: int
    record: dict[str, Any]
    errors: list[str]
    output: str


def rentalctl(home: Path, source: SourceDB, *args: str) -> Outcome:
    env = {"RENTALCTL_HOME": str(home), "RENTALCTL_SOURCE_URL": source.url}
    result = CliRunner().invoke(app, ["-o", "json", *args], env=env)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    doc = json.loads(result.stdout) if result.stdout.strip() else {}
    return Outcome(result.exit_code, doc, errors, output)


def run_ok(home: Path, source: SourceDB, *args: str) -> dict[str, Any]:
    seeded = rentalctl(home, source, "seed-bookmarks")
    assert seeded.exit_code == 0, seeded.output
    done = rentalctl(home, source, *NO_GATE, "run", *args)
    assert done.exit_code == 0, done.output
    assert done.record["status"] == "SUCCEEDED", done.record
    return done.record


def query(home: Path, sql: str) -> list[tuple[Any, ...]]:
    import duckdb

    conn = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def curated_rows(home: Path, table: str) -> list[dict[str, Any]]:
    names = CURATED[table].column_names
    cols = ", ".join(f'"{n}"' for n in names)
    return [
        dict(zip(names, r, strict=True)) for r in query(home, f"SELECT {cols} FROM curated.{table}")
    ]


# A record longer than Redshift's longest VARCHAR keeps its beginning and ends with this marker.
CUT = re.compile(r" \.\.\.\[truncated from (\d+) bytes, sha256 [0-9a-f]{64}\]$")
RECORD_BYTES = 65535


def parse_record(record: str) -> dict[str, Any]:
    """A rejected_rows.record as a dict; a cut one as ``{"cut": True, "id": …}`` (its id is
    at its beginning), after checking it fits RECORD_BYTES and says how long it was."""
    cut = CUT.search(record)
    if cut is None:
        return dict(json.loads(record, parse_float=Decimal))
    assert len(record.encode()) <= RECORD_BYTES < int(cut.group(1)), record[-120:]
    first = re.match(r'\{"id":(\d+),', record)
    assert first is not None, record[:120]
    return {"cut": True, "id": int(first.group(1))}


def rejected_rows(home: Path) -> list[tuple[str, str | None, str, dict[str, Any]]]:
    rows = query(home, "SELECT source_table, record_key, reason, record FROM curated.rejected_rows")
    return [(t, k, r, parse_record(rec)) for t, k, r, rec in rows]


# --------------------------------------------------------------------------- the corpus

STAMP0 = datetime(2025, 1, 1)


@dataclass
class Row:
    """One source row version and its expected fate: ``reason`` (rejected), or else the curated
    row, given as the curated values that differ from the clean defaults' curated form. Text
    written differently from the defaults and not listed there is expected back byte for byte;
    any other column written differently must be listed."""

    table: str
    values: dict[str, Any]
    reason: str | None = None
    curated: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] | None = None  # the rejected record, when not expected_record's


@dataclass
class Case:
    name: str
    outcome: str
    rows: list[Row]
    backends: tuple[str, ...] = ("sqlite", "mariadb")


def _defaults(table: str, key: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A clean row of ``table`` (as written to the source) and its curated form (by hand)."""
    if table == "apartments":
        return (
            dict(
                id=key,
                title=f"Flat {key}",
                source="RentLingo",
                price="100.00",
                currency="USD",
                listing_created_on="2024-01-01 10:00:00",
                is_active=1,
            ),
            dict(
                id=key,
                title=f"Flat {key}",
                source="RentLingo",
                price=D("100.00"),
                currency="USD",
                listing_created_on=datetime(2024, 1, 1, 10),
                is_active=True,
                price_usd=D("100.00"),
            ),
        )
    if table == "apartment_attributes":
        clean = dict(
            id=key,
            category="housing/rent/apartment",
            body="Bright flat",
            amenities="Parking",
            bathrooms="1.0",
            bedrooms="2.0",
            fee="0.00",
            has_photo="Yes",
            pets_allowed="Cats",
            price_display="$100",
            price_type="Monthly",
            square_feet=50,
            address="1 Main St",
            cityname="Boston",
            state="MA",
            latitude="42.3600000",
            longitude="-71.0600000",
        )
        typed = {
            **clean,
            "bathrooms": D("1.0"),
            "bedrooms": D("2.0"),
            "fee": D("0.00"),
            "has_photo": True,
            "latitude": D("42.3600000"),
            "longitude": D("-71.0600000"),
        }
        return clean, typed
    if table == "user_viewing":
        return (
            dict(
                id=key,
                user_id=key + 1000,
                apartment_id=1,
                viewed_at="2024-03-01 12:00:00",
                is_wishlisted="yes",
                call_to_action="contact",
            ),
            dict(
                id=key,
                user_id=key + 1000,
                apartment_id=1,
                viewed_at=datetime(2024, 3, 1, 12),
                is_wishlisted=True,
                call_to_action="contact",
            ),
        )
    assert table == "bookings"
    return (
        dict(
            booking_id=key,
            user_id=1,
            apartment_id=1,
            booking_date="2024-05-01 09:00:00",
            checkin_date="2024-06-01",
            checkout_date="2024-06-05",
            total_price="400.00",
            currency="USD",
            booking_status="confirmed",
        ),
        dict(
            booking_id=key,
            user_id=1,
            apartment_id=1,
            booking_date=datetime(2024, 5, 1, 9),
            checkin_date=date(2024, 6, 1),
            checkout_date=date(2024, 6, 5),
            total_price=D("400.00"),
            currency="USD",
            booking_status="confirmed",
            total_price_usd=D("400.00"),
            nights=4,
        ),
    )


def row(table: str, key: Any, reason: str | None = None, curated: Any = None, **values: Any) -> Row:
    clean, _ = _defaults(table, key)
    return Row(table, {**clean, **values}, reason, dict(curated or {}))


def apt(key: Any, reason: str | None = None, curated: Any = None, **values: Any) -> Row:
    return row("apartments", key, reason, curated, **values)


def attr(key: Any, reason: str | None = None, curated: Any = None, **values: Any) -> Row:
    return row("apartment_attributes", key, reason, curated, **values)


def view(key: int, reason: str | None = None, curated: Any = None, **values: Any) -> Row:
    return row("user_viewing", key, reason, curated, **values)


def book(key: Any, reason: str | None = None, curated: Any = None, **values: Any) -> Row:
    return row("bookings", key, reason, curated, **values)


# Very long text: 100,000 characters in SQLite; on MariaDB the TEXT column holds 65,535 bytes.
# alpha, two spaces, beta, newline: 5 characters, 7 bytes; normalised "alpha beta", and the
# units joined by one space
LONG_UNIT = "\u03b1  \u03b2\n"
LONG_REPEATS = {"sqlite": 20_000, "mariadb": 9_000}


def long_text(backend: str) -> str:
    return LONG_UNIT * LONG_REPEATS[backend]


def long_text_normalised(backend: str) -> str:
    return " ".join(["\u03b1 \u03b2"] * LONG_REPEATS[backend])


BIG = 9223372036854775807  # 2^63 - 1


def corpus(backend: str) -> list[Case]:
    cases = [
        Case(
            "quotes, commas, CR/LF and tabs inside text",
            "kept byte for byte in curated text columns, each run of whitespace (CR, LF, tab, "
            "space) collapsed to one space as docs/contract.md §5 normalises",
            [
                apt(10, title='He said "cosy", near the "beach", 2 rooms'),
                apt(
                    11,
                    title="line1\r\nline2\rline3\nline4\ttab\t\tend",
                    source="a,b;c|d",
                    curated=dict(title="line1 line2 line3 line4 tab end", source="a,b;c|d"),
                ),
                apt(12, title='"', source='",\n"', curated=dict(title='"', source='", "')),
                attr(
                    10,
                    body='He said "hi",\r\n\tthen left; "fine," she said',
                    amenities='Parking,"Gym",Pool',
                    curated=dict(
                        body='He said "hi", then left; "fine," she said',
                        amenities='Parking,"Gym",Pool',
                    ),
                ),
                view(
                    10,
                    call_to_action='say "hi",\nthen',
                    curated=dict(call_to_action='say "hi", then'),
                ),
            ],
        ),
        Case(
            "SQL-looking text ('; DROP TABLE raw.bookings; --, Robert'); --)",
            "kept verbatim as text in curated; as a booking_status or currency rejected "
            "invalid_status / unknown_currency with the text in rejected_rows.record; every "
            "warehouse table still there",
            [
                apt(20, title="'; DROP TABLE raw.bookings; --", source="Robert'); --"),
                attr(
                    20,
                    address="1 Main St'); DELETE FROM curated.apartments; --",
                    state="' OR '1'='1",
                ),
                view(20, call_to_action="'; DROP TABLE raw.user_viewing; --"),
                book(20, "invalid_status", booking_status="confirmed'; --"),
                book(21, "unknown_currency", currency="USD'--"),
            ],
        ),
        Case(
            "unicode: emoji, RTL text and marks, combining accents, control characters",
            "kept byte for byte (no Unicode normalisation); control characters that are not "
            "whitespace are kept",
            [
                apt(30, title="🏠🔑 Zürich \u2013 “quoted” ½ 😀👍🏽", source="ü"),
                apt(31, title="שלום עולם \u200fمرحبا بالعالم\u200e (RTL)"),  # noqa: RUF001
                apt(32, title="Cafe\u0301 de\u0301ja\u0300 vu", source="n\u0303"),
                apt(33, title="bell\x07 esc\x1b[0m del\x7f us\x1f end"),
                attr(
                    30,
                    cityname="ÅRHUS",
                    body="Ωμέγα 😀\u200d👩\u200d💻",
                    curated=dict(cityname="Århus"),
                ),
                view(30, call_to_action="📞 اتصل"),
            ],
        ),
        Case(
            "non-ASCII whitespace: no-break, em and ideographic spaces, line and paragraph "
            "separators, vertical tab, form feed",
            "trimmed and collapsed like ASCII whitespace (Unicode White_Space); a zero-width "
            "space is not whitespace and is kept",
            [
                apt(
                    40,
                    title="\u00a0\u2003Loft\u00a0\u00a0with\u3000view\u2029",
                    source="\u2028",
                    curated=dict(title="Loft with view", source=None),
                ),
                apt(
                    41,
                    title="\x0bvertical\x0ctab and form feed\x0b",
                    curated=dict(title="vertical tab and form feed"),
                ),
                apt(42, title="zero\u200bwidth"),
                attr(40, cityname="\u00a0são\u00a0paulo\u00a0", curated=dict(cityname="São Paulo")),
            ],
        ),
        Case(
            "NULL versus empty string versus whitespace-only text",
            "empty and blank text become NULL like NULL itself: NULL in curated text, false "
            "is_wishlisted, NULL has_photo, rejected unknown_currency / invalid_status where the "
            "value is required; rejected_rows.record keeps null, empty and blank apart",
            [
                apt(50, title="", source="   ", curated=dict(title=None, source=None)),
                apt(51, title=None, source="\t\r\n", curated=dict(title=None, source=None)),
                apt(52, "unknown_currency", currency=""),
                apt(53, "unknown_currency", currency="  "),
                apt(54, "unknown_currency", currency=None),
                view(50, is_wishlisted="", curated=dict(is_wishlisted=False)),
                view(51, is_wishlisted="   ", curated=dict(is_wishlisted=False)),
                view(52, is_wishlisted=None, curated=dict(is_wishlisted=False)),
                attr(
                    50,
                    has_photo="",
                    category="  ",
                    body=None,
                    amenities="",
                    curated=dict(has_photo=None, category=None, body=None, amenities=None),
                ),
                book(50, "invalid_status", booking_status=""),
                book(51, "invalid_status", booking_status=" "),
                book(52, "invalid_status", booking_status=None),
            ],
        ),
        Case(
            'text that looks like a CSV null marker (\\N, NULL, null, None, "", N/A)',
            "kept as text, never read as NULL; as a status or boolean word rejected "
            "invalid_status / invalid_boolean",
            [
                apt(60, title="\\N", source="NULL"),
                apt(61, title="null", source="None"),
                apt(62, title='""', source="N/A"),
                attr(60, state="\\N", address="NULL", pets_allowed='""'),
                book(60, "invalid_status", booking_status="NULL"),
                view(60, "invalid_boolean", is_wishlisted="\\N"),
            ],
        ),
        Case(
            "very long text in apartment_attributes.body (100,000 characters; 63,000 bytes on "
            "MariaDB, near its TEXT limit)",
            "kept whole in curated (whitespace runs collapsed); in rejected_rows.record cut to "
            "65,535 bytes (Redshift's longest VARCHAR), ending with the whole record's size and "
            "SHA-256",
            [
                attr(70, body=long_text(backend), curated=dict(body=long_text_normalised(backend))),
                attr(71, "invalid_measure", body=long_text(backend), square_feet=0),
            ],
        ),
        Case(
            "money at the edges: the largest DECIMAL(12,2), a cent in INR, zero and negatives",
            "largest amounts converted exactly, price_usd / total_price_usd rounded half-up to "
            "the cent; price <= 0 or NULL rejected invalid_price, total_price < 0 rejected "
            "invalid_price, total_price 0 kept",
            [
                apt(
                    80,
                    price="9999999999.99",
                    currency="EUR",
                    curated=dict(
                        price=D("9999999999.99"), currency="EUR", price_usd=D("10799999999.99")
                    ),
                ),
                apt(
                    81,
                    price="0.01",
                    currency="INR",
                    curated=dict(price=D("0.01"), currency="INR", price_usd=D("0.00")),
                ),
                apt(
                    82,
                    price="0.05",
                    currency="GBP",
                    curated=dict(price=D("0.05"), currency="GBP", price_usd=D("0.06")),
                ),
                apt(83, "invalid_price", price="-9999999999.99"),
                apt(84, "invalid_price", price="0.00"),
                apt(85, "invalid_price", price=None, currency="XXX"),
                book(
                    80,
                    total_price="9999999999.99",
                    currency="GBP",
                    curated=dict(
                        total_price=D("9999999999.99"),
                        currency="GBP",
                        total_price_usd=D("12699999999.99"),
                    ),
                ),
                book(
                    81,
                    total_price="0.00",
                    curated=dict(total_price=D("0.00"), total_price_usd=D("0.00")),
                ),
                book(
                    82,
                    total_price="0.50",
                    currency="INR",
                    curated=dict(total_price=D("0.50"), currency="INR", total_price_usd=D("0.01")),
                ),
                book(83, "invalid_price", total_price="-0.01"),
            ],
        ),
        Case(
            "measures at the edges of DECIMAL(3,1), INT and DECIMAL(10,7)",
            "kept exactly; negative bedrooms or bathrooms and square_feet <= 0 rejected "
            "invalid_measure; NULL measures kept",
            [
                attr(
                    90,
                    bathrooms="99.9",
                    bedrooms="0.0",
                    square_feet=2147483647,
                    fee="-99999999.99",
                    latitude="-999.9999999",
                    longitude="999.9999999",
                    curated=dict(
                        bathrooms=D("99.9"),
                        bedrooms=D("0.0"),
                        square_feet=2147483647,
                        fee=D("-99999999.99"),
                        latitude=D("-999.9999999"),
                        longitude=D("999.9999999"),
                    ),
                ),
                attr(91, "invalid_measure", bathrooms="-0.5"),
                attr(92, "invalid_measure", bedrooms="-99.9"),
                attr(93, "invalid_measure", square_feet=-2147483648),
                attr(94, "invalid_measure", square_feet=0),
                attr(
                    95,
                    bathrooms=None,
                    bedrooms=None,
                    square_feet=None,
                    fee=None,
                    latitude=None,
                    longitude=None,
                    curated=dict(
                        bathrooms=None,
                        bedrooms=None,
                        square_feet=None,
                        fee=None,
                        latitude=None,
                        longitude=None,
                    ),
                ),
            ],
        ),
        Case(
            "integers at the edges: BIGINT keys and ids at +-(2^63), is_active other than 0/1",
            "BIGINT values kept exactly; is_active 2, -1, 127 or NULL rejected invalid_boolean, "
            "0 kept as false",
            [
                apt(BIG, curated=dict(title=f"Flat {BIG}")),
                apt(100, "invalid_boolean", is_active=2),
                apt(101, "invalid_boolean", is_active=-1),
                apt(102, "invalid_boolean", is_active=127),
                apt(103, "invalid_boolean", is_active=None),
                apt(104, is_active=0, curated=dict(is_active=False)),
                view(
                    100,
                    user_id=BIG,
                    apartment_id=-BIG - 1,
                    curated=dict(user_id=BIG, apartment_id=-BIG - 1),
                ),
                book(
                    BIG,
                    user_id=BIG,
                    apartment_id=BIG,
                    curated=dict(user_id=BIG, apartment_id=BIG),
                ),
            ],
        ),
        Case(
            "dates at the edges: year 1, before 1900, 9999-12-31 23:59:59, 29 February, a stay "
            "across 1899/1900",
            "kept exactly in curated; nights counted across the edges (3,652,058 from "
            "0001-01-01 to 9999-12-31); the KPI tables rebuilt",
            [
                apt(
                    110,
                    listing_created_on="0001-01-01 00:00:00",
                    curated=dict(listing_created_on=datetime(1, 1, 1)),
                ),
                apt(
                    111,
                    listing_created_on="1899-12-31 23:59:59",
                    curated=dict(listing_created_on=datetime(1899, 12, 31, 23, 59, 59)),
                ),
                apt(
                    112,
                    listing_created_on="9999-12-31 23:59:59",
                    curated=dict(listing_created_on=datetime(9999, 12, 31, 23, 59, 59)),
                ),
                apt(
                    113,
                    listing_created_on="2024-02-29 12:00:00",
                    curated=dict(listing_created_on=datetime(2024, 2, 29, 12)),
                ),
                book(
                    110,
                    booking_date="1899-12-01 00:00:00",
                    checkin_date="1899-12-30",
                    checkout_date="1900-01-02",
                    curated=dict(
                        booking_date=datetime(1899, 12, 1),
                        checkin_date=date(1899, 12, 30),
                        checkout_date=date(1900, 1, 2),
                        nights=3,
                    ),
                ),
                book(
                    111,
                    booking_date="0001-01-01 00:00:00",
                    checkin_date="0001-01-01",
                    checkout_date="9999-12-31",
                    booking_status="canceled",
                    curated=dict(
                        booking_date=datetime(1, 1, 1),
                        checkin_date=date(1, 1, 1),
                        checkout_date=date(9999, 12, 31),
                        booking_status="canceled",
                        nights=3652058,
                    ),
                ),
                book(
                    112,
                    booking_date="9999-12-31 23:59:59",
                    checkin_date="9999-12-30",
                    checkout_date="9999-12-31",
                    curated=dict(
                        booking_date=datetime(9999, 12, 31, 23, 59, 59),
                        checkin_date=date(9999, 12, 30),
                        checkout_date=date(9999, 12, 31),
                        nights=1,
                    ),
                ),
                book(
                    113,
                    checkin_date="2024-02-28",
                    checkout_date="2024-03-01",
                    curated=dict(
                        checkin_date=date(2024, 2, 28), checkout_date=date(2024, 3, 1), nights=2
                    ),
                ),
                view(
                    110, viewed_at="0001-01-01 00:00:00", curated=dict(viewed_at=datetime(1, 1, 1))
                ),
                view(
                    111,
                    viewed_at="9999-12-31 23:59:59",
                    curated=dict(viewed_at=datetime(9999, 12, 31, 23, 59, 59)),
                ),
                view(
                    112,
                    user_id=7,
                    apartment_id=7,
                    viewed_at="1899-12-31 23:59:59",
                    curated=dict(
                        user_id=7, apartment_id=7, viewed_at=datetime(1899, 12, 31, 23, 59, 59)
                    ),
                ),
                view(113, "duplicate", user_id=7, apartment_id=7, viewed_at="1899-12-31 23:59:59"),
            ],
        ),
        Case(
            "MySQL zero dates ('0000-00-00', '0000-00-00 00:00:00')",
            "read as NULL (MySQL's 'no date'): listing_created_on rejected missing_date, "
            "checkin_date and viewed_at rejected missing_field, booking_date kept as NULL",
            [
                apt(120, "missing_date", listing_created_on="0000-00-00 00:00:00"),
                book(120, "missing_field", checkin_date="0000-00-00"),
                book(121, booking_date="0000-00-00 00:00:00", curated=dict(booking_date=None)),
                view(120, "missing_field", viewed_at="0000-00-00 00:00:00"),
            ],
        ),
        Case(
            "boolean words in user_viewing.is_wishlisted and apartment_attributes.has_photo",
            "the contract's words read in any case and padding; other is_wishlisted words rejected "
            "invalid_boolean; other has_photo words NULL, never a rejection",
            [
                view(130, is_wishlisted="YES ", curated=dict(is_wishlisted=True)),
                view(131, is_wishlisted=" n ", curated=dict(is_wishlisted=False)),
                view(132, is_wishlisted="TRUE", curated=dict(is_wishlisted=True)),
                view(133, is_wishlisted="f", curated=dict(is_wishlisted=False)),
                view(134, is_wishlisted="1", curated=dict(is_wishlisted=True)),
                view(135, is_wishlisted="0", curated=dict(is_wishlisted=False)),
                view(136, "invalid_boolean", is_wishlisted="maybe"),
                view(137, "invalid_boolean", is_wishlisted="ja"),
                attr(130, has_photo="Thumbnail", curated=dict(has_photo=True)),
                attr(131, has_photo=" NO ", curated=dict(has_photo=False)),
                attr(132, has_photo="maybe", curated=dict(has_photo=None)),
                attr(133, has_photo="T", curated=dict(has_photo=True)),
                attr(134, has_photo=None, curated=dict(has_photo=None)),
            ],
        ),
        Case(
            "case, padding and spelling variants in currency, booking_status and cityname",
            "currency upper-cased, booking_status lower-cased with cancelled -> canceled, "
            "cityname capitalised word by word; unknown currency or status rejected "
            "unknown_currency / invalid_status",
            [
                apt(140, currency=" eur ", curated=dict(currency="EUR", price_usd=D("108.00"))),
                apt(141, currency="usd", curated=dict(currency="USD")),
                apt(142, "unknown_currency", currency="US$"),
                book(140, booking_status=" Cancelled ", curated=dict(booking_status="canceled")),
                book(141, booking_status="CONFIRMED", curated=dict(booking_status="confirmed")),
                book(142, booking_status="PeNdInG\t", curated=dict(booking_status="pending")),
                book(143, "invalid_status", booking_status="cancel led"),
                book(144, booking_status="CANCELED", curated=dict(booking_status="canceled")),
                attr(141, cityname="  são   PAULO ", curated=dict(cityname="São Paulo")),
                attr(142, cityname="o'FALLON", curated=dict(cityname="O'fallon")),
                attr(143, cityname="\tnew\nyork\r\n", curated=dict(cityname="New York")),
                attr(144, cityname="🏙 big city", curated=dict(cityname="🏙 Big City")),
            ],
        ),
        Case(
            "missing keys and required fields, stays that end before they start, an orphan booking",
            "rejected missing_key (record_key NULL), missing_field or invalid_stay, the first "
            "applicable reason; the orphan kept",
            [
                apt(None, "missing_key", title="no key"),
                attr(None, "missing_key", body="no key"),
                book(None, "missing_key", booking_status="nonsense"),
                view(150, "missing_field", user_id=None),
                view(151, "missing_field", apartment_id=None, is_wishlisted="maybe"),
                book(150, "missing_field", user_id=None),
                book(151, "missing_field", checkout_date=None),
                book(152, "invalid_stay", checkin_date="2024-06-05", checkout_date="2024-06-05"),
                book(
                    153,
                    "invalid_stay",
                    checkin_date="2024-06-05",
                    checkout_date="2024-06-01",
                    total_price="-1.00",
                ),
                book(154, apartment_id=999999, curated=dict(apartment_id=999999)),
            ],
        ),
        Case(
            "more decimal places than the column keeps (apartments.price = '12.345'; "
            "coordinates past DECIMAL(10,7), one a negative tie)",
            "rounded to the column's scale half away from zero, as MySQL stores them "
            "(12.345 -> 12.35, -71.06000005 -> -71.0600001, 42.36000004 -> 42.3600000), and "
            "curated",
            [
                apt(170, price="12.345", curated=dict(price=D("12.35"), price_usd=D("12.35"))),
                attr(
                    170,
                    latitude="42.36000004",
                    longitude="-71.06000005",
                    curated=dict(latitude=D("42.3600000"), longitude=D("-71.0600001")),
                ),
            ],
        ),
        Case(
            "loosely typed SQLite values: padded or exponent numbers, extra trailing zeros, a "
            "float, ISO 'T' timestamps, dates without times, midnight times in DATE columns, "
            "UTF-8 text stored as a BLOB",
            "read as the values they denote",
            [
                apt(160, price=" 12.50 ", curated=dict(price=D("12.50"), price_usd=D("12.50"))),
                apt(161, price="1.5e2", curated=dict(price=D("150.00"), price_usd=D("150.00"))),
                apt(162, price="12.500", curated=dict(price=D("12.50"), price_usd=D("12.50"))),
                apt(163, price=12.5, curated=dict(price=D("12.50"), price_usd=D("12.50"))),
                apt(
                    164,
                    listing_created_on="2024-01-05T10:00:00",
                    curated=dict(listing_created_on=datetime(2024, 1, 5, 10)),
                ),
                apt(
                    165,
                    listing_created_on="2024-01-05",
                    curated=dict(listing_created_on=datetime(2024, 1, 5)),
                ),
                book(
                    160,
                    checkin_date="2024-06-01 00:00:00",
                    checkout_date="2024-06-03T00:00:00",
                    curated=dict(
                        checkin_date=date(2024, 6, 1), checkout_date=date(2024, 6, 3), nights=2
                    ),
                ),
                attr(
                    160,
                    body="café stored as a BLOB".encode(),
                    curated=dict(body="café stored as a BLOB"),
                ),
                view(
                    160,
                    viewed_at="2024-03-01 12:00:00.5",
                    curated=dict(viewed_at=datetime(2024, 3, 1, 12, 0, 0, 500000)),
                ),
            ],
            backends=("sqlite",),
        ),
    ]
    return [c for c in cases if backend in c.backends]


def stamped(cases: list[Case], start: datetime) -> dict[str, list[Row]]:
    """The corpus rows per table, each version with its own watermark (one second apart)."""
    out: dict[str, list[Row]] = {t: [] for t in TABLES}
    n = 0
    for case in cases:
        for r in case.rows:
            if r.table != "user_viewing":
                n += 1
                r.values["last_modified_timestamp"] = stamp(start + timedelta(seconds=n))
            out[r.table].append(r)
    return out


def stamp(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="microseconds")


def expected_curated(r: Row) -> dict[str, Any]:
    spec = TABLES[r.table]
    clean, typed = _defaults(r.table, r.values[spec.key])
    out = {**typed, **r.curated}
    for column in spec.columns:
        name = column.name
        changed = name in clean and r.values[name] != clean[name] and name not in r.curated
        if changed:
            # Only text may be left implicit: it is expected back exactly as written.
            assert column.kind is Kind.TEXT, (r, name)
            out[name] = r.values[name]
    if "last_modified_timestamp" in r.values:
        out["last_modified_timestamp"] = datetime.fromisoformat(r.values["last_modified_timestamp"])
    assert set(out) == set(CURATED[r.table].column_names), r
    return out


def expected_record(r: Row) -> dict[str, Any]:
    """The raw row as rejected_rows.record shows it: the source values with their column types,
    timestamps with six fractional digits, MySQL's zero date as null; or the row's own
    ``record`` (a quarantined row's, which shows the source's values as text)."""
    if r.record is not None:
        return r.record
    out: dict[str, Any] = {}
    for column in TABLES[r.table].columns:
        value = r.values[column.name]
        if value is None or (isinstance(value, str) and value.startswith("0000-00-00")):
            out[column.name] = None
        elif column.kind is Kind.INTEGER:
            out[column.name] = int(value)
        elif column.kind is Kind.DECIMAL:
            out[column.name] = D(str(value).strip())
        elif column.kind is Kind.DATETIME:
            moment = datetime.fromisoformat(value)
            out[column.name] = moment.isoformat(sep=" ", timespec="microseconds")
        else:
            out[column.name] = value
    whole = json.dumps(out, default=str, ensure_ascii=False, separators=(",", ":"))
    if len(whole.encode()) > RECORD_BYTES:  # far longer: no case sits near the limit
        return {"cut": True, "id": out["id"]}
    return out


# --------------------------------------------------------------------------- the checks


def write_rows(source: SourceDB, rows: dict[str, list[Row]]) -> None:
    for table, table_rows in rows.items():
        if table_rows:
            source.insert(table, [r.values for r in table_rows])


def placements(home: Path, rows: dict[str, list[Row]]) -> dict[int, list[str]]:
    """Where each corpus row ended up (by ``id()``): 'curated' and/or 'rejected:<reason>'.
    A row is found in curated by its key, in rejected_rows by its whole raw record."""
    rejected = rejected_rows(home)
    out: dict[int, list[str]] = {}
    for table, table_rows in rows.items():
        key = CURATED[table].key
        curated = Counter(c[key] for c in curated_rows(home, table))
        for r in table_rows:
            found = [
                f"rejected:{reason}"
                for t, _, reason, record in rejected
                if t == table and record == expected_record(r)
            ]
            if r.values[key] is not None:
                found += ["curated"] * curated[r.values[key]]
            out[id(r)] = found
    return out


def lost_of(rows: list[Row], where: dict[int, list[str]]) -> str:
    """'nothing', or how many of the rows are in neither place or in more than one."""
    missing = sum(1 for r in rows if not where[id(r)])
    doubled = sum(1 for r in rows if len(where[id(r)]) > 1)
    if not missing and not doubled:
        return "nothing"
    return f"{missing} of {len(rows)} rows in neither curated nor rejected_rows, {doubled} in both"


def mismatches(home: Path, case: Case) -> list[str]:
    """Where a row of the case is not exactly where and what the corpus says (all of them, so
    one run shows every difference)."""
    rejected = rejected_rows(home)
    out = []
    for r in case.rows:
        key = CURATED[r.table].key
        if r.reason is None:
            got: list[Any] = [c for c in curated_rows(home, r.table) if c[key] == r.values[key]]
            want: list[Any] = [expected_curated(r)]
        else:
            record = expected_record(r)
            got = [(k, why) for t, k, why, rec in rejected if t == r.table and rec == record]
            want = [(None if r.values[key] is None else str(r.values[key]), r.reason)]
        if got != want:
            diff = (
                {k: (v, got[0].get(k)) for k, v in want[0].items() if got and got[0].get(k) != v}
                if isinstance(want[0], dict)
                else {}
            )
            out.append(
                f"{case.name}: {r.table} {key}={r.values[key]!r}: want {want}, got {got}"
                f" (differs: {diff})"
            )
    return out


def assert_nothing_else(home: Path, rows: dict[str, list[Row]]) -> None:
    """Curated and rejected_rows hold the corpus's rows and nothing more."""
    for table, table_rows in rows.items():
        want = sorted(
            (expected_curated(r) for r in table_rows if r.reason is None),
            key=lambda c: json.dumps(c, default=str, sort_keys=True),
        )
        got = sorted(
            curated_rows(home, table), key=lambda c: json.dumps(c, default=str, sort_keys=True)
        )
        assert got == want, table
    want_rejected = Counter(
        (r.table, r.reason, json.dumps(expected_record(r), default=str, sort_keys=True))
        for table_rows in rows.values()
        for r in table_rows
        if r.reason is not None
    )
    got_rejected = Counter(
        (t, reason, json.dumps(record, default=str, sort_keys=True))
        for t, _, reason, record in rejected_rows(home)
    )
    assert got_rejected == want_rejected


EXPECTED_TABLES = {
    *(f"raw.{t}" for t in TABLES),
    *(f"curated.{t}" for t in CURATED),
    "curated.fx_rates",
    "curated.rejected_rows",
}


# --------------------------------------------------------------------------- unfit values

STAMP1 = datetime(2025, 2, 1)  # far past the corpus's bookmarks and their lookback
STAMP2 = datetime(2025, 3, 1)  # the fixed versions


@dataclass
class Unfit:
    """A value its column's type cannot hold, written as a new row version: the run must go
    on, quarantining the row as ``invalid_value`` with the record ``record`` would build plus
    ``invalid`` (written out by hand); once a later version carries ``fixed`` the next run must
    curate the row."""

    name: str
    table: str
    key: Any
    column: str
    bad: Any
    fixed: Any
    curated: dict[str, Any]
    invalid: str  # the record's ``_invalid`` text
    backends: tuple[str, ...] = ("sqlite", "mariadb")
    sql_mode: str = ""  # MariaDB: the session sql_mode that lets the value in
    raw_sql: str = ""  # SQLite: writes a value no parameter can carry (bytes that are not UTF-8)
    recorded: Any = None  # how the record shows the bad value, when not as written


SQLITE = ("sqlite",)
UNFIT = [
    Unfit(
        "text in a DECIMAL column (apartments.price = 'abc')",
        "apartments",
        201,
        "price",
        bad="abc",
        fixed="100.00",
        curated={},
        invalid="price = 'abc' does not fit DECIMAL(12,2): not a number",
        backends=SQLITE,
    ),
    Unfit(
        "a decimal comma (bookings.total_price = '12,50')",
        "bookings",
        201,
        "total_price",
        bad="12,50",
        fixed="12.50",
        curated=dict(total_price=D("12.50"), total_price_usd=D("12.50")),
        invalid="total_price = '12,50' does not fit DECIMAL(12,2): not a number",
        backends=SQLITE,
    ),
    Unfit(
        "more digits than DECIMAL(3,1) holds (apartment_attributes.bathrooms = '100.0')",
        "apartment_attributes",
        201,
        "bathrooms",
        bad="100.0",
        fixed="10.0",
        curated=dict(bathrooms=D("10.0")),
        invalid="bathrooms = '100.0' does not fit DECIMAL(3,1): more than 2 digits before the "
        "point",
        backends=SQLITE,
    ),
    Unfit(
        "an INT overflow (apartment_attributes.square_feet = 3000000000)",
        "apartment_attributes",
        202,
        "square_feet",
        bad=3000000000,
        fixed=3000,
        curated=dict(square_feet=3000),
        invalid="square_feet = 3000000000 does not fit INT: out of range (-2147483648 to "
        "2147483647)",
        backends=SQLITE,
    ),
    Unfit(
        "a BIGINT overflow (bookings.user_id = 9.3e18, which SQLite holds as a float)",
        "bookings",
        202,
        "user_id",
        bad=9.3e18,
        fixed=42,
        curated=dict(user_id=42),
        invalid="user_id = 9.3e+18 does not fit BIGINT: out of range (-9223372036854775808 to "
        "9223372036854775807)",
        backends=SQLITE,
    ),
    Unfit(
        "text in an integer column (bookings.apartment_id = '12abc')",
        "bookings",
        203,
        "apartment_id",
        bad="12abc",
        fixed=1,
        curated={},
        invalid="apartment_id = '12abc' does not fit BIGINT: not a number",
        backends=SQLITE,
    ),
    Unfit(
        "a timestamp with a zone offset (bookings.booking_date = '2024-05-01 09:00:00+02:00')",
        "bookings",
        205,
        "booking_date",
        bad="2024-05-01 09:00:00+02:00",
        fixed="2024-05-01 07:00:00",
        curated=dict(booking_date=datetime(2024, 5, 1, 7)),
        invalid="booking_date = '2024-05-01 09:00:00+02:00' does not fit DATETIME: expected "
        "YYYY-MM-DD[ HH:MM:SS[.ffffff]]",
        backends=SQLITE,
    ),
    Unfit(
        "text that is not UTF-8 (apartments.title holds the latin-1 byte E9)",
        "apartments",
        203,
        "title",
        bad="placeholder",
        fixed="Café",
        curated=dict(title="Café"),
        invalid="title = b'Caf\\xe9' does not fit VARCHAR(255): bytes that are not UTF-8 text",
        backends=SQLITE,
        raw_sql="UPDATE apartments SET title = CAST(X'436166E9' AS TEXT) WHERE id = 203",
        recorded="Caf\\xe9",
    ),
    Unfit(
        "an impossible day (bookings.checkin_date = '2024-02-30', which MariaDB keeps under "
        "sql_mode ALLOW_INVALID_DATES)",
        "bookings",
        204,
        "checkin_date",
        bad="2024-02-30",
        fixed="2024-06-02",
        curated=dict(checkin_date=date(2024, 6, 2), nights=3),
        invalid="checkin_date = '2024-02-30' does not fit DATE: no such date or time (day is "
        "out of range for month)",
        sql_mode="STRICT_ALL_TABLES,ALLOW_INVALID_DATES",
    ),
    Unfit(
        "a zero month (user_viewing.viewed_at = '2024-00-10 12:00:00')",
        "user_viewing",
        201,
        "viewed_at",
        bad="2024-00-10 12:00:00",
        fixed="2024-01-10 12:00:00",
        curated=dict(viewed_at=datetime(2024, 1, 10, 12)),
        invalid="viewed_at = '2024-00-10 12:00:00' does not fit DATETIME: no such date or time "
        "(month must be in 1..12)",
    ),
]
# The one value that still fails its table: a watermark whose highest value is no timestamp
# leaves no place to put the bookmark.
WATERMARK = Unfit(
    "a watermark that is not a timestamp (apartments.last_modified_timestamp = 'yesterday')",
    "apartments",
    204,
    "last_modified_timestamp",
    bad="yesterday",
    fixed=stamp(STAMP2),
    curated={},
    invalid="",
    backends=SQLITE,
)


def as_source_gives(value: Any, column: Any, backend: str) -> str | None:
    """A value written to the source as a quarantined record shows it (the source's value as
    text): SQLite hands back what it stored (the test writes text, integers and floats as
    they are); MariaDB hands back its typed value, a DATETIME without zero microseconds."""
    if value is None:
        return None
    if backend == "mariadb" and column.kind is Kind.DATETIME:
        moment = datetime.fromisoformat(value)
        return moment.isoformat(sep=" ") if moment.microsecond else str(moment)
    return value if isinstance(value, str) else repr(value)


def unfit_row(case: Unfit, n: int, backend: str) -> Row:
    """The row version holding the bad value, expected rejected as ``invalid_value``."""
    r = row(case.table, case.key, "invalid_value", **{case.column: case.bad})
    if case.table != "user_viewing":
        r.values.setdefault("last_modified_timestamp", stamp(STAMP1 + timedelta(seconds=n)))
    r.values[case.column] = case.bad
    r.record = {
        c.name: as_source_gives(r.values[c.name], c, backend)
        for c in TABLES[case.table].columns
        if c.name != case.column
    }
    # The bad value as the source hands it over: text as written (MariaDB returns a date it
    # cannot type as its text), unless the case says otherwise.
    written = case.bad if isinstance(case.bad, str) else repr(case.bad)
    r.record[case.column] = written if case.recorded is None else case.recorded
    r.record["_invalid"] = case.invalid
    return r


def fixed_row(case: Unfit, bad: Row, n: int) -> Row:
    """The later version of the row with the value fixed, expected curated."""
    r = Row(case.table, {**bad.values, case.column: case.fixed}, curated=case.curated)
    if case.table != "user_viewing" and case.column != "last_modified_timestamp":
        r.values["last_modified_timestamp"] = stamp(STAMP2 + timedelta(seconds=n))
    return r


def write_fix(source: SourceDB, fixed: Row) -> None:
    """Update the source row to its fixed version (every column, the watermark included)."""
    key = CURATED[fixed.table].key
    names = [n for n in TABLES[fixed.table].column_names if n != key]
    sql = f"UPDATE `{fixed.table}` SET {', '.join(f'`{n}` = ?' for n in names)} WHERE `{key}` = ?"
    source.execute(sql, [[*(fixed.values[n] for n in names), fixed.values[key]]])


def quarantined(home: Path, source: SourceDB, rows: dict[str, list[Row]]) -> list[Row]:
    """Write every unfit value of the backend as a new row version and run once: the run must
    succeed, each such row be in rejected_rows once as invalid_value with its exact record,
    and every corpus row stay where it was. Returns the bad rows."""
    unfit = [u for u in UNFIT if source.backend in u.backends]
    bad = [unfit_row(u, n, source.backend) for n, u in enumerate(unfit, start=1)]
    for u, r in zip(unfit, bad, strict=True):
        source.insert(u.table, [r.values], u.sql_mode)
        if u.raw_sql:
            source.execute(u.raw_sql)
    record = run_ok(home, source)
    for table in TABLES:
        count = sum(1 for r in bad if r.table == table)
        got = record["summary"][table]["rejected_by_reason"].get("invalid_value", 0)
        assert got == count, (table, record["summary"][table])
    got_rows = [(t, k, reason, rec) for t, k, reason, rec in rejected_rows(home)]
    for r in bad:
        key = str(r.values[CURATED[r.table].key])
        assert [g for g in got_rows if g[0] == r.table and g[1] == key] == [
            (r.table, key, "invalid_value", r.record)
        ], r.table
    assert_nothing_else(home, {t: rows[t] + [r for r in bad if r.table == t] for t in TABLES})
    return bad


def watermark_fails(home: Path, source: SourceDB) -> Row:
    """A watermark whose highest value is not a timestamp: the run of its table fails at
    Extract naming the column and the value, and changes nothing. Returns the fixed row."""
    before, marks = warehouse_snapshot(home), bookmarks(home)
    case = WATERMARK
    bad = row(case.table, case.key, last_modified_timestamp=case.bad)
    source.insert(case.table, [bad.values])
    done = rentalctl(home, source, *NO_GATE, "run", "--tables", case.table)
    assert done.exit_code == 1, done.output
    assert done.record["status"] == "FAILED"
    assert done.record["error"]["Error"] == "Rentalctl.PipelineFailed", done.record["error"]
    states = {s["name"]: s["status"] for s in done.record["states"]}
    assert states[f"ExtractLoad[{case.table}]"] == "FAILED", states
    assert "Transform" not in states and "CommitBookmarks" not in states, states
    (line,) = done.errors
    assert f"{case.table}.{case.column}: its highest value '{case.bad}'" in line, line
    assert "no bookmark moved" in line, line
    assert bookmarks(home) == marks
    assert warehouse_snapshot(home) == before
    assert unfinished_lake_files(home) == []
    assert not [p for p in (home / "lake" / "raw").rglob("*") if done.record["run_id"] in str(p)]
    fixed = Row(case.table, {**bad.values, case.column: case.fixed})
    write_fix(source, fixed)
    return fixed


def unfit_values(home: Path, source: SourceDB, rows: dict[str, list[Row]], reliability: Record):
    """Values no column type can hold: quarantined in one run that goes on, then fixed by later
    versions and curated (a user_viewing row, append-only, by a backfill of its day)."""
    bad = quarantined(home, source, rows)
    before_fix = placements(home, {t: [r for r in bad if r.table == t] for t in TABLES})
    fixed_watermark = watermark_fails(home, source) if source.backend == "sqlite" else None

    unfit = [u for u in UNFIT if source.backend in u.backends]
    fixed = [fixed_row(u, r, n) for n, (u, r) in enumerate(zip(unfit, bad, strict=True), 1)]
    for r in fixed:
        write_fix(source, r)
    run_ok(home, source)
    if any(r.table == "user_viewing" for r in fixed):
        done = rentalctl(
            home,
            source,
            *NO_GATE,
            "backfill",
            "--since",
            "2024-01-10",
            "--until",
            "2024-01-10",
            "--tables",
            "user_viewing",
        )
        assert done.exit_code == 0 and done.record["status"] == "SUCCEEDED", done.output
    later = [*fixed, *([fixed_watermark] if fixed_watermark else [])]
    every = {t: rows[t] + [r for r in [*bad, *later] if r.table == t] for t in TABLES}
    assert_nothing_else(home, every)
    after_fix = placements(home, {t: [r for r in later if r.table == t] for t in TABLES})
    for u, b, f in zip(unfit, bad, fixed, strict=True):
        lost = lost_of([b], before_fix)
        if lost == "nothing":
            lost = lost_of([f], after_fix)
        assert lost == "nothing", (u.name, lost)
        reliability(
            "bad-input",
            f"{u.name} ({source.backend})",
            f"the run goes on: the row version is quarantined in curated.rejected_rows once, as "
            f"invalid_value, its record the source row as text plus _invalid naming "
            f"{u.table}.{u.column}, the value and why; every other row is placed as before; "
            "a later version with the value fixed is curated by the next "
            + (
                "backfill of its day (an append-only table)" if u.table == "user_viewing" else "run"
            ),
            lost,
        )
    if fixed_watermark:
        lost = lost_of([fixed_watermark], after_fix)
        assert lost == "nothing", lost
        reliability(
            "bad-input",
            f"{WATERMARK.name} ({source.backend})",
            "the run of the table fails at Extract with exit 1, one error line naming the column "
            "and its highest value (no bookmark can be placed); bookmarks, warehouse and lake "
            "unchanged; once the value is fixed the next run curates the row",
            lost,
        )


def test_bad_input_corpus(source: SourceDB, tmp_path: Path, reliability: Record) -> None:
    home = tmp_path / "home"
    cases = corpus(source.backend)
    rows = stamped(cases, STAMP0)
    write_rows(source, rows)

    record = run_ok(home, source)

    where = placements(home, rows)
    problems = [p for case in cases for p in mismatches(home, case)]
    assert not problems, "\n".join(problems)
    assert_nothing_else(home, rows)
    tables = {
        f"{s}.{t}"
        for s, t in query(home, "SELECT table_schema, table_name FROM information_schema.tables")
    }
    assert tables >= EXPECTED_TABLES
    assert len([t for t in tables if t.startswith("presentation.")]) == 7
    # The KPIs take the edge dates too: weeks start on Monday (docs/contract.md §6).
    edges = query(
        home,
        "SELECT week_start, confirmed_bookings, avg_nights "
        "FROM presentation.average_booking_duration "
        "WHERE week_start < DATE '1900-01-01' OR week_start > DATE '9000-01-01' ORDER BY 1",
    )
    assert edges == [(date(1899, 12, 25), 1, 3.0), (date(9999, 12, 27), 1, 1.0)]
    summary = record["summary"]
    for table, table_rows in rows.items():
        assert summary[table]["extracted"] == len(table_rows), (table, summary[table])
    for case in cases:
        lost = lost_of(case.rows, where)
        assert lost == "nothing", (case.name, lost)
        reliability("bad-input", f"{case.name} ({source.backend})", case.outcome, lost)

    unfit_values(home, source, rows, reliability)
