"""The pipeline through its commands, as an operator drives it: `demo-data`, `run`, `status`,
`backfill`. Re-runs and backfills are idempotent, and an incremental history ends where a fresh
pipeline over the final source does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from rentalctl.cli import app
from rentalctl.curated import CURATED
from rentalctl.sqlfiles import KPI_TABLES
from tests.support.reference import curated_queries

pytestmark = pytest.mark.slow


def cli(home: Path, *args: str, ok: bool = True) -> Any:
    result = CliRunner().invoke(app, ["-o", "json", *args], env={"RENTALCTL_HOME": str(home)})
    if ok:
        assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None


def layers(home: Path) -> dict[str, list[tuple]]:
    """Every curated data table and every presentation table, whole and sorted."""
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        out = {
            f"curated.{t}": con.execute(f"SELECT * FROM curated.{t} ORDER BY ALL").fetchall()
            for t in CURATED
        }
        out |= {
            f"presentation.{t}": con.execute(
                f"SELECT * FROM presentation.{t} ORDER BY ALL"
            ).fetchall()
            for t in KPI_TABLES
        }
        return out
    finally:
        con.close()


def bookmarks(home: Path) -> dict[str, Any]:
    return {t: b["value"] for t, b in cli(home, "seed-bookmarks")["bookmarks"].items()}


def test_run_status_rerun_backfill_and_changes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cli(home, "demo-data", "--scale", "0.005", "--seed", "11")

    first = cli(home, "run")
    assert first["status"] == "SUCCEEDED"
    assert [s["name"] for s in first["states"]][:4] == [
        "Plan",
        "Resolve",
        "Begin",
        "ExtractAndLoad",
    ]
    assert sorted(s["name"] for s in first["states"] if s["name"].startswith("ExtractLoad")) == [
        "ExtractLoad[apartment_attributes]",
        "ExtractLoad[apartments]",
        "ExtractLoad[bookings]",
        "ExtractLoad[user_viewing]",
    ]
    assert [s["name"] for s in first["states"]][-3:] == ["Transform", "Publish", "Succeeded"]
    # Each step inside the jobs is shown done.
    assert first["steps"] == [
        {"name": f"{step}[{t}]", "done": True}
        for t in ("apartments", "apartment_attributes", "user_viewing", "bookings")
        for step in ("extract", "load-raw")
    ] + [
        {"name": step, "done": True}
        for step in ("transform", "merge", "presentation", "commit-bookmarks", "archive")
    ]
    assert first["summary"]["bookings"]["extracted"] == 2500
    assert first["kpis"]["occupancy_rate"] is not None
    listed = cli(home, "status")["runs"]
    assert [(r["run_id"], r["status"]) for r in listed] == [(first["run_id"], "SUCCEEDED")]
    assert cli(home, "status", first["run_id"])["summary"] == first["summary"]

    # The curated layer equals an independent reading of docs/contract.md §5 over the raw layer.
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        for table, query in curated_queries(_rates()).items():
            cols = ", ".join(CURATED[table].column_names)
            assert (
                con.execute(f"SELECT {cols} FROM curated.{table} ORDER BY ALL").fetchall()
                == con.execute(f"SELECT {cols} FROM ({query}) ORDER BY ALL").fetchall()
            ), table
    finally:
        con.close()

    after_first, marks = layers(home), bookmarks(home)
    assert all(after_first.values())

    # Nothing new in the source: a second run changes no layer and no bookmark.
    assert cli(home, "run")["status"] == "SUCCEEDED"
    assert layers(home) == after_first
    assert bookmarks(home) == marks

    # A backfill re-reads a window through the same path: no layer changes, no bookmark moves.
    back = cli(home, "backfill", "--since", "2024-06-01", "--until", "2024-09-30")
    assert back["status"] == "SUCCEEDED" and back["mode"] == "backfill"
    assert back["summary"]["bookings"]["extracted"] > 0
    assert layers(home) == after_first
    assert bookmarks(home) == marks

    # One more day of business, then a run: the same layers as a fresh pipeline over the final
    # source.
    cli(home, "demo-data", "--changes", "--seed", "11")
    changed = cli(home, "run")
    assert changed["summary"]["bookings"]["inserted"] > 0
    assert changed["summary"]["apartments"]["updated"] > 0
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(home / "source.db", fresh / "source.db")
    assert cli(fresh, "run")["status"] == "SUCCEEDED"
    incremental, rebuilt = layers(home), layers(fresh)
    for name in incremental:
        assert incremental[name] == rebuilt[name], name
    assert layers(home) != after_first


def _rates() -> dict[str, Any]:
    from rentalctl import config

    return dict(config.load(env={}).fx_rates)
