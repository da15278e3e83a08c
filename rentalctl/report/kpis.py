"""The seven KPI tables of the presentation layer (docs/contract.md §6): their columns, their order,
and one sentence saying what each holds — what `rentalctl kpis` prints and the report charts.

Plain SELECTs over the warehouse port: table and column names come from this module, the one
value a user gives (``since``) is a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from rentalctl.adapters.warehouse import Warehouse
from rentalctl.errors import ConfigError, InvalidSetting, unknown_name

SCHEMA = "presentation"


@dataclass(frozen=True)
class Kpi:
    table: str
    title: str
    period: str  # week_start or month_start
    columns: tuple[str, ...]
    #: within a period, the columns that order the rows completely
    tiebreak: tuple[str, ...]
    definition: str

    @property
    def grain(self) -> str:
        return "week" if self.period == "week_start" else "month"


KPIS: dict[str, Kpi] = {
    k.table: k
    for k in (
        Kpi(
            "average_listing_price",
            "Average listing price",
            "week_start",
            ("week_start", "active_listings", "avg_price_usd"),
            (),
            "Active listings created in the week (by listing date), and their average price "
            "in USD.",
        ),
        Kpi(
            "occupancy_rate",
            "Occupancy rate",
            "month_start",
            (
                "month_start",
                "available_listings",
                "available_nights",
                "booked_nights",
                "occupancy_rate_pct",
            ),
            (),
            "Nights of the month booked by confirmed stays, as a percentage of the nights "
            "offered by the active listings created by the month's end.",
        ),
        Kpi(
            "popular_locations",
            "Popular locations",
            "week_start",
            ("week_start", "cityname", "confirmed_bookings", "rank"),
            ("rank", "cityname"),
            "Cities ranked by the confirmed bookings made in the week (top 10; ties share a rank).",
        ),
        Kpi(
            "top_performing_listings",
            "Top performing listings",
            "week_start",
            ("week_start", "apartment_id", "title", "cityname", "revenue_usd", "rank"),
            ("rank", "apartment_id"),
            "Listings ranked by the USD revenue of the confirmed bookings made in the week "
            "(top 10; ties share a rank).",
        ),
        Kpi(
            "bookings_per_user",
            "Bookings per user",
            "week_start",
            ("week_start", "user_id", "total_bookings", "confirmed_bookings"),
            ("user_id",),
            "Bookings each user made in the week, all of them and the confirmed ones.",
        ),
        Kpi(
            "average_booking_duration",
            "Average booking duration",
            "week_start",
            ("week_start", "confirmed_bookings", "avg_nights"),
            (),
            "Average nights of the confirmed bookings that check in during the week.",
        ),
        Kpi(
            "repeat_customer_rate",
            "Repeat customer rate",
            "month_start",
            ("month_start", "customers", "repeat_customers", "repeat_rate_pct"),
            (),
            "Percentage of the month's customers (users with a confirmed booking) who had "
            "another confirmed booking in the 30 days before one of that month's.",
        ),
    )
}


def kpi(name: str) -> Kpi:
    if name not in KPIS:
        raise ConfigError(unknown_name("KPI table", name, KPIS))
    return KPIS[name]


def parse_since(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidSetting("--since", value, "a date YYYY-MM-DD") from None


def existing(w: Warehouse) -> set[str]:
    """The KPI tables the warehouse has (none before the first run's presentation step)."""
    return w.tables_present(SCHEMA, list(KPIS))


def read(
    w: Warehouse, k: Kpi, since: date | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """The table's rows, newest period first (then by rank or key); ``since`` keeps the periods
    starting on or after it, ``limit`` the first rows."""
    where, params = "", []
    if since is not None:
        where = f" WHERE {k.period} >= {w.placeholder}"
        params.append(since)
    order = ", ".join([f"{k.period} DESC", *k.tiebreak])
    sql = f"SELECT {', '.join(k.columns)} FROM {SCHEMA}.{k.table}{where} ORDER BY {order}"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"  # an int from the command line's validated option
    return [dict(zip(k.columns, row, strict=True)) for row in w.query(sql, params)]
