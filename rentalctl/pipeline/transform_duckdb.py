"""The transform job's read and write edges on DuckDB (``transform.engine: duckdb``): the raw gzip
CSV files in, the classified rows materialised once, Parquet files out. The transform itself
(``transform.py``) is the same code as on Spark; it runs as DuckDB SQL through SQLFrame.

DuckDB runs in this process and reads and writes the lake folder directly: the engine needs a
``file://`` lake (an ``s3://`` lake is transformed by Spark, locally or on Glue).

Each output folder gets one ``part-00000.parquet``: DuckDB writes one file per COPY, and the
name follows Spark's ``part-*`` pattern that ``curated.data_files`` (and so the merge) lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rentalctl.curated import REJECTED_ROWS_COLUMNS
from rentalctl.errors import ConfigError, PipelineFailed
from rentalctl.pipeline.frame_api import DUCKDB, F, using
from rentalctl.pipeline.transform_schema import raw_schema
from rentalctl.tables import table as table_spec

if TYPE_CHECKING:
    from rentalctl.adapters.lake import Lake

PART_FILE = "part-00000.parquet"
# The raw CSV dialect (rawfiles.py), every field as text.
RAW_CSV: dict[str, Any] = {
    "header": True,
    "all_varchar": True,
    "delimiter": ",",
    "quotechar": '"',
    "escapechar": '"',
    "allow_quoted_nulls": False,
    "compression": "gzip",
    "encoding": "utf-8",
    "strict_mode": True,
    "hive_partitioning": False,  # the run_id=... folder is no column of the rows
}


def lake_folder(lake: Lake, key: str) -> Path:
    """The local path of ``key``, or ConfigError for a lake DuckDB cannot write into."""
    path = lake.local_path(key)
    if path is None:
        raise ConfigError(
            f"transform.engine duckdb reads and writes a lake folder, and {lake.uri(key)} is "
            "not in one: set transform.engine to spark (RENTALCTL_ENGINE=spark) for an s3:// "
            "lake"
        )
    return path


def read_raw(session: Any, table: str, paths: list[Path]) -> Any:
    """The raw gzip CSV part files of one table as a typed SQLFrame DataFrame (``raw_schema``).

    The dialect is rawfiles.py's: only an unquoted empty field is NULL (a quoted ``""`` is the
    empty string), quotes are doubled, quoted text may hold newlines. Every field is read as
    text and then cast to its type: DuckDB would otherwise guess timestamp formats per file, and
    a value that does not parse fails the step (as Spark's FAILFAST does) instead of becoming
    NULL."""
    spec = table_spec(table)
    relation = session._conn.read_csv([str(p) for p in paths], **RAW_CSV)
    if relation.columns != list(spec.column_names):
        raise PipelineFailed(
            f"raw {spec.name} files {paths[0]}...: header {relation.columns}, expected "
            f"{list(spec.column_names)}"
        )
    view = f"rentalctl_raw_{spec.name}"
    relation.create_view(view, replace=True)
    with using(DUCKDB):
        schema = raw_schema(spec.name)
        return session.table(view).select(
            *[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields]
        )


def read_invalid(session: Any, table: str, path: Path) -> Any:
    """The run's quarantined rows of ``table`` (all text columns: rawfiles.INVALID_FILE)."""
    relation = session._conn.read_csv(str(path), **RAW_CSV)
    view = f"rentalctl_invalid_{table_spec(table).name}"
    relation.create_view(view, replace=True)
    return session.table(view).select(*(name for name, _ in REJECTED_ROWS_COLUMNS))


def materialise(session: Any, table: str, frame: Any) -> Any:
    """``frame`` computed once into a table (the stats and both outputs read it, as
    Spark's ``persist()`` makes them share one computation), as a DataFrame over that table."""
    name = f"rentalctl_classified_{table_spec(table).name}"
    # Unoptimised SQL, as SQLFrame's own collect() runs it: sqlglot's optimiser takes seconds on
    # the transform's expressions and drops the INTEGER cast of a date difference.
    sql = frame.sql(dialect="duckdb", pretty=False, optimize=False)
    # A table of the in-memory database: SQLFrame's catalog does not see TEMP tables' columns.
    session._conn.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}")
    return session.table(name)


def release(session: Any, table: str) -> None:
    """Drop what ``read_raw`` and ``materialise`` made for ``table``."""
    name = table_spec(table).name
    session._conn.execute(f"DROP TABLE IF EXISTS rentalctl_classified_{name}")
    session._conn.execute(f"DROP VIEW IF EXISTS rentalctl_raw_{name}")
    session._conn.execute(f"DROP VIEW IF EXISTS rentalctl_invalid_{name}")


def write_parquet(lake: Lake, frame: Any, prefix: str) -> tuple[str, int]:
    """Write ``frame`` as ``<prefix>part-00000.parquet``; returns (its URI, the rows the file
    holds, counted from its footer)."""
    folder = lake_folder(lake, prefix.rstrip("/"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PART_FILE
    conn = frame.session._conn
    conn.sql(frame.sql(dialect="duckdb", pretty=False, optimize=False)).write_parquet(
        str(path), compression="snappy"
    )
    [(written,)] = conn.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchall()
    return f"file://{folder}", int(written)
