"""The seven KPI tables (docs/contract.md §6) on small hand-made curated layers, run on DuckDB
through the transpiled Redshift SQL and the real refresh step.

Every expectation below is written by hand from the contract's definitions (the arithmetic is left
visible, e.g. ``100.0 * 3 / 62``); whole tables are compared, every row and column, in the order
of ``ORDER BY ALL``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rentalctl.adapters.warehouse_duckdb import DuckdbWarehouse
from rentalctl.curated import CURATED
from rentalctl.pipeline.presentation import refresh_presentation

D = date
T = datetime
W1 = D(2024, 12, 30)  # a Monday: its week runs into 2025
W2 = D(2025, 1, 6)
JAN_1 = T(2024, 1, 1)
JUNE_1, JUNE_2 = D(2024, 6, 1), D(2024, 6, 2)


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[DuckdbWarehouse]:
    warehouse = DuckdbWarehouse(tmp_path / "warehouse.duckdb")
    warehouse.conn.execute("CREATE SCHEMA curated")
    for spec in CURATED.values():
        columns = ", ".join(f"{name} {sql_type}" for name, sql_type in spec.columns)
        warehouse.conn.execute(f"CREATE TABLE curated.{spec.name} ({columns})")
    yield warehouse
    warehouse.close()


def insert(wh: DuckdbWarehouse, table: str, rows: Sequence[dict[str, Any]]) -> None:
    names = CURATED[table].column_names
    for row in rows:
        unknown = set(row) - set(names)
        assert not unknown, unknown
        marks = ", ".join("?" for _ in names)
        wh.conn.execute(
            f"INSERT INTO curated.{table} ({', '.join(names)}) VALUES ({marks})",
            [row.get(name) for name in names],
        )


def apartment(
    id: int,
    created: datetime = JAN_1,
    active: bool = True,
    usd: str = "100.00",
    title: str | None = None,
) -> dict[str, Any]:
    return dict(
        id=id,
        title=title if title is not None else f"Flat {id}",
        source="test",
        price=Decimal(usd),
        currency="USD",
        listing_created_on=created,
        is_active=active,
        last_modified_timestamp=T(2024, 1, 1),
        price_usd=Decimal(usd),
    )


def attributes(id: int, city: str | None) -> dict[str, Any]:
    return dict(id=id, cityname=city, last_modified_timestamp=T(2024, 1, 1))


_next_booking_id = iter(range(1, 1_000_000))


def booking(
    user: int,
    apt: int,
    booked: datetime | None = JAN_1,
    checkin: date = JUNE_1,
    checkout: date = JUNE_2,
    status: str = "confirmed",
    usd: str = "100.00",
) -> dict[str, Any]:
    return dict(
        booking_id=next(_next_booking_id),
        user_id=user,
        apartment_id=apt,
        booking_date=booked,
        checkin_date=checkin,
        checkout_date=checkout,
        total_price=Decimal(usd),
        currency="USD",
        booking_status=status,
        last_modified_timestamp=T(2024, 1, 1),
        total_price_usd=Decimal(usd),
        nights=(checkout - checkin).days,  # curated's derived column (docs/contract.md §5)
    )


def table(wh: DuckdbWarehouse, name: str) -> list[tuple[Any, ...]]:
    return wh.query(f"SELECT * FROM presentation.{name} ORDER BY ALL")


def assert_table(actual: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    """Whole-table equality: same rows in the same order, same Python types; DOUBLE columns
    (a float expected) equal to 12 significant digits."""
    shown = "\nactual:\n  " + "\n  ".join(map(repr, actual))
    shown += "\nexpected:\n  " + "\n  ".join(map(repr, expected))
    assert len(actual) == len(expected), shown
    for got, want in zip(actual, expected, strict=True):
        assert len(got) == len(want), shown
        for g, w in zip(got, want, strict=True):
            if isinstance(w, float):
                assert isinstance(g, float) and g == pytest.approx(w, rel=1e-12), shown
            else:
                assert type(g) is type(w) and g == w, shown


def test_average_listing_price(wh: DuckdbWarehouse) -> None:
    insert(
        wh,
        "apartments",
        [
            apartment(1, T(2024, 12, 30, 0, 0), usd="100.00"),  # Monday 00:00: week W1
            apartment(2, T(2025, 1, 5, 23, 59, 59), usd="150.50"),  # Sunday: still W1
            apartment(3, T(2025, 1, 1, 12), active=False, usd="999.00"),  # inactive
            apartment(4, T(2025, 1, 6), usd="80.00"),  # W2
            apartment(5, T(2025, 1, 8, 9, 30), usd="81.25"),
            apartment(6, T(2025, 1, 12, 23), usd="81.10"),
            apartment(7, T(2025, 2, 3), active=False, usd="50.00"),  # only inactive: no week
        ],
    )
    counts = refresh_presentation(wh)
    assert_table(
        table(wh, "average_listing_price"),
        [
            (W1, 2, (100.00 + 150.50) / 2),
            (W2, 3, (80.00 + 81.25 + 81.10) / 3),
        ],
    )
    assert counts["average_listing_price"] == 2


def test_occupancy_rate(wh: DuckdbWarehouse) -> None:
    insert(
        wh,
        "apartments",
        [
            apartment(1, T(2024, 1, 1)),
            apartment(2, T(2024, 1, 31, 23, 59)),  # last day of January: available in January
            apartment(3, T(2024, 2, 1)),  # first day of February: not in January
            apartment(4, T(2023, 12, 1), active=False),  # never available
        ],
    )
    insert(
        wh,
        "bookings",
        [
            # Jan 30, Jan 31 | Feb 1; the checkout night (Feb 2) is not booked
            booking(1, 1, checkin=D(2024, 1, 30), checkout=D(2024, 2, 2)),
            booking(2, 2, checkin=D(2024, 1, 31), checkout=D(2024, 2, 1)),  # Jan 31
            # apartment 3 is not available in January: only Feb 1..4 count
            booking(3, 3, checkin=D(2024, 1, 20), checkout=D(2024, 2, 5)),
            # Feb 28, 29 (leap year) | all 31 nights of March | Apr 1
            booking(4, 2, checkin=D(2024, 2, 28), checkout=D(2024, 4, 2)),
            # not counted: inactive listing, orphans, not confirmed, listing not yet created
            booking(5, 4, checkin=D(2024, 2, 10), checkout=D(2024, 2, 12)),
            booking(5, 4, checkin=D(2024, 5, 10), checkout=D(2024, 5, 12)),
            booking(6, 99, checkin=D(2024, 2, 10), checkout=D(2024, 2, 15)),
            booking(6, 99, checkin=D(2024, 4, 5), checkout=D(2024, 4, 7)),
            booking(7, 1, checkin=D(2024, 2, 20), checkout=D(2024, 2, 25), status="canceled"),
            booking(7, 1, checkin=D(2024, 3, 1), checkout=D(2024, 3, 3), status="pending"),
            booking(8, 3, checkin=D(2023, 12, 25), checkout=D(2023, 12, 28)),
        ],
    )
    refresh_presentation(wh)
    # available listings: January 1 and 2; from February 1, 2 and 3.
    assert_table(
        table(wh, "occupancy_rate"),
        [
            (D(2024, 1, 1), 2, 2 * 31, 2 + 1, 100.0 * 3 / 62),
            (D(2024, 2, 1), 3, 3 * 29, 1 + 4 + 2, 100.0 * 7 / 87),
            (D(2024, 3, 1), 3, 3 * 31, 31, 100.0 * 31 / 93),
            (D(2024, 4, 1), 3, 3 * 30, 1, 100.0 * 1 / 90),
        ],
    )


def test_popular_locations(wh: DuckdbWarehouse) -> None:
    cities = {100 + i: f"City{i:02d}" for i in range(1, 13)}  # apartments 101..112
    insert(wh, "apartments", [apartment(a) for a in [*cities, 113, 114]])
    insert(
        wh,
        "apartment_attributes",
        [attributes(a, c) for a, c in cities.items()]
        + [attributes(113, None), attributes(114, "City02")],
    )
    week1 = [
        T(2024, 12, 30, 0, 0),
        T(2024, 12, 31, 8),
        T(2025, 1, 1, 12),
        T(2025, 1, 2, 18),
        T(2025, 1, 5, 23, 59, 59),
    ]
    rows = [booking(1, 101, booked=d) for d in week1]  # City01: 5
    rows += [booking(2, 102, booked=d) for d in week1[:2]]  # City02: 2 here
    rows += [booking(2, 114, booked=d) for d in week1[2:4]]  # ... and 2 at another listing
    rows += [booking(3, 103, booked=d) for d in week1[1:]]  # City03: 4
    for apt in range(104, 110):  # City04..City09: 3 each
        rows += [booking(4, apt, booked=d) for d in week1[:3]]
    rows += [booking(5, apt, booked=d) for apt in (110, 111) for d in week1[3:]]  # 2 each
    rows += [booking(6, 112, booked=week1[0])]  # City12: 1, ranked 12th
    # not counted: no city, unknown apartment, not confirmed
    rows += [booking(7, 113, booked=d) for d in week1 * 2]
    rows += [booking(7, 999, booked=d) for d in week1 * 2]
    rows += [booking(8, 112, booked=d, status="canceled") for d in week1]
    rows += [booking(8, 112, booked=d, status="pending") for d in week1]
    # week 2: a tie at the top; City03 has only a canceled booking
    rows += [booking(9, 101, booked=T(2025, 1, 6)), booking(9, 114, booked=T(2025, 1, 12, 23))]
    rows += [booking(9, 103, booked=T(2025, 1, 7), status="canceled")]
    insert(wh, "bookings", rows)
    refresh_presentation(wh)
    assert_table(
        table(wh, "popular_locations"),
        [
            (W1, "City01", 5, 1),
            (W1, "City02", 4, 2),
            (W1, "City03", 4, 2),
            (W1, "City04", 3, 4),
            (W1, "City05", 3, 4),
            (W1, "City06", 3, 4),
            (W1, "City07", 3, 4),
            (W1, "City08", 3, 4),
            (W1, "City09", 3, 4),
            (W1, "City10", 2, 10),  # tied at 10: both kept
            (W1, "City11", 2, 10),
            (W2, "City01", 1, 1),
            (W2, "City02", 1, 1),
        ],
    )


def test_top_performing_listings(wh: DuckdbWarehouse) -> None:
    listed = [201, 202, 203, 204, 205, 206, 207, 208, 209, 213, 214]
    insert(wh, "apartments", [apartment(a) for a in listed])
    insert(
        wh,
        "apartment_attributes",
        [attributes(a, f"Town{a}") for a in listed if a not in (213, 214)]
        + [attributes(213, None), attributes(215, "Springfield")],  # 214: no attributes
    )
    week1 = [T(2024, 12, 30), T(2024, 12, 31, 9), T(2025, 1, 2, 15), T(2025, 1, 5, 23, 59, 59)]
    rows = [
        booking(1, 201, booked=week1[0], usd="300.00"),
        booking(1, 201, booked=week1[2], usd="200.50"),
        booking(2, 998, booked=week1[1], usd="400.00"),  # orphan: no title, no city
        booking(3, 213, booked=week1[1], usd="350.25"),  # city NULL
        booking(4, 202, booked=week1[0], usd="100.00"),
        booking(4, 202, booked=week1[3], usd="200.00"),
        booking(4, 203, booked=week1[2], usd="300.00"),  # ties with 202
        booking(5, 204, booked=week1[1], usd="250.00"),
        booking(5, 205, booked=week1[1], usd="200.00"),
        booking(6, 214, booked=week1[2], usd="150.00"),  # no attributes: city NULL
        booking(6, 215, booked=week1[2], usd="120.00"),  # attributes only: title NULL
        booking(7, 206, booked=week1[3], usd="100.00"),
        booking(7, 207, booked=week1[0], usd="100.00"),  # tied at 10 with 206
        booking(7, 208, booked=week1[0], usd="50.00"),  # ranked 12th: cut
        booking(8, 209, booked=week1[0], usd="1000.00", status="canceled"),
        booking(8, 209, booked=week1[1], usd="900.00", status="pending"),
        booking(9, 201, booked=T(2025, 1, 6), usd="10.00"),  # week 2
        booking(9, 201, booked=T(2025, 1, 7), usd="0.05"),
    ]
    insert(wh, "bookings", rows)
    refresh_presentation(wh)
    assert_table(
        table(wh, "top_performing_listings"),
        [
            (W1, 201, "Flat 201", "Town201", Decimal("500.50"), 1),
            (W1, 202, "Flat 202", "Town202", Decimal("300.00"), 4),
            (W1, 203, "Flat 203", "Town203", Decimal("300.00"), 4),
            (W1, 204, "Flat 204", "Town204", Decimal("250.00"), 6),
            (W1, 205, "Flat 205", "Town205", Decimal("200.00"), 7),
            (W1, 206, "Flat 206", "Town206", Decimal("100.00"), 10),
            (W1, 207, "Flat 207", "Town207", Decimal("100.00"), 10),
            (W1, 213, "Flat 213", None, Decimal("350.25"), 3),
            (W1, 214, "Flat 214", None, Decimal("150.00"), 8),
            (W1, 215, None, "Springfield", Decimal("120.00"), 9),
            (W1, 998, None, None, Decimal("400.00"), 2),
            (W2, 201, "Flat 201", "Town201", Decimal("10.05"), 1),
        ],
    )


def test_bookings_per_user(wh: DuckdbWarehouse) -> None:
    insert(wh, "apartments", [apartment(1)])
    insert(
        wh,
        "bookings",
        [
            booking(1, 1, booked=T(2024, 12, 31, 10)),
            booking(1, 1, booked=T(2025, 1, 2, 11), status="canceled"),
            booking(1, 1, booked=T(2025, 1, 5, 23, 59, 59), status="pending"),
            booking(1, 999, booked=T(2025, 1, 6)),  # orphan, week 2
            booking(2, 1, booked=T(2024, 12, 30), status="canceled"),
            booking(3, 999, booked=T(2025, 1, 7)),
            booking(3, 1, booked=T(2025, 1, 12, 8)),
        ],
    )
    refresh_presentation(wh)
    assert_table(
        table(wh, "bookings_per_user"),
        [
            (W1, 1, 3, 1),
            (W1, 2, 1, 0),
            (W2, 1, 1, 1),
            (W2, 3, 2, 2),
        ],
    )


def test_average_booking_duration(wh: DuckdbWarehouse) -> None:
    insert(wh, "apartments", [apartment(1)])
    early = T(2024, 11, 1)  # the booking date plays no part: the week is the check-in's
    insert(
        wh,
        "bookings",
        [
            booking(1, 1, early, checkin=D(2024, 12, 30), checkout=D(2024, 12, 31)),  # 1
            booking(2, 1, early, checkin=D(2025, 1, 1), checkout=D(2025, 1, 3)),  # 2
            booking(3, 999, early, checkin=D(2025, 1, 5), checkout=D(2025, 1, 9)),  # 4, orphan
            booking(4, 1, early, D(2025, 1, 2), D(2025, 1, 12), status="canceled"),
            booking(5, 1, early, checkin=D(2025, 1, 6), checkout=D(2025, 1, 9)),  # 3
            booking(6, 1, early, checkin=D(2025, 1, 12), checkout=D(2025, 1, 16)),  # 4
            booking(7, 1, early, D(2025, 1, 13), D(2025, 1, 20), status="pending"),  # no row
        ],
    )
    refresh_presentation(wh)
    assert_table(
        table(wh, "average_booking_duration"),
        [
            (W1, 3, (1 + 2 + 4) / 3),
            (W2, 2, (3 + 4) / 2),
        ],
    )


def test_repeat_customer_rate(wh: DuckdbWarehouse) -> None:
    insert(wh, "apartments", [apartment(1)])
    insert(
        wh,
        "bookings",
        [
            # user 1: exactly 30 days apart: a repeat in January
            booking(1, 1, T(2024, 1, 1, 10)),
            booking(1, 1, T(2024, 1, 31, 10)),
            # user 2: 30 days and 1 second apart: not a repeat
            booking(2, 1, T(2024, 1, 1, 10)),
            booking(2, 1, T(2024, 1, 31, 10, 0, 1)),
            # user 3: one booking is not its own repeat
            booking(3, 1, T(2024, 1, 15)),
            # user 4: not a repeat in January (the window looks back), a repeat in February
            # thanks to the January booking
            booking(4, 1, T(2024, 1, 20)),
            booking(4, 999, T(2024, 2, 10)),
            # user 5: the earlier booking is canceled: not a repeat
            booking(5, 1, T(2024, 2, 10), status="canceled"),
            booking(5, 1, T(2024, 2, 15)),
            # user 6: two confirmed bookings made at the same instant: a repeat
            booking(6, 1, T(2024, 2, 20, 12)),
            booking(6, 1, T(2024, 2, 20, 12)),
            # user 7: no confirmed booking: not a customer
            booking(7, 1, T(2024, 2, 5), status="canceled"),
            booking(7, 1, T(2024, 2, 6), status="pending"),
            # user 8: pending then confirmed: a customer, not a repeat
            booking(8, 1, T(2024, 3, 1), status="pending"),
            booking(8, 1, T(2024, 3, 5)),
            # user 9: Jan 31 23:00 -> Mar 1 23:00 is exactly 30 days (2024 is a leap year)
            booking(9, 1, T(2024, 1, 31, 23)),
            booking(9, 1, T(2024, 3, 1, 23)),
        ],
    )
    refresh_presentation(wh)
    assert_table(
        table(wh, "repeat_customer_rate"),
        [
            (D(2024, 1, 1), 5, 1, 100.0 * 1 / 5),  # users 1, 2, 3, 4, 9; repeat: 1
            (D(2024, 2, 1), 3, 2, 100.0 * 2 / 3),  # users 4, 5, 6; repeat: 4, 6
            (D(2024, 3, 1), 2, 1, 100.0 * 1 / 2),  # users 8, 9; repeat: 9
        ],
    )


def test_empty_curated_layer_gives_empty_tables(wh: DuckdbWarehouse) -> None:
    counts = refresh_presentation(wh)
    assert counts == {
        "average_listing_price": 0,
        "occupancy_rate": 0,
        "popular_locations": 0,
        "top_performing_listings": 0,
        "bookings_per_user": 0,
        "average_booking_duration": 0,
        "repeat_customer_rate": 0,
    }
