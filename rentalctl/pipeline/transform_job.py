"""The transform step of a run, for one table: the run's raw files (as listed in its manifest)
-> Parquet files of curated and rejected rows in the lake, then ``_stats.json``.

Output layout (``rentalctl.curated.output_prefix``)::

    curated/<table>/run_id=<id>/part-00000-<uuid>-c000.snappy.parquet ... _stats.json
    rejected/<table>/run_id=<id>/part-00000-<uuid>-c000.snappy.parquet ...

The session is a SparkSession or, with ``transform.engine: duckdb``, SQLFrame's DuckDB session
(``rentalctl.spark.transform_session``); this module's reads and writes are the only places that
tell them apart (the DuckDB side is ``transform_duckdb``). Spark's executors write the Parquet
files straight into the lake (S3, or the lake folder): on a cluster they run on other machines,
whose local disks the driver never sees. DuckDB writes one ``part-00000.parquet`` per output
folder. The rows the files hold are then counted from their footers and must equal the rows
counted before writing.
``_stats.json`` is written last: its presence marks the table's transform of that run complete.
A retry first deletes both prefixes, so it never mixes two attempts. An empty frame writes no
Parquet file at all.

pyspark and sqlframe are imported inside functions only: importing this module stays cheap.
"""

from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING, Any

from rentalctl.curated import INVALID_VALUE, REJECTED_ROWS_COLUMNS, data_files, output_prefix
from rentalctl.errors import PipelineFailed, ResourceUnavailable
from rentalctl.pipeline import transform_duckdb
from rentalctl.pipeline.frame_api import DUCKDB, engine_of
from rentalctl.pipeline.transform import classify, empty_stats, split, stats
from rentalctl.pipeline.transform_schema import raw_schema
from rentalctl.run.layout import result_key
from rentalctl.run.manifest import read_manifest, verify_files
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
    return spark.read.options(**CSV_OPTIONS).csv(paths, schema=raw_schema(table))


def read_raw_keys(lake: Lake, session: Any, table: str, keys: list[str]) -> Any:
    """The raw files ``keys`` of one table, read by ``session`` (Spark or SQLFrame DuckDB)."""
    if engine_of(session) == DUCKDB:
        paths = [transform_duckdb.lake_folder(lake, key) for key in keys]
        return transform_duckdb.read_raw(session, table, paths)
    return read_raw(session, table, [spark_uri(lake, key) for key in keys])


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
    if engine_of(df) == DUCKDB:
        uri, written = transform_duckdb.write_parquet(lake, df, prefix)
        _check_written(table, run_id, kind, rows, uri, 1, written, DUCKDB_LOST_ROWS)
        return
    uri = spark_uri(lake, prefix.rstrip("/"))
    # The prefix was emptied through the Lake port; "overwrite" also clears what only Spark's
    # file system sees there (such as a folder marker an earlier attempt left on S3).
    df.coalesce(max(1, math.ceil(rows / ROWS_PER_FILE))).write.mode("overwrite").parquet(uri)
    # Counted from the files the merge will stage (their footers; no data is read): rows lost
    # by the writer must fail this step, before the bookmarks can move past them.
    files = [spark_uri(lake, key) for key in data_files(prefix, lake.list(prefix))]
    reader = df.sparkSession.read.schema(df.schema)
    written = reader.parquet(*files).count() if files else 0
    _check_written(table, run_id, kind, rows, uri, len(files), written, SPARK_LOST_ROWS)


SPARK_LOST_ROWS = (
    "Spark's executors must write where the driver reads (S3; on a Spark cluster, a lake "
    "folder every worker shares at the same path)"
)
DUCKDB_LOST_ROWS = "DuckDB wrote fewer rows than it computed (a disk full, or a bug to report)"


def _check_written(
    table: str, run_id: str, kind: str, rows: int, uri: str, files: int, written: int, why: str
) -> None:
    if written != rows:
        raise PipelineFailed(
            f"transform of {table} in run {run_id} counted {rows} {kind} rows, but the "
            f"{files} Parquet files written to {uri} hold {written}: {why}"
        )


