"""The report's KPI section: each KPI's chart, its numbers beside it and its definition. The
ranked KPIs and the bookings distribution are drawn for each week one can choose."""

from __future__ import annotations

from datetime import date
from html import escape
from typing import Any

from rentalctl.report import charts
from rentalctl.report.data import ReportData, week_label
from rentalctl.report.html import chart_and_numbers, empty, table
from rentalctl.report.kpis import KPIS, Kpi


def _article(k: Kpi, inner: str, title: str | None = None) -> str:
    return (
        f'<article id="kpi-{k.table}"><h3>{escape(title or k.title)}</h3>'
        f'<p class="definition">{escape(k.definition)}</p>{inner}</article>'
    )


def _numbers(k: Kpi, rows: list[dict[str, Any]], columns: tuple[str, ...] | None = None) -> str:
    columns = columns or k.columns
    return table(
        columns, [[r[c] for c in columns] for r in rows[::-1]], f'class="kpi" data-kpi="{k.table}"'
    )


def _series(data: ReportData, name: str) -> str:
    k, rows = KPIS[name], data.series.get(name, [])
    if not rows:
        return _article(k, empty("No rows yet."))
    x = [r[k.period] for r in rows]
    if name == "average_listing_price":
        svg = charts.bars_and_line(
            k.title,
            x,
            ("active listings", [r["active_listings"] for r in rows]),
            ("average price (USD)", [r["avg_price_usd"] for r in rows]),
            width_days=5,
        )
    else:
        column, unit = {
            "occupancy_rate": ("occupancy_rate_pct", "% of available nights"),
            "average_booking_duration": ("avg_nights", "nights"),
            "repeat_customer_rate": ("repeat_rate_pct", "% of customers"),
        }[name]
        svg = charts.time_series(k.title, x, {unit: [r[column] for r in rows]}, unit)
    return _article(k, chart_and_numbers(svg, _numbers(k, rows)))


def _weekly(data: ReportData, name: str) -> str:
    k = KPIS[name]
    by_week = data.weekly.get(name)
    if not by_week:
        return _article(k, empty("No rows yet."))
    views = []
    for week, rows in by_week.items():
        label = f"{k.title}, week of {week.isoformat()}"
        if not rows:
            inner = empty("No rows this week.")
        elif name == "popular_locations":
            svg = charts.ranked_bars(
                label,
                [f"{r['rank']}. {r['cityname']}" for r in rows],
                [r["confirmed_bookings"] for r in rows],
                "confirmed bookings",
            )
            inner = chart_and_numbers(svg, _week_table(k, rows, week))
        elif name == "top_performing_listings":
            svg = charts.ranked_bars(
                label,
                [
                    f"{r['rank']}. {r['title'] or r['apartment_id']} ({r['cityname'] or '?'})"
                    for r in rows
                ],
                [r["revenue_usd"] for r in rows],
                "revenue (USD)",
            )
            inner = chart_and_numbers(svg, _week_table(k, rows, week))
        else:
            svg = charts.histogram(
                label,
                [r["total_bookings"] for r in rows],
                [r["users"] for r in rows],
                "bookings made in the week",
                "users (log scale)",
            )
            columns = ("week_start", "total_bookings", "users", "confirmed_bookings")
            inner = chart_and_numbers(svg, _week_table(k, rows, week, columns))
        hidden = "" if week == data.latest_week else " hidden"
        views.append(f'<div class="week-view" data-week="{week.isoformat()}"{hidden}>{inner}</div>')
    title = "Bookings per user: users by bookings made" if name == "bookings_per_user" else None
    return _article(k, "".join(views), title)


def _week_table(
    k: Kpi, rows: list[dict[str, Any]], week: date, columns: tuple[str, ...] | None = None
) -> str:
    columns = columns or k.columns
    return table(
        columns,
        [[r[c] for c in columns] for r in rows],
        f'class="kpi" data-kpi="{k.table}" data-week="{week.isoformat()}"',
    )


def _week_picker(data: ReportData) -> str:
    options = "".join(
        f'<option value="{w.isoformat()}"{" selected" if w == data.latest_week else ""}>'
        f"{escape(week_label(w, data.latest_week))}</option>"
        for w in data.weeks
    )
    return (
        '<p class="weeks"><label>Week of the ranked charts and the bookings distribution: '
        f'<select id="week">{options}</select></label> (the latest complete week first)</p>'
    )


def kpi_section(data: ReportData) -> str:
    if not data.runs:
        return empty(
            "No runs yet: run the pipeline (`rentalctl run`), then write the report again."
        )
    if not data.series and not data.weekly:
        return empty("No KPIs yet: no run has reached the presentation step.")
    parts = [_series(data, "average_listing_price"), _series(data, "occupancy_rate")]
    if data.weeks:
        parts.append(_week_picker(data))
    parts += [_weekly(data, n) for n in ("popular_locations", "top_performing_listings")]
    parts.append(_weekly(data, "bookings_per_user"))
    parts += [_series(data, "average_booking_duration"), _series(data, "repeat_customer_rate")]
    return "".join(parts)
