"""Source adapters (docs/contract.md §3): the SQLite file and MySQL/MariaDB, behind one interface.

Most tests run against both backends; the MariaDB ones are marked ``mysql`` and use a fresh
database per test (``mysql_url`` fixture). Expected values are written out per backend: SQLite
keeps DECIMAL and DATETIME as ISO text, MySQL returns ``Decimal`` and ``datetime``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rentalctl import tables
from rentalctl.adapters.factories import open_source
from rentalctl.adapters.source import Source
from rentalctl.errors import ConfigError, ResourceUnavailable
from rentalctl.tables import TABLES
from rentalctl.urls import MysqlURL, SqliteURL, parse_source

APARTMENTS = TABLES["apartments"]
BOOKINGS = TABLES["bookings"]


@dataclass
class Backend:
    kind: str  # "sqlite" or "mysql"
    url: SqliteURL | MysqlURL


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", SqliteURL(tmp_path / "source.db"))
    url = parse_source(request.getfixturevalue("mysql_url"), tmp_path)
    assert isinstance(url, MysqlURL)
    return Backend("mysql", url)


@pytest.fixture
def source(backend: Backend) -> Iterator[Source]:
    with open_source(backend.url, create=True) as src:
        src.ensure_schema(TABLES.values())
        yield src


def count(src: Source, table: str) -> int:
    return src.query(f"SELECT COUNT(*) FROM {src.quote(table)}")[0][0]


def insert_ids(src: Source, ids: range, stamp: str = "2024-01-01 00:00:00.000001") -> None:
    sql = src.insert_sql(APARTMENTS, ["id", "last_modified_timestamp"])
    src.write([(sql, [(i, stamp) for i in ids])])


def normalise(row: tuple) -> tuple:
    """None, int and str as they are; anything else (Decimal, datetime, date) as str."""
    return tuple(v if v is None or isinstance(v, int | str) else str(v) for v in row)


# --------------------------------------------------------------------------- schema


def test_ensure_schema_is_idempotent(backend: Backend) -> None:
    with open_source(backend.url, create=True) as src:
        src.ensure_schema(TABLES.values())
        src.ensure_schema(TABLES.values())
        for name in ("apartments", "apartment_attributes", "user_viewing", "bookings"):
            assert count(src, name) == 0
        insert_ids(src, range(1, 4))
    # a later ensure_schema (on a new connection) keeps the data
    with open_source(backend.url, create=True) as src:
        src.ensure_schema(TABLES.values())
        assert count(src, "apartments") == 3


def test_ensure_schema_creates_every_spec_column(source: Source) -> None:
    for spec in TABLES.values():
        names = ", ".join(source.quote(c) for c in spec.column_names)
        assert source.query(f"SELECT {names} FROM {source.quote(spec.name)}") == []


def test_quote_and_insert_sql(backend: Backend, source: Source) -> None:
    sql = source.insert_sql(APARTMENTS, ["id", "last_modified_timestamp"])
    if backend.kind == "sqlite":
        assert source.quote('a"b') == '"a""b"'
        assert sql == 'INSERT INTO "apartments" ("id", "last_modified_timestamp") VALUES (?, ?)'
    else:
        assert source.quote("a`b") == "`a``b`"
        assert sql == "INSERT INTO `apartments` (`id`, `last_modified_timestamp`) VALUES (%s, %s)"


def test_insert_sql_refuses_a_column_not_in_the_spec(source: Source) -> None:
    with pytest.raises(ConfigError, match="'nope'") as excinfo:
        source.insert_sql(APARTMENTS, ["id", "nope"])
    assert int(excinfo.value.exit_code) == 2
    with pytest.raises(ConfigError, match="drop"):
        source.insert_sql(APARTMENTS, ["id; drop table apartments"])


def test_table_refuses_an_unknown_table() -> None:
    with pytest.raises(ConfigError, match="'nope'") as excinfo:
        tables.table("nope")
    assert "apartments" in str(excinfo.value)
    assert int(excinfo.value.exit_code) == 2
    assert tables.table("bookings").key == "booking_id"
    assert tables.table("user_viewing").watermark == "id"


# --------------------------------------------------------------------------- round trip

APARTMENT_COLUMNS = [
    "id",
    "title",
    "source",
    "price",
    "currency",
    "listing_created_on",
    "is_active",
    "last_modified_timestamp",
]
AWKWARD_APARTMENTS = [
    (1, "Café ☕ 🏠 Zürich \u2013 naïve", "web", "12345678.90", "EUR",
     "2024-02-29 00:00:00", 1, "2024-02-29 23:59:59.123456"),
    (2, 'He said "hi", it\'s fine, ok', "a,b", "0.01", "usd",
     "2023-12-31 23:59:59", 0, "2024-01-01 00:00:00.000001"),
    (3, "line1\nline2\r\n\ttabbed\\back\\slash", "\t", "-5.00", " GBP ",
     "2000-01-01 00:00:00", None, "1999-12-31 23:59:59.999999"),
    (4, "", "", "9999999999.99", "", None, 1, "2024-06-15 12:30:45.500000"),
    (5, None, None, None, None, None, None, "2024-06-15 12:30:45.654321"),
    (6, "  padded  ", "%s %d {} ? :x", "0.00", "INR",
     "2024-02-29 12:00:00", 1, "2024-02-29 23:59:59.123456"),
    (None, "Robert'); DROP TABLE apartments;--", "😀" * 10, "100.50", "EUR",
     "2024-03-01 08:00:00", 1, "2024-03-01 08:00:00.000100"),
]  # fmt: skip

# After normalise(): the same text on both backends for these values.
EXPECTED_APARTMENTS = [
    (1, "Café ☕ 🏠 Zürich \u2013 naïve", "web", "12345678.90", "EUR",
     "2024-02-29 00:00:00", 1, "2024-02-29 23:59:59.123456"),
    (2, 'He said "hi", it\'s fine, ok', "a,b", "0.01", "usd",
     "2023-12-31 23:59:59", 0, "2024-01-01 00:00:00.000001"),
    (3, "line1\nline2\r\n\ttabbed\\back\\slash", "\t", "-5.00", " GBP ",
     "2000-01-01 00:00:00", None, "1999-12-31 23:59:59.999999"),
    (4, "", "", "9999999999.99", "", None, 1, "2024-06-15 12:30:45.500000"),
    (5, None, None, None, None, None, None, "2024-06-15 12:30:45.654321"),
    (6, "  padded  ", "%s %d {} ? :x", "0.00", "INR",
     "2024-02-29 12:00:00", 1, "2024-02-29 23:59:59.123456"),
    (None, "Robert'); DROP TABLE apartments;--", "😀😀😀😀😀😀😀😀😀😀", "100.50", "EUR",
     "2024-03-01 08:00:00", 1, "2024-03-01 08:00:00.000100"),
]  # fmt: skip

EXPECTED_TYPES = {
    "sqlite": (int, str, str, str, str, str, int, str),
    "mysql": (int, str, str, Decimal, str, datetime, int, datetime),
}


def _select_apartments(src: Source) -> list[tuple]:
    cols = ", ".join(src.quote(c) for c in APARTMENT_COLUMNS)
    # NULL ids sort first on both SQLite and MySQL
    return src.query(
        f"SELECT {cols} FROM {src.quote('apartments')} "
        f"ORDER BY {src.quote('id')}, {src.quote('last_modified_timestamp')}"
    )


def test_awkward_values_round_trip(backend: Backend, source: Source) -> None:
    source.write([(source.insert_sql(APARTMENTS, APARTMENT_COLUMNS), AWKWARD_APARTMENTS)])
    rows = _select_apartments(source)
    expected = [EXPECTED_APARTMENTS[6], *EXPECTED_APARTMENTS[:6]]
    assert [normalise(r) for r in rows] == expected
    # empty string and NULL stay distinct
    assert rows[4][1] == ""
    assert rows[5][1] is None
    # value types as each database returns them
    types = EXPECTED_TYPES[backend.kind]
    assert tuple(type(v) for v in rows[1]) == types
    if backend.kind == "mysql":
        assert rows[1][3] == Decimal("12345678.90")
        assert rows[1][7] == datetime(2024, 2, 29, 23, 59, 59, 123456)
    else:
        assert rows[1][3] == "12345678.90"
        assert rows[1][7] == "2024-02-29 23:59:59.123456"


EXPECTED_BOOKING = {
    "sqlite": (7, 11, 1, "2024-02-28 10:11:12", "2024-02-29", "2024-03-01", "0.00", "usd",
               "Cancelled ", "2024-02-29 23:59:59.123456"),
    "mysql": (7, 11, 1, datetime(2024, 2, 28, 10, 11, 12), date(2024, 2, 29), date(2024, 3, 1),
              Decimal("0.00"), "usd", "Cancelled ", datetime(2024, 2, 29, 23, 59, 59, 123456)),
}  # fmt: skip


def test_dates_and_decimals_round_trip(backend: Backend, source: Source) -> None:
    row = (7, 11, 1, "2024-02-28 10:11:12", "2024-02-29", "2024-03-01", "0.00", "usd",
           "Cancelled ", "2024-02-29 23:59:59.123456")  # fmt: skip
    source.write([(source.insert_sql(BOOKINGS), [row])])
    cols = ", ".join(source.quote(c) for c in BOOKINGS.column_names)
    got = source.query(f"SELECT {cols} FROM {source.quote('bookings')}")
    assert got == [EXPECTED_BOOKING[backend.kind]]
    assert normalise(got[0]) == row  # same ISO text on both backends
    assert str(got[0][6]) == "0.00"


def test_bound_parameters_with_awkward_values_in_where(source: Source) -> None:
    source.write([(source.insert_sql(APARTMENTS, APARTMENT_COLUMNS), AWKWARD_APARTMENTS)])
    q, p = source.quote, source.placeholder
    sql = f"SELECT {q('id')} FROM {q('apartments')} WHERE {q('title')} = {p}"
    assert source.query(sql, ["line1\nline2\r\n\ttabbed\\back\\slash"]) == [(3,)]
    assert source.query(sql, ["Robert'); DROP TABLE apartments;--"]) == [(None,)]
    assert source.query(sql, ["Café ☕ 🏠 Zürich \u2013 naïve"]) == [(1,)]
    assert source.query(sql, ["' OR '1'='1"]) == []
    assert count(source, "apartments") == 7


# --------------------------------------------------------------------------- atomic writes


def test_write_is_atomic_when_a_later_statement_fails(source: Source) -> None:
    good = [(1, "2024-01-01 00:00:00.000001"), (2, "2024-01-01 00:00:00.000002")]
    bad_booking = (1, 1, 1, None, None, None, None, None, None, None)  # NULL watermark
    statements = [
        (source.insert_sql(APARTMENTS, ["id", "last_modified_timestamp"]), good),
        (source.insert_sql(BOOKINGS), [bad_booking]),
    ]
    with pytest.raises(Exception) as excinfo:
        source.write(statements)
    assert "last_modified_timestamp" in str(excinfo.value)
    assert count(source, "apartments") == 0
    assert count(source, "bookings") == 0
    # the connection is usable afterwards: no transaction left open
    insert_ids(source, range(10, 12))
    assert count(source, "apartments") == 2


def test_write_is_atomic_when_the_statement_generator_fails(source: Source) -> None:
    def statements():
        yield (
            source.insert_sql(APARTMENTS, ["id", "last_modified_timestamp"]),
            [(1, "2024-01-01 00:00:00.000001")],
        )
        raise RuntimeError("generator broke")

    with pytest.raises(RuntimeError, match="generator broke"):
        source.write(statements())
    assert count(source, "apartments") == 0


def test_failed_write_is_rolled_back_for_other_connections_too(
    backend: Backend, source: Source
) -> None:
    bad = (3, None)
    with pytest.raises(Exception):  # noqa: B017 - the driver's IntegrityError differs per backend
        source.write(
            [
                (
                    source.insert_sql(APARTMENTS, ["id", "last_modified_timestamp"]),
                    [(1, "2024-01-01 00:00:00.000001"), (2, "2024-01-01 00:00:00.000002")],
                ),
                (source.insert_sql(APARTMENTS, ["id", "last_modified_timestamp"]), [bad]),
            ]
        )
    with open_source(backend.url) as other:
        assert count(other, "apartments") == 0


# --------------------------------------------------------------------------- snapshots


def test_stream_yields_batches_in_order_with_bound_parameters(source: Source) -> None:
    insert_ids(source, range(1, 3001))
    q, p = source.quote, source.placeholder
    sql = (
        f"SELECT {q('id')} FROM {q('apartments')} "
        f"WHERE {q('id')} > {p} AND {q('id')} <= {p} ORDER BY {q('id')}"
    )
    with source.snapshot() as snap:
        batches = list(snap.stream(sql, (250, 2750), 1000))
    assert [len(b) for b in batches] == [1000, 1000, 500]
    assert all(isinstance(b, list) for b in batches)
    ids = [row[0] for batch in batches for row in batch]
    assert ids == list(range(251, 2751))
    assert batches[0][0] == (251,)
    assert batches[2][-1] == (2750,)


def test_stream_of_an_empty_result_yields_nothing(source: Source) -> None:
    q, p = source.quote, source.placeholder
    sql = f"SELECT {q('id')} FROM {q('apartments')} WHERE {q('id')} > {p}"
    with source.snapshot() as snap:
        assert list(snap.stream(sql, (0,), 1000)) == []


def test_stream_exact_multiple_of_the_batch_size(source: Source) -> None:
    insert_ids(source, range(1, 2001))
    q = source.quote
    with source.snapshot() as snap:
        sizes = [len(b) for b in snap.stream(f"SELECT {q('id')} FROM {q('apartments')}", (), 1000)]
    assert sizes == [1000, 1000]


def test_snapshot_does_not_see_rows_committed_after_its_first_read(
    backend: Backend, source: Source
) -> None:
    insert_ids(source, range(1, 3))
    q = source.quote
    ids_sql = f"SELECT {q('id')} FROM {q('apartments')} ORDER BY {q('id')}"
    with source.snapshot() as snap:
        assert snap.query(f"SELECT COUNT(*) FROM {q('apartments')}") == [(2,)]
        with open_source(backend.url) as other:
            insert_ids(other, range(3, 6))
            assert count(other, "apartments") == 5  # committed and visible elsewhere
        assert snap.query(f"SELECT COUNT(*) FROM {q('apartments')}") == [(2,)]
        streamed = [row for batch in snap.stream(ids_sql, (), 1) for row in batch]
        assert streamed == [(1,), (2,)]
    # a new snapshot sees the new rows
    assert count(source, "apartments") == 5


def test_sqlite_source_uses_wal(tmp_path: Path) -> None:
    with open_source(SqliteURL(tmp_path / "wal.db"), create=True) as src:
        src.ensure_schema(TABLES.values())
    conn = sqlite3.connect(tmp_path / "wal.db")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()


# --------------------------------------------------------------------------- missing databases


def test_missing_sqlite_file_without_create(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "source.db"
    with pytest.raises(ResourceUnavailable) as excinfo:
        open_source(SqliteURL(missing))
    assert int(excinfo.value.exit_code) == 3
    assert str(missing) in str(excinfo.value)
    assert not missing.exists()
    assert not missing.parent.exists()
    (tmp_path / "empty-dir").mkdir()
    with pytest.raises(ResourceUnavailable):
        open_source(SqliteURL(tmp_path / "empty-dir" / "source.db"))
    assert list((tmp_path / "empty-dir").iterdir()) == []


def test_sqlite_create_makes_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "source.db"
    with open_source(SqliteURL(path), create=True) as src:
        src.ensure_schema(TABLES.values())
    assert path.is_file()
    with open_source(SqliteURL(path)) as src:  # now it exists: no create needed
        assert count(src, "bookings") == 0


@pytest.mark.mysql
def test_mysql_missing_database_without_create(
    mysql_url: str, mysql_server: dict[str, object], tmp_path: Path
) -> None:
    url = parse_source(mysql_url, tmp_path)
    assert isinstance(url, MysqlURL)
    with pytest.raises(ResourceUnavailable) as excinfo:
        open_source(url)
    message = str(excinfo.value)
    assert int(excinfo.value.exit_code) == 3
    assert f"{mysql_server['host']}:{mysql_server['port']}" in message
    assert repr(url.database) in message
    assert not _database_exists(mysql_server, url.database)


@pytest.mark.mysql
def test_mysql_wrong_password(
    mysql_url: str, mysql_server: dict[str, object], tmp_path: Path
) -> None:
    url = parse_source(mysql_url, tmp_path)
    assert isinstance(url, MysqlURL)
    password = "Wr0ng-Pa55word-Zebra"
    with pytest.raises(ResourceUnavailable) as excinfo:
        open_source(url, create=True, env={"RENTALCTL_SOURCE_PASSWORD": password})
    message = str(excinfo.value)
    assert int(excinfo.value.exit_code) == 3
    assert f"{mysql_server['host']}:{mysql_server['port']}" in message
    assert repr(url.database) in message
    assert password not in message


@pytest.mark.mysql
def test_mysql_create_makes_a_missing_database(
    mysql_url: str, mysql_server: dict[str, object], tmp_path: Path
) -> None:
    url = parse_source(mysql_url, tmp_path)
    assert isinstance(url, MysqlURL)
    assert not _database_exists(mysql_server, url.database)
    with open_source(url, create=True) as src:
        assert src.name == (
            f"mysql://{mysql_server['user']}@{mysql_server['host']}:{mysql_server['port']}"
            f"/{url.database}"
        )
        src.ensure_schema(TABLES.values())
        assert count(src, "apartments") == 0
    assert _database_exists(mysql_server, url.database)
    assert _charset(mysql_server, url.database) == "utf8mb4"
    with open_source(url) as src:  # now it exists: no create needed
        assert count(src, "apartments") == 0


def _database_exists(server: dict[str, object], name: str) -> bool:
    import pymysql

    conn = pymysql.connect(**server)  # type: ignore[arg-type]
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,)
            )
            return cur.fetchone()[0] == 1
    finally:
        conn.close()


def _charset(server: dict[str, object], name: str) -> str:
    import pymysql

    conn = pymysql.connect(**server)  # type: ignore[arg-type]
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA "
                "WHERE SCHEMA_NAME = %s",
                (name,),
            )
            return cur.fetchone()[0]
    finally:
        conn.close()
