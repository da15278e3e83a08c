"""A run rebuilds the KPI tables only when they would change: a run with nothing new keeps them
as they are, and every way the curated layer or the KPI definitions can change since the last
refresh (rows merged, rows deleted in the source, a failure between a merge and its refresh, new
definitions) rebuilds them. Each time the layer equals what a refresh would make of the
curated layer as it is."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from rentalctl.adapters.warehouse_duckdb import DuckdbWarehouse
from rentalctl.errors import PipelineFailed
from rentalctl.pipeline import presentation
from tests.reliability.support import warehouse_snapshot
from tests.support.cli import invoke, ok_json


def run(home: Path) -> tuple[bool, dict[str, Any]]:
    """One run: whether it refreshed the KPI tables, and the presentation layer after it."""
    doc = ok_json("run")
    assert doc["status"] == "SUCCEEDED"
    result = home / "lake" / "runs" / f"run_id={doc['run_id']}" / "presentation.json"
    return json.loads(result.read_text())["refreshed"], layer(home)


def layer(home: Path) -> dict[str, Any]:
    return {
        name: rows
        for name, rows in warehouse_snapshot(home).items()
        if name.startswith("presentation.")
    }


def as_a_refresh_makes_it(home: Path) -> dict[str, Any]:
    """The layer rebuilt from the curated layer as it is now."""
    warehouse = DuckdbWarehouse(home / "warehouse.duckdb")
    try:
        presentation.refresh_presentation(warehouse)
    finally:
        warehouse.close()
    return layer(home)


def delete_booking(home: Path) -> None:
    """Delete a confirmed booking in the source: it counts in several KPIs."""
    with sqlite3.connect(home / "source.db") as conn:
        conn.execute(
            "DELETE FROM bookings WHERE booking_id = (SELECT MIN(booking_id) FROM bookings "
            "WHERE booking_status = 'confirmed')"
        )


@pytest.fixture
def demo(home: Path) -> Path:
    ok_json("demo-data", "--scale", "0.002")
    return home


def test_nothing_new_keeps_the_layer_and_changes_rebuild_it(demo: Path) -> None:
    refreshed, first = run(demo)
    assert refreshed is True and first

    refreshed, idle = run(demo)
    assert refreshed is False
    assert idle == first == as_a_refresh_makes_it(demo)

    delete_booking(demo)  # a deletion alone: nothing to extract, one curated row fewer
    refreshed, after_delete = run(demo)
    assert refreshed is True
    assert after_delete != first
    assert after_delete == as_a_refresh_makes_it(demo)

    ok_json("demo-data", "--changes")
    refreshed, after_changes = run(demo)
    assert refreshed is True
    assert after_changes == as_a_refresh_makes_it(demo)
    assert run(demo) == (False, after_changes)


def test_a_failure_between_the_merge_and_the_refresh_is_mended_by_the_next_run(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, before = run(demo)
    delete_booking(demo)

    def fails(*args: Any, **kwargs: Any) -> Any:
        raise PipelineFailed("the warehouse went away")

    with monkeypatch.context() as m:
        m.setattr(presentation, "refresh_presentation", fails)
        failed = invoke("-o", "json", "run")
    assert failed.exit_code != 0
    assert layer(demo) == before  # the merge committed the deletion, the KPIs are behind it

    refreshed, after = run(demo)  # its own merge changes nothing: the deletion is merged
    assert refreshed is True
    assert after != before
    assert after == as_a_refresh_makes_it(demo)


def test_new_kpi_definitions_rebuild_the_layer(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run(demo)
    monkeypatch.setattr(presentation, "definitions_digest", lambda: "0" * 64)
    assert run(demo)[0] is True
    assert run(demo)[0] is False
