"""The whole local pipeline on dirty demo data, run by the state machine a local `rentalctl run`
executes: extract → raw → transform (DuckDB) → merge → presentation → bookmarks → archive. After
each run the curated layer must equal an independent reading of docs/contract.md §5 over every
extracted row version (tests/support/reference.py), every extracted version must be accounted
for exactly once, and an incremental history must end where a fresh pipeline over the final
source does."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from rentalctl import config, urls
from rentalctl.adapters.factories import open_source
from rentalctl.context import Context
from rentalctl.curated import CURATED
from rentalctl.demo.writer import write_demo
from rentalctl.orchestration.local import run_local
from rentalctl.sqlfiles import KPI_TABLES
from tests.support.reference import curated_queries

pytestmark = pytest.mark.slow


def make_context(home: Path, source: Path) -> Context:
    env = {"RENTALCTL_HOME": str(home), "RENTALCTL_SOURCE_URL": f"sqlite:///{source}"}
    ctx = Context(config.load(env=env))
    ctx.state.ensure()
    ctx.state.seed(ctx.settings.tables)
    return ctx


def run(ctx: Context, run_id: str) -> dict[str, Any]:
    """One run through the state machine a local `rentalctl run` executes (extract, raw load,
    transform, merge, presentation, bookmark commit, archive); returns its merge report."""
    tables = list(ctx.settings.tables)
    record = run_local(
        ctx, run_id=run_id, mode="incremental", since=None, until=None, tables=tables
    )
    assert record["status"] == "SUCCEEDED", record.get("error")
    assert [s["name"] for s in record["steps"] if s["done"]][-4:] == [
        "merge",
        "presentation",
        "commit-bookmarks",
        "archive",
    ]
    assert_archived(ctx, run_id)
    quality: dict[str, Any] = record["quality"]
    return quality


def assert_archived(ctx: Context, run_id: str) -> None:
    """The run's raw files moved to archive/raw/ (same layout); raw/ holds nothing of it."""
    lake = Path(ctx.settings.home) / "lake"
    left = [p.relative_to(lake).as_posix() for p in lake.glob(f"raw/*/run_id={run_id}/*")]
    assert left == []
    archived = sorted(
        p.relative_to(lake).as_posix() for p in lake.glob(f"archive/raw/*/run_id={run_id}/*")
    )
    expected = []
    for table in ("apartments", "apartment_attributes", "user_viewing", "bookings"):
        expected.append(f"archive/raw/{table}/run_id={run_id}/_manifest.json")
        # the table's key set and key pages, read by every run (extract.reconcile_every_runs: 1)
        expected.append(f"archive/raw/{table}/run_id={run_id}/_keys.csv.gz")
        expected.append(f"archive/raw/{table}/run_id={run_id}/_key_pages.csv.gz")
        expected.append(f"archive/raw/{table}/run_id={run_id}/part-00000.csv.gz")
    assert archived == sorted(expected)


def layer(ctx: Context, schema: str, table: str) -> list[tuple]:
    with ctx.warehouse() as w:
        return w.query(f"SELECT * FROM {schema}.{table} ORDER BY ALL")


def assert_curated_matches_reference(ctx: Context) -> None:
    with ctx.warehouse() as w:
        for table, query in curated_queries(dict(ctx.settings.fx_rates)).items():
            cols = ", ".join(CURATED[table].column_names)
            expected = w.query(f"SELECT {cols} FROM ({query}) ORDER BY ALL")
            actual = w.query(f"SELECT {cols} FROM curated.{table} ORDER BY ALL")
            assert len(actual) == len(expected), table
            assert actual == expected, table


# Per table, its key and the valid versions of its rows as docs/contract.md §5 reads them (the
# reference query before it keeps one version per key).
KEYS = {
    "apartments": "id",
    "apartment_attributes": "id",
    "user_viewing": "id",
    "bookings": "booking_id",
}


def valid_versions(query: str) -> str:
    return "\n".join(line for line in query.splitlines() if not line.startswith("QUALIFY "))


def assert_every_version_accounted_for(ctx: Context) -> None:
    """Each distinct extracted row version is curated, superseded by a newer valid version of
    its key, or rejected, and only one of them: a lost version (or a row written twice) breaks
    the sum. Curated and rejected are counted in the warehouse as the pipeline left it,
    superseded from raw.* by the reference."""
    queries = curated_queries(dict(ctx.settings.fx_rates))
    with ctx.warehouse() as w:
        for table, key in KEYS.items():
            (versions,) = w.query(
                f"SELECT COUNT(*) FROM (SELECT DISTINCT * EXCLUDE (_run_id, _extracted_at) "
                f"FROM raw.{table})"
            )[0]
            (curated,) = w.query(f"SELECT COUNT(*) FROM curated.{table}")[0]
            (superseded,) = w.query(
                f"SELECT COUNT(*) - COUNT(DISTINCT {key}) FROM ({valid_versions(queries[table])})"
            )[0]
            (rejected,) = w.query(
                "SELECT COUNT(*) FROM curated.rejected_rows WHERE source_table = ?", [table]
            )[0]
            assert (table, curated + superseded + rejected) == (table, versions)
            assert rejected > 0, table  # the demo's dirt reaches rejected_rows


def test_demo_data_through_the_whole_pipeline(tmp_path: Path) -> None:
    # DuckDB, the default engine of local runs (the engines agree: test_engine_parity.py)
    source = tmp_path / "source.db"
    with open_source(urls.SqliteURL(source), create=True) as src:
        write_demo(src, scale=0.01, seed=7, changes=False, replace=False, progress=False)
    ctx = make_context(tmp_path / "incremental", source)

    first = run(ctx, "R1")
    assert_curated_matches_reference(ctx)
    assert_every_version_accounted_for(ctx)
    assert first["bookings"]["orphans"] > 0
    presentation_after_r1 = {t: layer(ctx, "presentation", t) for t in KPI_TABLES}
    assert all(presentation_after_r1.values())

    # Nothing new: the second run reads only the lookback, and changes nothing.
    run(ctx, "R2")
    assert {t: layer(ctx, "presentation", t) for t in KPI_TABLES} == presentation_after_r1
    assert_every_version_accounted_for(ctx)

    with open_source(ctx.settings.source) as src:
        write_demo(src, scale=0.01, seed=7, changes=True, replace=False, progress=False)
    third = run(ctx, "R3")
    assert third["apartments"]["updated"] > 0 and third["bookings"]["inserted"] > 0
    assert_curated_matches_reference(ctx)
    assert_every_version_accounted_for(ctx)

    # A fresh pipeline over the final source ends in the same curated and presentation layers.
    fresh_source = tmp_path / "fresh-source.db"
    shutil.copy(source, fresh_source)
    fresh = make_context(tmp_path / "fresh", fresh_source)
    run(fresh, "F1")
    for table in CURATED:
        assert layer(fresh, "curated", table) == layer(ctx, "curated", table), table
    for table in KPI_TABLES:
        assert layer(fresh, "presentation", table) == layer(ctx, "presentation", table), table