def read_invalid(lake: Lake, session: Any, table: str, key: str) -> Any:
    """The run's quarantined rows of ``table`` (``rawfiles.INVALID_FILE``: rows of
    curated.rejected_rows as text, in the raw CSV dialect), read by ``session``."""
    if engine_of(session) == DUCKDB:
        return transform_duckdb.read_invalid(
            session, table, transform_duckdb.lake_folder(lake, key)
        )
    from pyspark.sql import types as T

    fields = [T.StructField(name, T.StringType()) for name, _ in REJECTED_ROWS_COLUMNS]
    schema = T.StructType(fields)
    return session.read.options(**CSV_OPTIONS).csv(spark_uri(lake, key), schema=schema)


def with_invalid_values(stats: dict[str, Any], rows: int) -> dict[str, Any]:
    """The transform's stats with the rows quarantined at extraction: read and rejected, under
    their own reason, which comes first."""
    return {
        **stats,
        "rows_read": stats["rows_read"] + rows,
        "rejected": stats["rejected"] + rows,
        "rejected_by_reason": {INVALID_VALUE: rows, **stats["rejected_by_reason"]},
    }


def all_curated(ctx: Context, table: str, run_id: str) -> bool:
    """Whether the run's raw load of ``table`` found every row in the curated layer already,
    at its version or a newer one (``steps.load_raw``)."""
    try:
        loaded = json.loads(ctx.lake.get_bytes(result_key(run_id, "load-raw", table)))
    except ResourceUnavailable:
        return False
    return loaded.get("not_curated") == 0


def run_transform(
    ctx: Context,
    table: str,
    run_id: str,
    spark: SparkSession | None = None,
    already_curated: bool | None = None,
) -> dict[str, Any]:
    """Transform one table's raw files of ``run_id``; returns the stats (also in the lake).
    ``already_curated``: ``all_curated``'s answer when the caller has asked it already."""
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
    invalid = manifest.invalid_file
    if already_curated is None:
        already_curated = all_curated(ctx, spec.name, run_id)
    if manifest.files and not invalid and already_curated:
        # Nothing to do: transforming and merging rows already curated changes nothing.
        result.update(rows_read=manifest.rows, already_curated=manifest.rows)
    elif manifest.files or invalid:
        if spark is None:
            # Imported here: the Glue Python shell jobs import this module (through
            # rentalctl.jobs) and must not load rentalctl.spark.
            from rentalctl.spark import transform_session

            spark = transform_session(ctx.settings)
        on_duckdb = engine_of(spark) == DUCKDB
        verify_files(ctx.lake, manifest)  # the engine reads the files again after the raw load
        quarantined = read_invalid(ctx.lake, spark, spec.name, invalid.key) if invalid else None
        classified = None
        try:
            curated = rejected = None
            if manifest.files:
                keys, rates = [f.key for f in manifest.files], ctx.settings.fx_rates
                # Computed once: the stats and both outputs read it, the raw files read once.
                if on_duckdb:
                    paths = [transform_duckdb.lake_folder(ctx.lake, key) for key in keys]
                    classified = transform_duckdb.classified(spark, spec.name, paths, rates)
                else:
                    raw = read_raw(spark, spec.name, [spark_uri(ctx.lake, key) for key in keys])
                    classified = classify(spec.name, raw, rates).persist()
                result = stats(spec.name, classified)
                if result["rows_read"] != manifest.rows:
                    raise PipelineFailed(
                        f"raw {spec.name} of run {run_id}: read {result['rows_read']} rows, "
                        f"the manifest lists {manifest.rows}"
                    )
                curated, rejected = split(spec.name, classified, run_id)
            if quarantined is not None:
                rejected = quarantined if rejected is None else rejected.unionByName(quarantined)
            assert rejected is not None  # there are raw files, or quarantined rows
            if curated is not None:
                _write_parquet(ctx.lake, curated, result["curated"], "curated", spec.name, run_id)
            rejected_rows = result["rejected"] + manifest.invalid_rows
            _write_parquet(ctx.lake, rejected, rejected_rows, "rejected", spec.name, run_id)
        finally:
            if on_duckdb:
                transform_duckdb.release(spark, spec.name)
            elif classified is not None:
                classified.unpersist()
    result = with_invalid_values(result, manifest.invalid_rows)
    ctx.lake.put_bytes(curated_prefix + STATS, json.dumps(result, indent=2).encode())
    log.info("transform %s %s: %s", spec.name, run_id, result)
    return result
