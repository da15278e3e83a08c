"""Extraction, the raw layer and bookmarks behave as docs/contract.md §4 says, on SQLite and on a
real MariaDB: incremental windows, lookback, late data, failures between steps, exact round
trips, and nothing lost or doubled."""

from __future__ import annotations

import gzip
import hashlib
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rentalctl import config
from rentalctl.adapters.factories import open_source
from rentalctl.adapters.state import BookmarkConflict
from rentalctl.context import Context
from rentalctl.errors import ConfigError
from rentalctl.pipeline import steps
from rentalctl.run.manifest import read_manifest
from rentalctl.tables import TABLES

APT_COLS = (
    "id",
    "title",
    "source",
    "price",
    "currency",
    "listing_created_on",
    "is_active",
    "last_modified_timestamp",
)


class Pipeline:
    """A source, a lake, a warehouse and a state store in a temporary home."""

    def __init__(self, home: Path, source_url: str, overrides: dict[str, str]) -> None:
        env = {"RENTALCTL_HOME": str(home), "RENTALCTL_SOURCE_URL": source_url}
        self.settings = config.load(overrides=overrides, env=env)
        self.ctx = Context(self.settings)
        with open_source(self.settings.source, create=True) as source:
            source.ensure_schema(TABLES.values())
        self.ctx.state.ensure()

    def insert(self, table: str, rows: list[tuple], columns: tuple[str, ...] | None = None) -> None:
        with self.ctx.source() as source:
            source.write([(source.insert_sql(TABLES[table], columns), rows)])

    def execute(self, sql_sqlite: str, sql_mysql: str, params: tuple = ()) -> None:
        with self.ctx.source() as source:
            sql = sql_sqlite if source.placeholder == "?" else sql_mysql
            source.write([(sql, [params])])

    def extract_and_load(self, run_id: str, tables: tuple[str, ...] | None = None) -> None:
        for name in tables or self.settings.tables:
            steps.extract(self.ctx, name, run_id)
            steps.load_raw(self.ctx, name, run_id)

    def run(self, run_id: str, tables: tuple[str, ...] | None = None) -> None:
        self.extract_and_load(run_id, tables)
        steps.commit_bookmarks(self.ctx, run_id, list(tables or self.settings.tables))

    def raw(self, sql: str, params: tuple = ()) -> list[tuple]:
        with self.ctx.warehouse() as warehouse:
            return warehouse.query(sql, params)

    def bookmark(self, table: str) -> Any:
        return self.ctx.state.bookmarks()[table].value


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def make_pipeline(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., Pipeline]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'source.db'}"
    else:
        url = request.getfixturevalue("mysql_url")

    def make(**overrides: str) -> Pipeline:
        return Pipeline(tmp_path / "home", url, overrides)

    yield make


def apt(id_: int, stamp: str, price: str = "1000.00") -> tuple:
    return (id_, f"Flat {id_}", "RentLingo", price, "USD", "2024-01-01 10:00:00", 1, stamp)


