"""The transform step of a run, for one table: the run's raw files (as listed in its manifest)
-> Parquet files of curated and rejected rows in the lake, then ``_stats.json``.

Output layout (``rentalctl.curated.output_prefix``)::

    curated/<table>/run_id=<id>/part-00000-<uuid>-c000.snappy.parquet ... _stats.json
    rejected/<table>/run_id=<id>/part-00000-<uuid>-c000.snappy.parquet ...

Spark's executors write the Parquet files straight into the lake (S3, or the lake folder): on a
cluster they run on other machines, whose local disks the driver never sees. The rows the files
hold are then counted from their footers and must equal the rows counted before writing.
``_stats.json`` is written last: its presence marks the table's transform of that run complete.
A retry first deletes both prefixes, so it never mixes two attempts. An empty frame writes no
Parquet file at all.

pyspark is imported inside ``run_transform`` only: importing this module stays cheap.
"""

from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING, Any

from rentalctl.curated import data_files, output_prefix
from rentalctl.errors import PipelineFailed, ResourceUnavailable
from rentalctl.pipeline.rawfiles import read_manifest, verify_files
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


def spark_uri(lake: Lake, key: str) -> str:
    """Where Spark reads or writes ``key``: the lake's s3:// URI (which Glue's Spark reads and
    writes), or the lake folder as a file:// URI, explicit so that a cluster whose default file
    system is another one (HDFS) still uses the folder."""
    path = lake.local_path(key)
    return f"file://{path}" if path is not None else lake.uri(key)


def _write_parquet(
    lake: Lake, df: DataFrame, rows: int, kind: str, table: str, run_id: str
) -> None:
    """Write ``df`` (the run's ``kind`` rows of ``table``: ``rows`` as counted) as Parquet into
    the lake, then check that the files there hold ``rows`` rows, or raise PipelineFailed."""
    if rows == 0:
        return
    prefix = output_prefix(kind, table, run_id)
    uri = spark_uri(lake, prefix.rstrip("/"))
    # The prefix was emptied through the Lake port; "overwrite" also clears what only Spark's
    # file system sees there (such as a folder marker an earlier attempt left on S3).
    df.coalesce(max(1, math.ceil(rows / ROWS_PER_FILE))).write.mode("overwrite").parquet(uri)
    # Counted from the files the merge will stage (their footers; no data is read): rows lost
    # by the writer must fail this step, before the bookmarks can move past them.
    files = [spark_uri(lake, key) for key in data_files(prefix, lake.list(prefix))]
    reader = df.sparkSession.read.schema(df.schema)
    written = reader.parquet(*files).count() if files else 0
    if written != rows:
        raise PipelineFailed(
            f"transform of {table} in run {run_id} counted {rows} {kind} rows, but the "
            f"{len(files)} Parquet files written to {uri} hold {written}: Spark's executors "
            "must write where the driver reads (S3; on a Spark cluster, a lake folder every "
            "worker shares at the same path)"
        )


def _all_curated(ctx: Context, table: str, run_id: str) -> bool:
    """Whether the run's raw load of ``table`` found every row in the curated layer already,
    at its version or a newer one (``steps.load_raw``)."""
    from rentalctl.jobs import result_key

    try:
        loaded = json.loads(ctx.lake.get_bytes(result_key(run_id, "load-raw", table)))
    except ResourceUnavailable:
        return False
    return loaded.get("not_curated") == 0


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
    if manifest.files and _all_curated(ctx, spec.name, run_id):
        # Nothing to do: transforming and merging rows already curated changes nothing.
        result.update(rows_read=manifest.rows, already_curated=manifest.rows)
    elif manifest.files:
        if spark is None:
            from rentalctl.spark import local_session

            spark = local_session(ctx.settings.spark_master)
        verify_files(ctx.lake, manifest)  # Spark reads the files again after the raw load
        raw = read_raw(spark, spec.name, [spark_uri(ctx.lake, f.key) for f in manifest.files])
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
            _write_parquet(ctx.lake, curated, result["curated"], "curated", spec.name, run_id)
            _write_parquet(ctx.lake, rejected, result["rejected"], "rejected", spec.name, run_id)
        finally:
            classified.unpersist()
    ctx.lake.put_bytes(curated_prefix + STATS, json.dumps(result, indent=2).encode())
    log.info("transform %s %s: %s", spec.name, run_id, result)
    return result
