"""`rentalctl kpis`: a KPI table read back from its CSV and JSON output equals the warehouse's
table (read here with DuckDB directly, not through rentalctl), whole; the text table, the
listing, the filters and the errors."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support.cli import invoke

pytestmark = pytest.mark.slow

# Column types as docs/contract.md §6 declares them: how a CSV or JSON value is read back.
TYPES: dict[str, Any] = {
    "week_start": date.fromisoformat,
    "month_start": date.fromisoformat,
    "cityname": str,
    "title": str,
    "revenue_usd": Decimal,
    "avg_price_usd": float,
    "occupancy_rate_pct": float,
    "repeat_rate_pct": float,
    "avg_nights": float,
}
TABLES = {
    "average_listing_price": "week_start, active_listings, avg_price_usd",
    "occupancy_rate": "month_start, available_listings, available_nights, booked_nights, "
    "occupancy_rate_pct",
    "popular_locations": "week_start, cityname, confirmed_bookings, rank",
    "top_performing_listings": "week_start, apartment_id, title, cityname, revenue_usd, rank",
    "bookings_per_user": "week_start, user_id, total_bookings, confirmed_bookings",
    "average_booking_duration": "week_start, confirmed_bookings, avg_nights",
    "repeat_customer_rate": "month_start, customers, repeat_customers, repeat_rate_pct",
}


def warehouse_rows(home: Path, table: str, where: str = "") -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(f"SELECT {TABLES[table]} FROM presentation.{table} {where}").fetchall()
    finally:
        con.close()


def typed(column: str, text: Any) -> Any:
    if text is None or text == "":
        return None
    return TYPES.get(column, int)(text)


@pytest.fixture
def pipeline(pipeline_home: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    home = Path(str(pipeline_home["home"]))
    monkeypatch.setenv("RENTALCTL_HOME", str(home))
    return home


@pytest.mark.parametrize("table", sorted(TABLES))
def test_csv_reads_back_as_the_warehouse_table(pipeline: Path, table: str) -> None:
    result = invoke("kpis", table, "-o", "csv")
    assert result.exit_code == 0, result.stderr
    reader = csv.reader(io.StringIO(result.stdout))
    header = next(reader)
    assert header == [c.strip() for c in TABLES[table].split(",")]
    rows = [tuple(typed(c, v) for c, v in zip(header, line, strict=True)) for line in reader]
    expected = warehouse_rows(pipeline, table)
    assert expected  # the demo run fills every KPI table
    assert sorted(rows, key=repr) == sorted(expected, key=repr)
    # newest period first
    assert [r[0] for r in rows] == sorted((r[0] for r in rows), reverse=True)


@pytest.mark.parametrize("table", ["occupancy_rate", "top_performing_listings"])
def test_json_reads_back_as_the_warehouse_table(pipeline: Path, table: str) -> None:
    result = invoke("-o", "json", "kpis", table)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    columns = [c.strip() for c in TABLES[table].split(",")]
    assert doc["table"] == table and doc["columns"] == columns
    rows = [tuple(typed(c, r[c]) for c in columns) for r in doc["rows"]]
    assert sorted(rows, key=repr) == sorted(warehouse_rows(pipeline, table), key=repr)


def test_since_and_limit(pipeline: Path) -> None:
    expected = warehouse_rows(
        pipeline,
        "popular_locations",
        "WHERE week_start >= DATE '2025-03-01' ORDER BY week_start DESC, rank, cityname LIMIT 7",
    )
    result = invoke(
        "kpis", "popular_locations", "--since", "2025-03-01", "--limit", "7", "-o", "csv"
    )
    assert result.exit_code == 0, result.stderr
    lines = list(csv.reader(io.StringIO(result.stdout)))[1:]
    columns = [c.strip() for c in TABLES["popular_locations"].split(",")]
    assert [tuple(typed(c, v) for c, v in zip(columns, line)) for line in lines] == expected


def test_text_table_and_listing(pipeline: Path) -> None:
    result = invoke("kpis", "occupancy_rate", "--limit", "2")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == [
        "month_start",
        "available_listings",
        "available_nights",
        "booked_nights",
        "occupancy_rate_pct",
    ]
    assert len(lines) == 3
    (newest,) = warehouse_rows(pipeline, "occupancy_rate", "ORDER BY month_start DESC LIMIT 1")
    assert lines[1].split()[0] == newest[0].isoformat()

    listing = invoke("-o", "json", "kpis")
    assert listing.exit_code == 0, listing.stderr
    doc = json.loads(listing.stdout)
    counts = {t["table"]: t["rows"] for t in doc["tables"]}
    assert counts == {t: len(warehouse_rows(pipeline, t)) for t in TABLES}


def test_unknown_table_and_bad_date_are_usage_errors(pipeline: Path) -> None:
    unknown = invoke("kpis", "occupancy")
    assert unknown.exit_code == 2
    assert unknown.stderr == (
        "error: unknown KPI table 'occupancy': did you mean occupancy_rate? (expected one of "
        "average_listing_price, occupancy_rate, popular_locations, top_performing_listings, "
        "bookings_per_user, average_booking_duration, repeat_customer_rate)\n"
    )
    bad = invoke("kpis", "occupancy_rate", "--since", "2025-02-30")
    assert bad.exit_code == 2
    assert "--since = '2025-02-30': expected a date YYYY-MM-DD" in bad.stderr


def test_nothing_run_yet_is_no_kpis_and_creates_nothing(home: Path) -> None:
    result = invoke("kpis", "occupancy_rate")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "No KPIs yet: run the pipeline first (`rentalctl run`).\n"
    as_csv = invoke("kpis", "occupancy_rate", "-o", "csv")
    assert as_csv.stdout == (
        "month_start,available_listings,available_nights,booked_nights,occupancy_rate_pct\n"
    )
    assert not (home / "warehouse.duckdb").exists()
