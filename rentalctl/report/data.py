"""What the report shows, gathered through the ports: the KPI tables from the warehouse, the
recent run records and the bookmarks from the state store, the state machine from its rendered
definition. Nothing here knows which warehouse or store it reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from rentalctl.context import Context
from rentalctl.orchestration.aws_run import refresh_status
from rentalctl.orchestration.statemachine import render
from rentalctl.pipeline.kpi_summary import periods
from rentalctl.report import kpis as catalogue
from rentalctl.report.sources import open_warehouse, state_store

if TYPE_CHECKING:
    from rentalctl.adapters.warehouse import Warehouse
    from rentalctl.config import Settings

RECENT_RUNS = 20
WEEKS_TO_CHOOSE = 12  # the ranked charts: the latest complete week and those before it
TIME_SERIES = ("average_listing_price", "occupancy_rate", "average_booking_duration",
               "repeat_customer_rate")  # fmt: skip
RANKED = ("popular_locations", "top_performing_listings")


@dataclass
class ReportData:
    generated_at: datetime
    warehouse: str
    definition: dict[str, Any]
    max_rejected_share: float
    runs: list[dict[str, Any]] = field(default_factory=list)  # newest first
    bookmarks: list[dict[str, Any]] = field(default_factory=list)
    #: time series: every row, oldest period first
    series: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: ranked tables and the bookings distribution: rows per week, for the weeks to choose from
    weekly: dict[str, dict[date, list[dict[str, Any]]]] = field(default_factory=dict)
    weeks: list[date] = field(default_factory=list)  # newest first
    latest_week: date | None = None  # the latest complete week, shown first


def gather(settings: Settings) -> ReportData:
    ctx = Context(settings)
    data = ReportData(
        generated_at=datetime.now(timezone.utc),
        warehouse=str(settings.warehouse),  # a URL never holds a password (config refuses it)
        definition=render(settings),
        max_rejected_share=settings.max_rejected_share,
    )
    store = state_store(ctx)
    if store is None:
        return data  # nothing has run here yet
    data.runs = store.list_runs(RECENT_RUNS)
    data.bookmarks = [
        {"table": b.table, "value": b.value, "updated_at": b.updated_at, "run_id": b.run_id}
        for b in store.bookmarks().values()
    ]
    if data.runs and data.runs[0].get("execution_arn"):  # an AWS run: states from its history
        data.runs[0] = refresh_status(ctx, data.runs[0])
    if not data.runs:
        return data
    with open_warehouse(settings) as warehouse:
        if warehouse is not None:
            _kpis(warehouse, data)
    return data


def _kpis(w: Warehouse, data: ReportData) -> None:
    present = catalogue.existing(w)
    for name in TIME_SERIES:
        if name in present:
            data.series[name] = catalogue.read(w, catalogue.KPIS[name])[::-1]
    if "popular_locations" not in present:
        return
    latest = periods(w)
    k = catalogue.KPIS["popular_locations"]
    weeks = [row[0] for row in w.query(f"SELECT DISTINCT {k.period} FROM presentation.{k.table}")]
    weeks = sorted((_day(d) for d in weeks), reverse=True)
    data.latest_week = latest[0] if latest else (weeks[0] if weeks else None)
    if data.latest_week is None:
        return
    newer = [d for d in weeks if d > data.latest_week]  # the week under way
    older = [d for d in weeks if d <= data.latest_week][:WEEKS_TO_CHOOSE]
    data.weeks = newer + older
    if not data.weeks:
        return
    since = min(data.weeks)
    for name in RANKED:
        if name in present:
            rows = catalogue.read(w, catalogue.KPIS[name], since)
            data.weekly[name] = _by_week(rows, data.weeks)
    if "bookings_per_user" in present:
        data.weekly["bookings_per_user"] = _by_week(_distribution(w, since), data.weeks)


def _distribution(w: Warehouse, since: date) -> list[dict[str, Any]]:
    """Users per number of bookings in a week (the chart of bookings_per_user): counted in the
    warehouse, as a week holds a row per user."""
    rows = w.query(
        "SELECT week_start, total_bookings, COUNT(*) AS users, SUM(confirmed_bookings) "
        f"FROM presentation.bookings_per_user WHERE week_start >= {w.placeholder} "
        "GROUP BY week_start, total_bookings ORDER BY week_start DESC, total_bookings",
        [since],
    )
    return [
        {"week_start": r[0], "total_bookings": r[1], "users": r[2], "confirmed_bookings": r[3]}
        for r in rows
    ]


def _by_week(rows: list[dict[str, Any]], weeks: list[date]) -> dict[date, list[dict[str, Any]]]:
    out: dict[date, list[dict[str, Any]]] = {week: [] for week in weeks}
    for row in rows:
        week = _day(row["week_start"])
        if week in out:
            out[week].append(row)
    return out


def _day(value: Any) -> date:
    return value.date() if isinstance(value, datetime) else value  # type: ignore[no-any-return]


def is_complete(week: date, latest: date | None) -> bool:
    return latest is not None and week <= latest


def week_label(week: date, latest: date | None) -> str:
    end = week + timedelta(days=6)
    label = f"{week.isoformat()} to {end.isoformat()}"
    return label if is_complete(week, latest) else f"{label} (under way)"
