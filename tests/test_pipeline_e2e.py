"""The whole local pipeline on dirty demo data: extract → raw → transform (DuckDB) → merge →
presentation → bookmarks. After each run the curated layer must equal an independent reading of
docs/contract.md §5 over every extracted row version (tests/support/reference.py), every extracted
version must be accounted for, and an incremental history must end where a fresh pipeline over
the final source does."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from rentalctl import config, urls
from rentalctl.adapters.source import open_source
from rentalctl.context import Context
from rentalctl.curated import CURATED
from rentalctl.demo.writer import write_demo
from rentalctl.pipeline import steps
from rentalctl.pipeline.merge import merge
from rentalctl.pipeline.presentation import refresh_presentation
from rentalctl.pipeline.transform_job import run_transform
from rentalctl.sqlfiles import KPI_TABLES
from tests.support.reference import curated_queries

pytestmark = pytest.mark.slow


def make_context(home: Path, source: Path) -> Context:
    env = {"RENTALCTL_HOME": str(home), "RENTALCTL_SOURCE_URL": f"sqlite:///{source}"}
    ctx = Context(config.load(env=env))
    ctx.state.ensure()
    return ctx


def run(ctx: Context, run_id: str, session: Any) -> dict[str, Any]:
    tables = list(ctx.settings.tables)
    for table in tables:
        steps.extract(ctx, table, run_id)
        steps.load_raw(ctx, table, run_id)
        run_transform(ctx, table, run_id, session)
    report = merge(ctx, run_id, tables)
    with ctx.warehouse() as warehouse:
        refresh_presentation(warehouse)
    steps.commit_bookmarks(ctx, run_id, tables)
    return report


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


def assert_every_version_accounted_for(ctx: Context, reports: list[dict[str, Any]]) -> None:
    """Each distinct extracted row version is curated, superseded or rejected: never lost."""
    with ctx.warehouse() as w:
        for table in CURATED:
            (versions,) = w.query(
                f"SELECT COUNT(*) FROM (SELECT DISTINCT * EXCLUDE (_run_id, _extracted_at) "
                f"FROM raw.{table})"
            )[0]
            (rejected,) = w.query(
                "SELECT COUNT(*) FROM curated.rejected_rows WHERE source_table = ?", [table]
            )[0]
            (kept,) = w.query(f"SELECT COUNT(*) FROM curated.{table}")[0]
            assert kept + rejected <= versions, table
            assert rejected > 0, table  # the demo's dirt reaches rejected_rows
    assert all(r[t]["rows_read"] >= r[t]["curated"] for r in reports for t in r)


def test_demo_data_through_the_whole_pipeline(duckdb_frames: Any, tmp_path: Path) -> None:
    # DuckDB, the default engine of local runs (the engines agree: test_engine_parity.py)
    session = duckdb_frames
    source = tmp_path / "source.db"
    with open_source(urls.SqliteURL(source), create=True) as src:
        write_demo(src, scale=0.01, seed=7, changes=False, replace=False, progress=False)
    ctx = make_context(tmp_path / "incremental", source)

    first = run(ctx, "R1", session)
    assert_curated_matches_reference(ctx)
    assert first["bookings"]["orphans"] > 0
    presentation_after_r1 = {t: layer(ctx, "presentation", t) for t in KPI_TABLES}
    assert all(presentation_after_r1.values())

    # Nothing new: the second run reads only the lookback, and changes nothing.
    run(ctx, "R2", session)
    assert {t: layer(ctx, "presentation", t) for t in KPI_TABLES} == presentation_after_r1

    with open_source(ctx.settings.source) as src:
        write_demo(src, scale=0.01, seed=7, changes=True, replace=False, progress=False)
    third = run(ctx, "R3", session)
    assert third["apartments"]["updated"] > 0 and third["bookings"]["inserted"] > 0
    assert_curated_matches_reference(ctx)
    assert_every_version_accounted_for(ctx, [first, third])

    # A fresh pipeline over the final source ends in the same curated and presentation layers.
    fresh_source = tmp_path / "fresh-source.db"
    shutil.copy(source, fresh_source)
    fresh = make_context(tmp_path / "fresh", fresh_source)
    run(fresh, "F1", session)
    for table in CURATED:
        assert layer(fresh, "curated", table) == layer(ctx, "curated", table), table
    for table in KPI_TABLES:
        assert layer(fresh, "presentation", table) == layer(ctx, "presentation", table), table
