"""The transform step of a run, for one table: the run's raw files (as listed in its manifest)
-> Parquet files of curated and rejected rows in the lake, then ``_stats.json``.

Output layout (``rentalctl.curated.output_prefix``)::

    curated/<table>/run_id=<id>/part-00000.parquet ... _stats.json
    rejected/<table>/run_id=<id>/part-00000.parquet ...

``_stats.json`` is written last: its presence marks the table's transform of that run complete.
A retry first deletes both prefixes, so it never mixes two attempts. An empty frame writes no
Parquet file at all. Spark writes into a local temporary folder and each part file is then put
into the lake through the Lake port, so the same code serves a local folder and S3.

pyspark is imported inside ``run_transform`` only: importing this module stays cheap.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rentalctl.curated import output_prefix
from rentalctl.errors import PipelineFailed
from rentalctl.pipeline.rawfiles import read_manifest
from rentalctl.tables import table as table_spec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from rentalctl.adapters.lake import Lake
    from rentalctl.context import Context

log = logging.getLogger(__name__)

STATS = "_stats.json"
ROWS_PER_FILE = 1_000_000  # a few files per run and table, never thousands of tiny ones

# Spark's CSV reader compares every field with ``nullValue`` after parsing, and a quoted empty
# field ("") parses to ``emptyValue``. With the default nullValue "" both would become NULL; the
# raw dialect (rawfiles.py) says "" is the empty string and only an unquoted empty field is
# NULL. So an unquoted empty field is made to parse to a sentinel no real value holds, and the
# sentinel is what is read as NULL.
NULL_SENTINEL = "\x00rentalctl:null\x00"
CSV_OPTIONS = {
    "header": "true",
    "enforceSchema": "false",  # the header must name the spec's columns, in order
    "multiLine": "true",  # newlines inside quoted text
    "quote": '"',
    "escape": '"',  # quotes inside text are doubled
    "nullValue": NULL_SENTINEL,
    "emptyValue": "",
    "mode": "FAILFAST",  # a malformed row fails the step instead of becoming NULLs
    "encoding": "UTF-8",
    "timestampNTZFormat": "yyyy-MM-dd HH:mm:ss[.SSSSSS]",
    "dateFormat": "yyyy-MM-dd",
}


def read_raw(spark: SparkSession, table: str, paths: list[str]) -> DataFrame:
    """The raw gzip CSV part files of one table as a typed DataFrame (``raw_schema``)."""
    from rentalctl.pipeline.transform import raw_schema

    return spark.read.options(**CSV_OPTIONS).csv(paths, schema=raw_schema(table))


def _write_parquet(lake: Lake, df: DataFrame, rows: int, folder: Path, prefix: str) -> int:
    """Write ``df`` (``rows`` rows) as Parquet under ``prefix``; returns the number of files."""
    if rows == 0:
        return 0
    df.coalesce(max(1, math.ceil(rows / ROWS_PER_FILE))).write.parquet(folder.as_uri())
    parts = sorted(folder.glob("part-*.parquet"))
    for number, path in enumerate(parts):
        lake.put_file(path, f"{prefix}part-{number:05d}.parquet")
    return len(parts)


def run_transform(
    ctx: Context, table: str, run_id: str, spark: SparkSession | None = None
) -> dict[str, Any]:
    """Transform one table's raw files of ``run_id``; returns the stats (also in the lake)."""
    from rentalctl.pipeline.transform import classify, empty_stats, split, stats

    spec = table_spec(table)
    manifest = read_manifest(ctx.lake, spec.name, run_id)
    if manifest.columns != list(spec.column_names):
        raise PipelineFailed(
            f"raw {spec.name} of run {run_id} has columns {manifest.columns}, "
            f"expected {list(spec.column_names)}"
        )
    curated_prefix = output_prefix("curated", spec.name, run_id)
    rejected_prefix = output_prefix("rejected", spec.name, run_id)
    for prefix in (curated_prefix, rejected_prefix):
        ctx.lake.delete_prefix(prefix)  # a retry starts clean

    result = empty_stats(spec.name)
    if manifest.files:
        if spark is None:
            from rentalctl.spark import local_session

            spark = local_session(ctx.settings.spark_master)
        raw = read_raw(spark, spec.name, [ctx.lake.uri(f.key) for f in manifest.files])
        # Persisted: the stats and both outputs read it, and the raw files are read once.
        classified = classify(spec.name, raw, ctx.settings.fx_rates).persist()
        try:
            result = stats(spec.name, classified)
            if result["rows_read"] != manifest.rows:
                raise PipelineFailed(
                    f"raw {spec.name} of run {run_id}: read {result['rows_read']} rows, "
                    f"the manifest lists {manifest.rows}"
                )
            curated, rejected = split(spec.name, classified, run_id)
            with tempfile.TemporaryDirectory(prefix="rentalctl-transform-") as tmp:
                _write_parquet(
                    ctx.lake, curated, result["curated"], Path(tmp) / "curated", curated_prefix
                )
                _write_parquet(
                    ctx.lake, rejected, result["rejected"], Path(tmp) / "rejected", rejected_prefix
                )
        finally:
            classified.unpersist()
    ctx.lake.put_bytes(curated_prefix + STATS, json.dumps(result, indent=2).encode())
    log.info("transform %s %s: %s", spec.name, run_id, result)
    return result
