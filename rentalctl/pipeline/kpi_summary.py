"""A few headline numbers from the presentation layer, for the end of a run: each KPI for the
last complete week or month before the newest booking (the latest periods hold only the first
bookings of future stays). Plain SELECTs that run on DuckDB and Redshift alike.

The presentation job takes the snapshot and stores it with its result in the lake, where
``run`` and ``status RUN_ID`` read it back (``from_json``). It runs in a Glue Python shell job:
Python 3.9.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from rentalctl.adapters.warehouse import Warehouse
from rentalctl.context import Context
from rentalctl.run_records import step_result


def periods(w: Warehouse) -> tuple[date, date] | None:
    """(week start, month start) of the last complete week and month before the newest
    booking."""
    (newest,) = w.query("SELECT MAX(booking_date) FROM curated.bookings")[0]
    if newest is None:
        return None
    day = newest.date() if isinstance(newest, datetime) else newest
    week = day - timedelta(days=day.weekday() + 7)
    month = (day.replace(day=1) - timedelta(days=1)).replace(day=1)
    return week, month


def _latest(
    w: Warehouse, table: str, period: str, columns: str, when: date
) -> dict[str, Any] | None:
    rows = w.query(
        f"SELECT {period}, {columns} FROM presentation.{table} "
        f"WHERE {period} = '{when.isoformat()}'"  # a date computed here, never input
    )
    if not rows:
        return None
    names = [period, *(c.strip() for c in columns.split(","))]
    return dict(zip(names, rows[0]))  # as many names as columns selected


def snapshot(w: Warehouse) -> dict[str, Any]:
    latest = periods(w)
    if latest is None:
        return {}
    week, month = latest
    top = w.query(
        "SELECT week_start, cityname, confirmed_bookings, rank FROM presentation.popular_locations "
        f"WHERE week_start = '{week.isoformat()}' AND rank <= 3 ORDER BY rank, cityname"
    )
    weekly, monthly = "week_start", "month_start"
    return {
        "average_listing_price": _latest(
            w, "average_listing_price", weekly, "active_listings, avg_price_usd", week
        ),
        "occupancy_rate": _latest(
            w,
            "occupancy_rate",
            monthly,
            "available_listings, booked_nights, occupancy_rate_pct",
            month,
        ),
        "repeat_customer_rate": _latest(
            w,
            "repeat_customer_rate",
            monthly,
            "customers, repeat_customers, repeat_rate_pct",
            month,
        ),
        "average_booking_duration": _latest(
            w, "average_booking_duration", weekly, "confirmed_bookings, avg_nights", week
        ),
        "popular_locations": [
            {"week_start": r[0], "cityname": r[1], "confirmed_bookings": r[2], "rank": r[3]}
            for r in top
        ],
    }


def to_json(snap: dict[str, Any]) -> dict[str, Any]:
    """The snapshot as plain JSON values (a job's result travels as JSON): dates in ISO form,
    decimals as numbers."""

    def plain(value: Any) -> Any:
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, Decimal):
            return float(value)
        raise TypeError(f"not JSON serialisable: {type(value).__name__}")

    loaded: dict[str, Any] = json.loads(json.dumps(snap, default=plain))
    return loaded


def from_json(doc: dict[str, Any]) -> dict[str, Any]:
    """A snapshot read back from JSON: its period columns are dates again."""

    def entry(value: dict[str, Any]) -> dict[str, Any]:
        return {
            k: date.fromisoformat(v) if k in ("week_start", "month_start") and v else v
            for k, v in value.items()
        }

    out: dict[str, Any] = {}
    for name, value in doc.items():
        if isinstance(value, list):
            out[name] = [entry(v) for v in value]
        else:
            out[name] = entry(value) if isinstance(value, dict) else value
    return out


def kpi_snapshot(ctx: Context, run_id: str) -> dict[str, Any]:
    """The headline KPIs the run's presentation step recorded ({} when it recorded none)."""
    return from_json(step_result(ctx, run_id, "presentation").get("kpis") or {})


def lines(snap: dict[str, Any]) -> list[str]:
    """The snapshot as short sentences for a terminal."""
    out = []
    if p := snap.get("average_listing_price"):
        out.append(
            f"Average listing price, week of {p['week_start']}: "
            f"${p['avg_price_usd']:,.2f} over {p['active_listings']:,} active listings"
        )
    if o := snap.get("occupancy_rate"):
        out.append(
            f"Occupancy, {o['month_start']:%B %Y}: {o['occupancy_rate_pct']:.2f}% "
            f"({o['booked_nights']:,} nights booked, {o['available_listings']:,} listings)"
        )
    if r := snap.get("repeat_customer_rate"):
        out.append(
            f"Repeat customers, {r['month_start']:%B %Y}: {r['repeat_rate_pct']:.1f}% "
            f"of {r['customers']:,}"
        )
    if d := snap.get("average_booking_duration"):
        out.append(
            f"Average stay, week of {d['week_start']}: {d['avg_nights']:.1f} nights "
            f"over {d['confirmed_bookings']:,} confirmed bookings"
        )
    if cities := snap.get("popular_locations"):
        names = ", ".join(f"{c['cityname']} ({c['confirmed_bookings']})" for c in cities[:5])
        names += ", …" if len(cities) > 5 else ""
        out.append(f"Top cities, week of {cities[0]['week_start']}: {names}")
    return out
