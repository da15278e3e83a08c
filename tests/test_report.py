"""`rentalctl report` on a warehouse the pipeline filled: every number in the report's tables
equals the warehouse's KPI tables (read here with DuckDB directly), compared whole; an empty
home reports "no runs yet"; `status RUN_ID` shows the run's KPI snapshot."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support.cli import invoke
from tests.support.html_tables import tables

SERIES = {
    "average_listing_price": "week_start, active_listings, avg_price_usd",
    "occupancy_rate": "month_start, available_listings, available_nights, booked_nights, "
    "occupancy_rate_pct",
    "average_booking_duration": "week_start, confirmed_bookings, avg_nights",
    "repeat_customer_rate": "month_start, customers, repeat_customers, repeat_rate_pct",
}
WEEKLY = {
    "popular_locations": (
        "SELECT week_start, cityname, confirmed_bookings, rank FROM presentation.popular_locations "
        "WHERE week_start = ? ORDER BY rank, cityname"
    ),
    "top_performing_listings": (
        "SELECT week_start, apartment_id, title, cityname, revenue_usd, rank "
        "FROM presentation.top_performing_listings WHERE week_start = ? ORDER BY rank, apartment_id"
    ),
    "bookings_per_user": (
        "SELECT week_start, total_bookings, COUNT(*), SUM(confirmed_bookings) "
        "FROM presentation.bookings_per_user WHERE week_start = ? "
        "GROUP BY week_start, total_bookings ORDER BY total_bookings"
    ),
}


def shown(column: str, value: Any) -> str:
    """How the report writes a value: ids plain, counts with thousands separators, other
    numbers to two decimals, dates in ISO form."""
    if value is None:
        return ""
    if column.endswith("_id"):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float | Decimal):
        return f"{value:,.2f}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def query(home: Path, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def find(found: list[dict[str, Any]], **attrs: str) -> list[dict[str, Any]]:
    return [t for t in found if all(t["attrs"].get(k) == v for k, v in attrs.items())]


@pytest.fixture
def pipeline(pipeline_home: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("RENTALCTL_HOME", str(pipeline_home["home"]))
    return {"home": Path(str(pipeline_home["home"])), "run": pipeline_home["run"]}


@pytest.fixture
def report_html(pipeline: dict[str, Any], tmp_path: Path) -> str:
    out = tmp_path / "report.html"
    result = invoke("report", "--output-file", str(out))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"Report written: {out} (")
    return out.read_text(encoding="utf-8")


@pytest.mark.slow
def test_report_tables_equal_the_warehouse_kpi_tables(
    pipeline: dict[str, Any], report_html: str
) -> None:
    home, found = pipeline["home"], tables(report_html)
    for table, columns in SERIES.items():
        (shown_table,) = [
            t for t in find(found, **{"data-kpi": table}) if "data-week" not in t["attrs"]
        ]
        names = [c.strip() for c in columns.split(",")]
        assert shown_table["header"] == names
        rows = query(home, f"SELECT {columns} FROM presentation.{table} ORDER BY 1 DESC")
        assert rows
        assert shown_table["rows"] == [[shown(c, v) for c, v in zip(names, r)] for r in rows]

    # The week chosen first is the latest complete one before the newest booking.
    ((newest,),) = query(home, "SELECT MAX(booking_date) FROM curated.bookings")
    newest_day = newest.date() if isinstance(newest, datetime) else newest
    latest_week = newest_day - timedelta(days=newest_day.weekday() + 7)
    assert f'<option value="{latest_week.isoformat()}" selected>' in report_html
    weeks = {t["attrs"]["data-week"] for t in find(found, **{"data-kpi": "popular_locations"})}
    assert latest_week.isoformat() in weeks and len(weeks) >= 2
    for table, sql in WEEKLY.items():
        by_week = {t["attrs"]["data-week"]: t for t in find(found, **{"data-kpi": table})}
        assert set(by_week) <= weeks and latest_week.isoformat() in by_week
        for week, shown_table in by_week.items():
            rows = query(home, sql, [date.fromisoformat(week)])
            assert rows, (table, week)
            assert shown_table["rows"] == [
                [shown(c, v) for c, v in zip(shown_table["header"], r)] for r in rows
            ]


@pytest.mark.slow
def test_report_shows_the_latest_run_state_by_state(
    pipeline: dict[str, Any], report_html: str
) -> None:
    record = pipeline["run"]
    (states,) = find(tables(report_html), **{"class": "states"})
    assert [r[:2] for r in states["rows"]] == [[s["name"], s["status"]] for s in record["states"]]
    for name in ("Begin", "ExtractAndLoad", "Transform", "Publish", "Succeeded"):
        assert f'data-state="{name}" data-status="SUCCEEDED"' in report_html
    assert 'data-state="RecordFailure" data-status=""' in report_html
    (runs,) = find(tables(report_html), **{"class": "runs"})
    assert [r[:3] for r in runs["rows"]] == [[record["run_id"], "incremental", "SUCCEEDED"]]
    (rejected,) = find(tables(report_html), **{"class": "rejected"})
    expected = [
        [record["run_id"], t, reason, f"{n:,}"]
        for t, s in record["summary"].items()
        for reason, n in sorted(s["rejected_by_reason"].items())
    ]
    assert rejected["rows"] == expected
    (bookmarks,) = find(tables(report_html), **{"class": "bookmarks"})
    assert sorted(r[0] for r in bookmarks["rows"]) == sorted(record["tables"])
    assert all(r[3] == record["run_id"] for r in bookmarks["rows"])


@pytest.mark.slow
def test_status_of_a_run_shows_its_kpi_snapshot(pipeline: dict[str, Any]) -> None:
    home, run_id = pipeline["home"], pipeline["run"]["run_id"]
    ((newest,),) = query(home, "SELECT MAX(booking_date) FROM curated.bookings")
    week = newest.date() - timedelta(days=newest.date().weekday() + 7)
    ((listings, price),) = query(
        home,
        "SELECT active_listings, avg_price_usd FROM presentation.average_listing_price "
        "WHERE week_start = ?",
        [week],
    )
    doc = json.loads(invoke("-o", "json", "status", run_id).stdout)
    assert doc["kpis"]["average_listing_price"] == {
        "week_start": week.isoformat(),
        "active_listings": listings,
        "avg_price_usd": price,
    }
    assert doc["kpis"] == json.loads(json.dumps(pipeline["run"]["kpis"]))  # as `run` printed it
    text = invoke("status", run_id)
    assert text.exit_code == 0, text.stderr
    line = f"Average listing price, week of {week}: ${price:,.2f} over {listings:,} active listings"
    assert line in text.stdout


def test_an_empty_home_reports_no_runs_yet(home: Path) -> None:
    result = invoke("-o", "json", "report")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["path"] == str(home / "report.html")
    assert (doc["runs"], doc["latest_run"], doc["opened"]) == (0, None, False)
    html = (home / "report.html").read_text(encoding="utf-8")
    assert "No runs yet: run the pipeline (`rentalctl run`), then write the report again." in html
    assert 'data-state="Transform" data-status=""' in html  # the machine, drawn uncoloured
    assert sorted(p.name for p in home.iterdir()) == ["report.html"]  # nothing else created


def test_open_says_so_when_no_browser_is_found(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []

    def no_browser(url: str) -> bool:
        opened.append(url)
        return False

    monkeypatch.setattr("webbrowser.open", no_browser)
    result = invoke("report", "--open")
    assert result.exit_code == 0, result.stderr
    assert opened == [(home / "report.html").as_uri()]
    assert "No web browser found to open it: open the file yourself." in result.stdout


def test_output_file_that_is_a_directory_is_a_usage_error(home: Path, tmp_path: Path) -> None:
    result = invoke("report", "--output-file", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == f"error: --output-file {tmp_path} is a directory: name a file\n"
