"""The transform gives the same answer on both engines. The demo generator's dirty data (messy
spaces, currency spellings, bad prices, swapped dates, unknown words, duplicates, later changes)
is extracted once, then transformed by DuckDB through SQLFrame and by Spark in turn; the curated
and rejected Parquet files and the stats each engine leaves in the lake are compared whole,
every value as text and every column type as DuckDB reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from rentalctl import config, urls
from rentalctl.adapters.factories import open_source
from rentalctl.context import Context
from rentalctl.curated import data_files, output_prefix
from rentalctl.demo.writer import write_demo
from rentalctl.pipeline import steps
from rentalctl.pipeline.transform_job import STATS, run_transform

pytestmark = pytest.mark.slow

RUN = "R1"


def lake_outputs(ctx: Context, table: str) -> dict[str, Any]:
    """A table's transform output as plain data: per kind, the column types and the sorted rows
    (each value cast to text by DuckDB), and the stats file."""
    out: dict[str, Any] = {}
    for kind in ("curated", "rejected"):
        prefix = output_prefix(kind, table, RUN)
        files = [str(ctx.lake.local_path(k)) for k in data_files(prefix, ctx.lake.list(prefix))]
        if not files:
            out[kind] = None
            continue
        con = duckdb.connect()
        source = "read_parquet(?, hive_partitioning = false)"
        described = con.execute(f"DESCRIBE SELECT * FROM {source}", [files]).fetchall()
        columns = ", ".join(f'CAST("{d[0]}" AS VARCHAR)' for d in described)
        rows = con.execute(f"SELECT {columns} FROM {source}", [files]).fetchall()
        out[kind] = {
            "types": [(d[0], d[1]) for d in described],
            "rows": sorted(rows, key=repr),
        }
    out["stats"] = json.loads(ctx.lake.get_bytes(output_prefix("curated", table, RUN) + STATS))
    return out


def test_dirty_demo_data_transforms_identically_on_both_engines(
    spark: Any, duckdb_frames: Any, tmp_path: Path
) -> None:
    source = tmp_path / "source.db"
    with open_source(urls.SqliteURL(source), create=True) as src:
        write_demo(src, scale=0.02, seed=11, changes=False, replace=False, progress=False)
        write_demo(src, scale=0.02, seed=11, changes=True, replace=False, progress=False)
    env = {"RENTALCTL_HOME": str(tmp_path / "home"), "RENTALCTL_SOURCE_URL": f"sqlite:///{source}"}
    ctx = Context(config.load(env=env))
    ctx.state.ensure()
    tables = list(ctx.settings.tables)
    for table in tables:
        steps.extract(ctx, table, RUN)

    outputs = {}
    for engine, session in (("duckdb", duckdb_frames), ("spark", spark)):
        returned = {t: run_transform(ctx, t, RUN, session) for t in tables}
        outputs[engine] = {t: lake_outputs(ctx, t) for t in tables}
        assert {t: outputs[engine][t]["stats"] for t in tables} == returned

    for table in tables:
        duck, spark_out = outputs["duckdb"][table], outputs["spark"][table]
        assert duck["stats"] == spark_out["stats"], table
        for kind in ("curated", "rejected"):
            assert duck[kind] == spark_out[kind], (table, kind)
    # The data is dirty enough to mean something: every table has rejected rows.
    for table in tables:
        assert outputs["duckdb"][table]["stats"]["rejected"] > 0, table
        assert outputs["duckdb"][table]["stats"]["curated"] > 0, table