def test_incremental_windows_across_runs(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline(**{"lookback.apartments": "0"})
    p.insert(
        "apartments", [apt(1, "2025-01-01 10:00:00.000000"), apt(2, "2025-01-01 11:00:00.500000")]
    )
    p.run("R1", ("apartments",))
    assert p.bookmark("apartments") == "2025-01-01 11:00:00.500000"

    p.insert("apartments", [apt(3, "2025-01-02 09:00:00.000001")])
    p.execute(
        "UPDATE apartments SET price = ?, last_modified_timestamp = ? WHERE id = ?",
        "UPDATE apartments SET price = %s, last_modified_timestamp = %s WHERE id = %s",
        ("1100.00", "2025-01-02 12:00:00.250000", 1),
    )
    p.run("R2", ("apartments",))
    p.run("R3", ("apartments",))  # nothing new

    rows = p.raw(
        "SELECT _run_id, id, price, last_modified_timestamp FROM raw.apartments "
        "ORDER BY _run_id, id"
    )
    assert rows == [
        ("R1", 1, Decimal("1000.00"), datetime(2025, 1, 1, 10, 0, 0)),
        ("R1", 2, Decimal("1000.00"), datetime(2025, 1, 1, 11, 0, 0, 500000)),
        ("R2", 1, Decimal("1100.00"), datetime(2025, 1, 2, 12, 0, 0, 250000)),
        ("R2", 3, Decimal("1000.00"), datetime(2025, 1, 2, 9, 0, 0, 1)),
    ]
    assert p.bookmark("apartments") == "2025-01-02 12:00:00.250000"
    r3 = read_manifest(p.ctx.lake, "apartments", "R3")
    assert (r3.mode, r3.lower, r3.high, r3.rows, r3.files) == (
        "incremental",
        "2025-01-02 12:00:00.250000",
        "2025-01-02 12:00:00.250000",
        0,
        [],
    )


def test_the_tables_extract_and_load_at_once_into_a_new_warehouse(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    """As a local run's Map does: every table's extract, then its raw load, at the same moment
    (each its own source and warehouse connection); the first loads create the raw schema and
    tables together."""
    import threading

    p = make_pipeline()
    p.insert("apartments", [apt(1, "2025-01-01 10:00:00.000000"), apt(2, "2025-01-01 11:00:00")])
    p.insert("user_viewing", [(7, 70, 1, "2025-01-01 12:00:00", "yes", "call")])
    barrier = threading.Barrier(len(TABLES))
    errors: list[BaseException] = []

    def extract_and_load(name: str) -> None:
        try:
            barrier.wait(timeout=20)
            steps.extract(p.ctx, name, "R1")
            barrier.wait(timeout=60)
            steps.load_raw(p.ctx, name, "R1")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=extract_and_load, args=(t,)) for t in TABLES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    counts = {t: p.raw(f'SELECT _run_id, COUNT(*) FROM raw."{t}" GROUP BY 1') for t in TABLES}
    assert counts == {
        "apartments": [("R1", 2)],
        "apartment_attributes": [],
        "user_viewing": [("R1", 1)],
        "bookings": [],
    }
    assert p.raw("SELECT id, user_id, viewed_at FROM raw.user_viewing") == [
        (7, 70, datetime(2025, 1, 1, 12, 0, 0))
    ]


def test_connections_create_the_raw_tables_at_once_without_a_conflict(tmp_path: Path) -> None:
    """DuckDB fails one of two transactions that create the same catalog entry at once, even
    with IF NOT EXISTS; the warehouse must not (five rounds, each on a new database)."""
    import threading

    from rentalctl.adapters.warehouse_duckdb import DuckdbWarehouse

    for round_ in range(5):
        path = tmp_path / f"w{round_}.duckdb"
        warehouses = [DuckdbWarehouse(path) for _ in TABLES]
        barrier = threading.Barrier(len(TABLES))
        errors: list[BaseException] = []

        def create(
            warehouse: DuckdbWarehouse,
            name: str,
            barrier: threading.Barrier = barrier,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                barrier.wait(timeout=20)
                warehouse.ensure_raw([TABLES[name]])
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=create, args=pair)
            for pair in zip(warehouses, TABLES, strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        created = warehouses[0].query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw' ORDER BY 1"
        )
        for warehouse in warehouses:
            warehouse.close()
        assert errors == []
        assert created == [
            ("apartment_attributes",),
            ("apartments",),
            ("bookings",),
            ("user_viewing",),
        ]


def test_id_watermark_reads_new_viewings_and_the_id_lookback(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(**{"lookback.user_viewing": "2"})
    view_cols = ("id", "user_id", "apartment_id", "viewed_at", "is_wishlisted", "call_to_action")
    p.insert(
        "user_viewing",
        [(i, 10 + i, 100, "2025-01-01 10:00:00", "yes", "save") for i in range(1, 6)],
        view_cols,
    )
    p.run("R1", ("user_viewing",))
    assert p.bookmark("user_viewing") == 5
    p.insert(
        "user_viewing",
        [
            (6, 16, 100, "2025-01-02 10:00:00", "no", None),
            (7, 17, 101, "2025-01-02 10:00:01", None, "book_now"),
        ],
        view_cols,
    )
    p.run("R2", ("user_viewing",))
    # R2 reads (5 - 2, 7]: the two ids before the bookmark again, then the new ones.
    assert p.raw("SELECT _run_id, id FROM raw.user_viewing ORDER BY _run_id, id") == [
        ("R1", 1),
        ("R1", 2),
        ("R1", 3),
        ("R1", 4),
        ("R1", 5),
        ("R2", 4),
        ("R2", 5),
        ("R2", 6),
        ("R2", 7),
    ]
    assert p.bookmark("user_viewing") == 7


def test_row_stamped_exactly_at_the_bookmark(make_pipeline: Callable[..., Pipeline]) -> None:
    # Lookback 0: the window is (bookmark, high], so a row written later with exactly the
    # bookmark's timestamp is not read; the default lookback is what catches it.
    strict = make_pipeline(**{"lookback.apartments": "0"})
    strict.insert("apartments", [apt(1, "2025-01-01 10:00:00.000000")])
    strict.run("R1", ("apartments",))
    strict.insert(
        "apartments", [apt(2, "2025-01-01 10:00:00.000000"), apt(3, "2025-01-01 10:00:00.000001")]
    )
    strict.run("R2", ("apartments",))
    assert strict.raw("SELECT _run_id, id FROM raw.apartments ORDER BY _run_id, id") == [
        ("R1", 1),
        ("R2", 3),
    ]


def test_row_at_the_bookmark_is_caught_by_the_lookback(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline()  # default lookback: 300 s
    p.insert("apartments", [apt(1, "2025-01-01 10:00:00.000000")])
    p.run("R1", ("apartments",))
    p.insert("apartments", [apt(2, "2025-01-01 10:00:00.000000")])
    p.run("R2", ("apartments",))
    assert p.raw("SELECT _run_id, id FROM raw.apartments ORDER BY _run_id, id") == [
        ("R1", 1),
        ("R2", 1),
        ("R2", 2),
    ]
    manifest = read_manifest(p.ctx.lake, "apartments", "R2")
    assert (manifest.lower, manifest.high) == (
        "2025-01-01 09:55:00.000000",
        "2025-01-01 10:00:00.000000",
    )


def test_late_arriving_change_inside_the_lookback(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline()
    p.insert(
        "bookings",
        [
            (
                1,
                7,
                1,
                "2025-01-01 09:00:00",
                "2025-02-01",
                "2025-02-03",
                "200.00",
                "USD",
                "pending",
                "2025-01-01 12:00:00.000000",
            )
        ],
    )
    p.run("R1", ("bookings",))
    # Committed after R1 read the table, but stamped before R1's high mark.
    p.insert(
        "bookings",
        [
            (
                2,
                8,
                1,
                "2025-01-01 11:00:00",
                "2025-03-01",
                "2025-03-05",
                "400.00",
                "EUR",
                "confirmed",
                "2025-01-01 11:58:00.000000",
            ),  # 120 s behind the bookmark: inside the lookback
            (
                3,
                9,
                1,
                "2025-01-01 11:00:00",
                "2025-03-01",
                "2025-03-05",
                "400.00",
                "EUR",
                "confirmed",
                "2025-01-01 11:53:20.000000",
            ),  # 400 s behind: outside it, documented as not caught
        ],
    )
    p.run("R2", ("bookings",))
    assert p.raw("SELECT _run_id, booking_id FROM raw.bookings ORDER BY _run_id, booking_id") == [
        ("R1", 1),
        ("R2", 1),
        ("R2", 2),
    ]
    assert p.bookmark("bookings") == "2025-01-01 12:00:00.000000"


def test_failure_after_extract_leaves_the_bookmark(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline(**{"lookback.apartments": "0"})
    p.insert("apartments", [apt(1, "2025-01-01 10:00:00.000000")])
    steps.extract(p.ctx, "apartments", "R1")  # ... and the run dies here
    assert p.bookmark("apartments") is None
    p.run("R2", ("apartments",))
    assert p.raw("SELECT _run_id, id FROM raw.apartments") == [("R2", 1)]
    assert p.bookmark("apartments") == "2025-01-01 10:00:00.000000"


def test_failure_after_load_rereads_once_per_run(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline(**{"lookback.apartments": "0"})
    p.insert("apartments", [apt(1, "2025-01-01 10:00:00.000000"), apt(2, "2025-01-01 10:00:01")])
    p.extract_and_load("R1", ("apartments",))  # ... and dies before the bookmark commit
    assert p.bookmark("apartments") is None
    p.run("R2", ("apartments",))
    steps.load_raw(p.ctx, "apartments", "R2")  # a retried load of the same run
    assert p.raw("SELECT _run_id, id FROM raw.apartments ORDER BY _run_id, id") == [
        ("R1", 1),
        ("R1", 2),
        ("R2", 1),
        ("R2", 2),
    ]
    assert p.bookmark("apartments") == "2025-01-01 10:00:01.000000"


def test_bookmark_commit_conflict_changes_nothing(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline(**{"lookback.apartments": "0"})
    p.insert("apartments", [apt(1, "2025-01-01 10:00:00.000000")])
    p.extract_and_load("A", ("apartments",))
    p.insert("apartments", [apt(2, "2025-01-01 11:00:00.000000")])
    p.extract_and_load("B", ("apartments",))  # started from the same (empty) bookmark
    steps.commit_bookmarks(p.ctx, "B", ["apartments"])
    with pytest.raises(BookmarkConflict):
        steps.commit_bookmarks(p.ctx, "A", ["apartments"])
    assert p.bookmark("apartments") == "2025-01-01 11:00:00.000000"


AWKWARD_TEXT = [
    "🏠 Zürich \u2013 “quoted” ½",
    'comma, "double" quote',
    "line1\nline2",
    "crlf\r\nend",
    "tab\there",
    "back\\slash \\N",
    "",
    "  padded  ",
    "'); DROP TABLE raw.apartments; --",
    "\\N",
]


def test_values_round_trip_exactly_to_raw(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline()
    rows = [
        (i + 1, text, None if i % 2 else "src", price, "EUR", created, active, stamp)
        for i, (text, price, created, active, stamp) in enumerate(
            zip(
                [*AWKWARD_TEXT, None],
                [
                    "12345678.90",
                    "-0.01",
                    "0.00",
                    "1.10",
                    "9999999999.99",
                    None,
                    "5.00",
                    "7.07",
                    "100.00",
                    "3.30",
                    "1.00",
                ],
                [
                    "2024-02-29 23:59:59",
                    None,
                    "2024-01-01 00:00:00",
                    "2023-12-31 23:59:59",
                    "2024-06-30 12:00:00",
                    "2024-07-01 00:00:01",
                    "2024-01-01 00:00:00",
                    "2024-01-01 00:00:00",
                    "2024-01-01 00:00:00",
                    "2024-01-01 00:00:00",
                    "2024-01-01 00:00:00",
                ],
                [1, 0, None, 1, 1, 1, 1, 1, 1, 1, 1],
                [
                    "2025-01-01 00:00:00.000001",
                    "2025-01-01 00:00:00.999999",
                    "2025-01-01 00:00:01.000000",
                    "2025-01-01 00:00:02.123456",
                    "2025-01-01 00:00:03.000000",
                    "2025-01-01 00:00:04.500000",
                    "2025-01-01 00:00:05.000000",
                    "2025-01-01 00:00:06.000000",
                    "2025-01-01 00:00:07.000000",
                    "2025-01-01 00:00:08.000000",
                    "2025-01-01 00:00:09.000000",
                ],
                strict=True,
            )
        )
    ]
    p.insert("apartments", rows)
    attrs = [
        (
            1,
            "housing/rent/apartment",
            'Body\nwith, "quotes"',
            "",
            "1.5",
            "-1.0",
            None,
            "Thumbnail",
            None,
            "$1,200",
            "Monthly",
            -5,
            None,
            "  new   york ",
            "NY",
            "40.7128000",
            "-74.0060000",
            "2025-01-01 00:00:00.000000",
        )
    ]
    p.insert("apartment_attributes", attrs)
    bookings = [
        (
            None,
            1,
            2,
            "2024-12-31 23:59:59",
            "2025-01-01",
            "2024-12-30",
            "-5.50",
            "usd ",
            "CANCELLED ",
            "2025-01-01 00:00:00.000000",
        )
    ]
    p.insert("bookings", bookings)
    p.run("R1", ("apartments", "apartment_attributes", "bookings"))

    got = p.raw(f"SELECT {', '.join(APT_COLS)} FROM raw.apartments ORDER BY id")
    assert got == [
        (
            1,
            "🏠 Zürich \u2013 “quoted” ½",
            "src",
            Decimal("12345678.90"),
            "EUR",
            datetime(2024, 2, 29, 23, 59, 59),
            1,
            datetime(2025, 1, 1, 0, 0, 0, 1),
        ),
        (
            2,
            'comma, "double" quote',
            None,
            Decimal("-0.01"),
            "EUR",
            None,
            0,
            datetime(2025, 1, 1, 0, 0, 0, 999999),
        ),
        (
            3,
            "line1\nline2",
            "src",
            Decimal("0.00"),
            "EUR",
            datetime(2024, 1, 1),
            None,
            datetime(2025, 1, 1, 0, 0, 1),
        ),
        (
            4,
            "crlf\r\nend",
            None,
            Decimal("1.10"),
            "EUR",
            datetime(2023, 12, 31, 23, 59, 59),
            1,
            datetime(2025, 1, 1, 0, 0, 2, 123456),
        ),
        (
            5,
            "tab\there",
            "src",
            Decimal("9999999999.99"),
            "EUR",
            datetime(2024, 6, 30, 12),
            1,
            datetime(2025, 1, 1, 0, 0, 3),
        ),
        (
            6,
            "back\\slash \\N",
            None,
            None,
            "EUR",
            datetime(2024, 7, 1, 0, 0, 1),
            1,
            datetime(2025, 1, 1, 0, 0, 4, 500000),
        ),
        (
            7,
            "",
            "src",
            Decimal("5.00"),
            "EUR",
            datetime(2024, 1, 1),
            1,
            datetime(2025, 1, 1, 0, 0, 5),
        ),
        (
            8,
            "  padded  ",
            None,
            Decimal("7.07"),
            "EUR",
            datetime(2024, 1, 1),
            1,
            datetime(2025, 1, 1, 0, 0, 6),
        ),
        (
            9,
            "'); DROP TABLE raw.apartments; --",
            "src",
            Decimal("100.00"),
            "EUR",
            datetime(2024, 1, 1),
            1,
            datetime(2025, 1, 1, 0, 0, 7),
        ),
        (
            10,
            "\\N",
            None,
            Decimal("3.30"),
            "EUR",
            datetime(2024, 1, 1),
            1,
            datetime(2025, 1, 1, 0, 0, 8),
        ),
        (
            11,
            None,
            "src",
            Decimal("1.00"),
            "EUR",
            datetime(2024, 1, 1),
            1,
            datetime(2025, 1, 1, 0, 0, 9),
        ),
    ]
    assert p.raw(
        "SELECT id, body, amenities, bathrooms, bedrooms, fee, has_photo, "
        "pets_allowed, square_feet, address, cityname, latitude, longitude "
        "FROM raw.apartment_attributes"
    ) == [
        (
            1,
            'Body\nwith, "quotes"',
            "",
            Decimal("1.5"),
            Decimal("-1.0"),
            None,
            "Thumbnail",
            None,
            -5,
            None,
            "  new   york ",
            Decimal("40.7128000"),
            Decimal("-74.0060000"),
        )
    ]
    assert p.raw(
        "SELECT booking_id, booking_date, checkin_date, checkout_date, total_price, "
        "currency, booking_status FROM raw.bookings"
    ) == [
        (
            None,
            datetime(2024, 12, 31, 23, 59, 59),
            date(2025, 1, 1),
            date(2024, 12, 30),
            Decimal("-5.50"),
            "usd ",
            "CANCELLED ",
        )
    ]


def test_part_files_are_bounded_checksummed_and_never_shared(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(
        **{
            "extract.part_file_rows": "1000",
            "extract.batch_size": "300",
            "lookback.apartments": "0",
        }
    )
    p.insert(
        "apartments", [apt(i, f"2025-01-01 10:00:{i % 60:02d}.{i:06d}") for i in range(1, 2501)]
    )
    p.run("R1", ("apartments",))
    first = read_manifest(p.ctx.lake, "apartments", "R1")
    assert [f.rows for f in first.files] == [1000, 1000, 500]
    assert [f.key for f in first.files] == [
        f"raw/apartments/run_id=R1/part-0000{i}.csv.gz" for i in range(3)
    ]
    for f in first.files:
        data = (Path(p.ctx.lake.uri(f.key))).read_bytes()
        assert hashlib.sha256(data).hexdigest() == f.sha256
        assert len(data) == f.bytes
        assert gzip.decompress(data).decode().count("\n") == f.rows + 1  # + header
    before = {f.key: f.sha256 for f in first.files}

    p.insert("apartments", [apt(9999, "2025-02-01 00:00:00.000000")])
    p.run("R2", ("apartments",))
    assert p.ctx.lake.list("raw/apartments/run_id=R2/") == [
        "raw/apartments/run_id=R2/_key_pages.csv.gz",  # the key pages' fingerprints
        "raw/apartments/run_id=R2/_keys.csv.gz",  # the key set: every run reconciles by default
        "raw/apartments/run_id=R2/_manifest.json",
        "raw/apartments/run_id=R2/part-00000.csv.gz",
    ]
    assert {f.key: f.sha256 for f in read_manifest(p.ctx.lake, "apartments", "R1").files} == before
    assert p.raw("SELECT COUNT(*), COUNT(DISTINCT id) FROM raw.apartments") == [(2501, 2501)]


def test_a_retried_extract_replaces_its_own_files(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline(**{"extract.part_file_rows": "1000"})
    p.insert("apartments", [apt(i, "2025-01-01 10:00:00.000000") for i in range(1, 1501)])
    steps.extract(p.ctx, "apartments", "R1")
    p.execute("DELETE FROM apartments WHERE id > ?", "DELETE FROM apartments WHERE id > %s", (10,))
    steps.extract(p.ctx, "apartments", "R1")  # the retry sees 10 rows: one file, not two
    assert p.ctx.lake.list("raw/apartments/run_id=R1/") == [
        "raw/apartments/run_id=R1/_key_pages.csv.gz",  # the key pages' fingerprints
        "raw/apartments/run_id=R1/_keys.csv.gz",  # the key set: every run reconciles by default
        "raw/apartments/run_id=R1/_manifest.json",
        "raw/apartments/run_id=R1/part-00000.csv.gz",
    ]
    steps.load_raw(p.ctx, "apartments", "R1")
    assert p.raw("SELECT COUNT(*) FROM raw.apartments") == [(10,)]


def test_backfill_reads_the_inclusive_window_and_moves_no_bookmark(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline()
    p.insert(
        "apartments",
        [
            apt(1, "2025-01-01 00:00:00"),
            apt(2, "2025-01-15 12:00:00.5"),
            apt(3, "2025-01-31 23:59:59.999999"),
            apt(4, "2025-02-01 00:00:00"),
        ],
    )
    view_cols = ("id", "user_id", "apartment_id", "viewed_at", "is_wishlisted", "call_to_action")
    p.insert(
        "user_viewing",
        [
            (1, 1, 1, "2024-12-31 23:59:59", "y", None),
            (2, 1, 1, "2025-01-01 00:00:00", "y", None),
            (3, 1, 1, "2025-01-31 23:59:59", "y", None),
        ],
        view_cols,
    )
    p.run("R1", ("apartments", "user_viewing"))
    marks = (p.bookmark("apartments"), p.bookmark("user_viewing"))
    for name in ("apartments", "user_viewing"):
        steps.extract(p.ctx, name, "B1", mode="backfill", since="2025-01-01", until="2025-01-31")
        steps.load_raw(p.ctx, name, "B1")
    steps.commit_bookmarks(p.ctx, "B1", ["apartments", "user_viewing"])
    assert p.raw("SELECT id FROM raw.apartments WHERE _run_id = 'B1' ORDER BY id") == [
        (1,),
        (2,),
        (3,),
    ]
    assert p.raw("SELECT id FROM raw.user_viewing WHERE _run_id = 'B1' ORDER BY id") == [(2,), (3,)]
    assert (p.bookmark("apartments"), p.bookmark("user_viewing")) == marks
    with pytest.raises(ConfigError, match="before"):
        steps.extract(
            p.ctx, "apartments", "B2", mode="backfill", since="2025-02-01", until="2025-01-01"
        )


def test_an_empty_table_moves_nothing(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline()
    p.run("R1", ("bookings",))
    manifest = read_manifest(p.ctx.lake, "bookings", "R1")
    assert (manifest.mode, manifest.high, manifest.rows, manifest.files) == ("full", None, 0, [])
    assert p.bookmark("bookings") is None
    assert p.raw("SELECT COUNT(*) FROM raw.bookings") == [(0,)]


def test_names_outside_the_table_specs_are_refused(tmp_path: Path) -> None:
    p = Pipeline(tmp_path / "home", f"sqlite:///{tmp_path / 's.db'}", {})
    with pytest.raises(ConfigError, match="unknown table"):
        steps.extract(p.ctx, "apartments; DROP TABLE apartments", "R1")
    with pytest.raises(ConfigError, match="unknown table"):
        steps.load_raw(p.ctx, "users", "R1")
    with pytest.raises(ConfigError, match="tables"):
        config.load(overrides={"tables": "[apartments, users]"}, env={})
    with pytest.raises(ConfigError, match="invalid lake key"):
        p.ctx.lake.put_bytes("../outside", b"x")


def test_extract_streams_in_bounded_memory(tmp_path: Path) -> None:
    p = Pipeline(
        tmp_path / "home",
        f"sqlite:///{tmp_path / 's.db'}",
        {"extract.batch_size": "500", "extract.part_file_rows": "20000"},
    )
    body = "x" * 400
    p.insert(
        "apartments",
        [
            (i, body, "s", "1.00", "USD", "2024-01-01 00:00:00", 1, f"2025-01-01 00:00:00.{i:06d}")
            for i in range(60_000)
        ],
    )
    tracemalloc.start()
    manifest = steps.extract(p.ctx, "apartments", "R1")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert manifest.rows == 60_000 and len(manifest.files) == 3
    # The table is over 25 MB as Python rows; a streaming extract holds about one batch.
    assert peak < 8 * 1024 * 1024, f"peak traced memory {peak / 1e6:.1f} MB"
