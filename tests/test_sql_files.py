"""The shipped SQL (``redshift/``): it parses as Redshift, runs on DuckDB once transpiled, keeps
its physical design for Redshift only, and the presentation refresh is idempotent and atomic."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from rentalctl import sqlfiles
from rentalctl.adapters.warehouse_duckdb import DuckdbWarehouse
from rentalctl.curated import CURATED
from rentalctl.errors import PipelineFailed
from rentalctl.pipeline.presentation import refresh_presentation
from rentalctl.resources import shipped

REDSHIFT_DIR = shipped("redshift")
SQL_FILES = sorted(
    p.relative_to(REDSHIFT_DIR.parent).as_posix() for p in REDSHIFT_DIR.rglob("*.sql")
)
REDSHIFT_ONLY = re.compile(r"\b(DISTKEY|SORTKEY|DISTSTYLE|ENCODE|IDENTITY|BACKUP)\b", re.I)

# docs/contract.md §6, with the DuckDB spelling of the types the brief asks for.
PRESENTATION_COLUMNS = {
    "average_listing_price": [
        ("week_start", "DATE"),
        ("active_listings", "BIGINT"),
        ("avg_price_usd", "DOUBLE"),
    ],
    "occupancy_rate": [
        ("month_start", "DATE"),
        ("available_listings", "BIGINT"),
        ("available_nights", "BIGINT"),
        ("booked_nights", "BIGINT"),
        ("occupancy_rate_pct", "DOUBLE"),
    ],
    "popular_locations": [
        ("week_start", "DATE"),
        ("cityname", "VARCHAR"),
        ("confirmed_bookings", "BIGINT"),
        ("rank", "INTEGER"),
    ],
    "top_performing_listings": [
        ("week_start", "DATE"),
        ("apartment_id", "BIGINT"),
        ("title", "VARCHAR"),
        ("cityname", "VARCHAR"),
        ("revenue_usd", "DECIMAL(18,2)"),
        ("rank", "INTEGER"),
    ],
    "bookings_per_user": [
        ("week_start", "DATE"),
        ("user_id", "BIGINT"),
        ("total_bookings", "BIGINT"),
        ("confirmed_bookings", "BIGINT"),
    ],
    "average_booking_duration": [
        ("week_start", "DATE"),
        ("confirmed_bookings", "BIGINT"),
        ("avg_nights", "DOUBLE"),
    ],
    "repeat_customer_rate": [
        ("month_start", "DATE"),
        ("customers", "BIGINT"),
        ("repeat_customers", "BIGINT"),
        ("repeat_rate_pct", "DOUBLE"),
    ],
}


def create_curated(conn: Any) -> None:
    conn.execute("CREATE SCHEMA curated")
    for spec in CURATED.values():
        columns = ", ".join(f"{name} {sql_type}" for name, sql_type in spec.columns)
        conn.execute(f"CREATE TABLE curated.{spec.name} ({columns})")


def insert(conn: Any, table: str, rows: Sequence[dict[str, Any]]) -> None:
    names = CURATED[table].column_names
    marks = ", ".join("?" for _ in names)
    for row in rows:
        conn.execute(
            f"INSERT INTO curated.{table} ({', '.join(names)}) VALUES ({marks})",
            [row.get(name) for name in names],
        )


def fill_curated(conn: Any) -> None:
    """A little of everything: two weeks, two months, an orphan, a NULL city, every status."""
    stamp = datetime(2024, 1, 1)
    insert(
        conn,
        "apartments",
        [
            dict(
                id=i,
                title=f"Flat {i}",
                price=Decimal("90.00") + i,
                currency="USD",
                listing_created_on=datetime(2024, 1, i),
                is_active=i != 3,
                last_modified_timestamp=stamp,
                price_usd=Decimal("90.00") + i,
            )
            for i in (1, 2, 3)
        ],
    )
    insert(
        conn,
        "apartment_attributes",
        [
            dict(id=1, cityname="Austin", last_modified_timestamp=stamp),
            dict(id=2, cityname=None, last_modified_timestamp=stamp),
        ],
    )
    stays = [
        (1, 10, 1, datetime(2024, 1, 3, 9), date(2024, 1, 29), date(2024, 2, 3), "confirmed"),
        (2, 10, 2, datetime(2024, 1, 20), date(2024, 2, 1), date(2024, 2, 4), "confirmed"),
        (3, 11, 1, datetime(2024, 1, 21), date(2024, 2, 10), date(2024, 2, 11), "canceled"),
        (4, 11, 9, datetime(2024, 2, 1), date(2024, 2, 12), date(2024, 2, 14), "confirmed"),
        (5, 12, 3, datetime(2024, 2, 2), date(2024, 2, 12), date(2024, 2, 13), "pending"),
    ]
    insert(
        conn,
        "bookings",
        [
            dict(
                booking_id=bid,
                user_id=user,
                apartment_id=apt,
                booking_date=booked,
                checkin_date=checkin,
                checkout_date=checkout,
                total_price=Decimal("120.10"),
                currency="USD",
                booking_status=status,
                last_modified_timestamp=stamp,
                total_price_usd=Decimal("120.10"),
                nights=(checkout - checkin).days,
            )
            for bid, user, apt, booked, checkin, checkout, status in stays
        ],
    )


def snapshot(wh: DuckdbWarehouse) -> dict[str, list[tuple[Any, ...]]]:
    return {
        t: wh.query(f"SELECT * FROM presentation.{t} ORDER BY ALL") for t in sqlfiles.KPI_TABLES
    }


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[DuckdbWarehouse]:
    warehouse = DuckdbWarehouse(tmp_path / "warehouse.duckdb")
    create_curated(warehouse.conn)
    yield warehouse
    warehouse.close()


def test_the_shipped_sql_is_found() -> None:
    assert "redshift/presentation.sql" in SQL_FILES
    for table in sqlfiles.KPI_TABLES:
        assert sqlfiles.kpi_file(table) in SQL_FILES


@pytest.mark.parametrize("path", SQL_FILES)
def test_every_file_parses_as_redshift(path: str) -> None:
    pieces = sqlfiles.split(shipped(path).read_text(encoding="utf-8"))
    assert pieces, f"{path} holds no statement"
    for piece in pieces:
        sqlfiles.parse(piece, path)  # raises when sqlglot falls back to an opaque Command


@pytest.mark.parametrize("path", SQL_FILES)
def test_every_file_runs_on_duckdb_after_transpiling(path: str) -> None:
    conn = duckdb.connect()
    create_curated(conn)
    for statement in sqlfiles.statements(sqlfiles.PRESENTATION_DDL, "duckdb"):
        conn.execute(statement)
    for statement in sqlfiles.statements(path, "duckdb"):
        conn.execute(statement)


@pytest.mark.parametrize("path", SQL_FILES)
def test_duckdb_sql_has_no_redshift_only_clauses(path: str) -> None:
    for statement in sqlfiles.statements(path, "duckdb"):
        assert not REDSHIFT_ONLY.search(statement), statement


def test_redshift_text_keeps_the_physical_design() -> None:
    ddl = sqlfiles.statements(sqlfiles.PRESENTATION_DDL, "redshift")
    tables = [s for s in ddl if s.upper().startswith("CREATE TABLE")]
    assert len(tables) == len(sqlfiles.KPI_TABLES)
    for statement in tables:
        assert re.search(r"\bSORTKEY\b", statement), statement
        assert re.search(r"\bDISTSTYLE\b", statement), statement
        assert re.search(r"\bENCODE\b", statement), statement
    assert any(re.search(r"\bDISTKEY\s*\(\s*user_id\s*\)", s) for s in tables)


def test_the_strip_pass_removes_identity_encode_and_distribution() -> None:
    redshift = (
        "CREATE TABLE IF NOT EXISTS t (id BIGINT IDENTITY(1, 1) NOT NULL ENCODE AZ64, "
        "name VARCHAR(20) ENCODE ZSTD, d DATE) BACKUP NO DISTSTYLE KEY DISTKEY (id) "
        "COMPOUND SORTKEY (d, id)"
    )
    duck = sqlfiles.to_duckdb(redshift)
    assert not REDSHIFT_ONLY.search(duck), duck
    conn = duckdb.connect()
    conn.execute(duck)
    conn.execute("INSERT INTO t VALUES (1, 'a', DATE '2024-01-01')")
    assert conn.execute("SELECT * FROM t").fetchall() == [(1, "a", date(2024, 1, 1))]


def test_unparseable_sql_is_refused_for_duckdb() -> None:
    # sqlglot 30 has no parser for INTERLEAVED SORTKEY: refused, not passed through as is.
    with pytest.raises(ValueError, match="sqlglot does not understand"):
        sqlfiles.to_duckdb("CREATE TABLE t (a INT) INTERLEAVED SORTKEY (a)")


def test_split_follows_the_tokens() -> None:
    text = (
        "-- heading; with a semicolon\n"
        "SELECT 'a;b' AS \"x;y\";\n"
        "/* c; */ DELETE FROM t /* inner; */ WHERE a = 1;\n"
        "-- trailing comment\n"
    )
    assert sqlfiles.split(text) == [
        "SELECT 'a;b' AS \"x;y\"",
        "DELETE FROM t /* inner; */ WHERE a = 1",
    ]


def test_statements_are_cached_and_copied() -> None:
    first = sqlfiles.statements(sqlfiles.PRESENTATION_DDL, "duckdb")
    first.append("garbage")
    assert sqlfiles.statements(sqlfiles.PRESENTATION_DDL, "duckdb") == first[:-1]
    with pytest.raises(ValueError, match="unknown SQL dialect"):
        sqlfiles.statements(sqlfiles.PRESENTATION_DDL, "postgres")


@pytest.mark.parametrize("dialect", ["duckdb", "redshift"])
def test_refresh_order(dialect: str) -> None:
    refresh = sqlfiles.presentation_refresh(dialect)
    ddl = sqlfiles.statements(sqlfiles.PRESENTATION_DDL, dialect)
    assert refresh[: len(ddl)] == ddl
    assert ddl[0].upper().startswith("CREATE SCHEMA IF NOT EXISTS PRESENTATION")
    rest = refresh[len(ddl) :]
    expected = []
    for table in sqlfiles.KPI_TABLES:
        expected += [f"DELETE FROM presentation.{table}", f"INSERT INTO presentation.{table}"]
    assert [" ".join(s.split()[:3]) for s in rest] == expected
    assert not any(s.upper().startswith("TRUNCATE") for s in refresh)


def test_presentation_tables_have_the_spec_columns(wh: DuckdbWarehouse) -> None:
    refresh_presentation(wh)
    for table, columns in PRESENTATION_COLUMNS.items():
        described = wh.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'presentation' AND table_name = ? ORDER BY ordinal_position",
            [table],
        )
        assert described == columns, table
    tables = wh.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'presentation'"
    )
    assert sorted(t for (t,) in tables) == sorted(PRESENTATION_COLUMNS)


def test_refresh_is_idempotent(wh: DuckdbWarehouse) -> None:
    fill_curated(wh.conn)
    counts = refresh_presentation(wh)
    first = snapshot(wh)
    assert all(first[t] for t in sqlfiles.KPI_TABLES), first  # the fixture feeds every table
    assert counts == {t: len(rows) for t, rows in first.items()}
    assert refresh_presentation(wh) == counts
    assert snapshot(wh) == first


def test_refresh_follows_the_curated_layer(wh: DuckdbWarehouse) -> None:
    fill_curated(wh.conn)
    refresh_presentation(wh)
    wh.conn.execute("DELETE FROM curated.bookings WHERE user_id = 10")
    refresh_presentation(wh)
    users = wh.query("SELECT DISTINCT user_id FROM presentation.bookings_per_user ORDER BY 1")
    assert users == [(11,), (12,)]


def test_refresh_is_atomic(wh: DuckdbWarehouse) -> None:
    fill_curated(wh.conn)
    refresh_presentation(wh)
    before = snapshot(wh)
    # A refresh would now change the first table, but a later statement fails.
    wh.conn.execute("UPDATE curated.apartments SET price_usd = price_usd + 1")
    wh.conn.execute("DROP TABLE curated.bookings")
    with pytest.raises(PipelineFailed, match="rolled back"):
        refresh_presentation(wh)
    assert snapshot(wh) == before


def test_a_failed_first_refresh_creates_nothing(wh: DuckdbWarehouse) -> None:
    wh.conn.execute("DROP TABLE curated.bookings")
    with pytest.raises(PipelineFailed):
        refresh_presentation(wh)
    schemas = wh.query("SELECT schema_name FROM information_schema.schemata")
    assert ("presentation",) not in schemas


class RecordingWarehouse:
    """Records the transaction a refresh asks for; answers every count with 0."""

    dialect = "redshift"

    def __init__(self) -> None:
        self.transactions: list[list[str]] = []

    def execute_transaction(self, statements: Sequence[str]) -> None:
        self.transactions.append(list(statements))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [(0,)]


def test_refresh_runs_the_warehouse_dialect_in_one_transaction() -> None:
    warehouse = RecordingWarehouse()
    counts = refresh_presentation(warehouse)  # type: ignore[arg-type]
    assert warehouse.transactions == [sqlfiles.presentation_refresh("redshift")]
    assert any("DISTKEY" in s for s in warehouse.transactions[0])
    assert counts == dict.fromkeys(sqlfiles.KPI_TABLES, 0)
