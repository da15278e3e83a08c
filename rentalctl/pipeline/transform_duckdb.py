"""The transform job's read and write edges on DuckDB (``transform.engine: duckdb``): the raw gzip
CSV files in, the classified rows materialised once (their SQL planned once per machine), Parquet
files out. The transform itself (``transform.py``) is the same code as on Spark; it runs as
DuckDB SQL through SQLFrame.

DuckDB runs in this process and reads and writes the lake folder directly: the engine needs a
``file://`` lake (an ``s3://`` lake is transformed by Spark, locally or on Glue).

Each output folder gets one ``part-00000.parquet``: DuckDB writes one file per COPY, and the
name follows Spark's ``part-*`` pattern that ``curated.data_files`` (and so the merge) lists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rentalctl.curated import REJECTED_ROWS_COLUMNS
from rentalctl.errors import ConfigError
from rentalctl.pipeline.frame_api import DUCKDB, F, using
from rentalctl.pipeline.transform import classify, rate_texts
from rentalctl.pipeline.transform_schema import raw_schema
from rentalctl.sql_cache import cached
from rentalctl.tables import table as table_spec

if TYPE_CHECKING:
    from rentalctl.adapters.lake import Lake

PART_FILE = "part-00000.parquet"
# The raw CSV dialect (rawfiles.py), every field as text. The columns are given, not detected:
# detecting them would read a sample of every file (gzip included) each time a reader is made.
RAW_CSV: dict[str, Any] = {
    "header": True,
    "auto_detect": False,
    "delimiter": ",",
    "quotechar": '"',
    "escapechar": '"',
    "allow_quoted_nulls": False,
    "compression": "gzip",
    "encoding": "utf-8",
    "strict_mode": True,
    "hive_partitioning": False,  # the run_id=... folder is no column of the rows
}
# The modules whose code writes the classification's SQL (``classified``); with the versions of
# SQLFrame and sqlglot, they make the stamp of its cache entries.
CLASSIFY_SOURCES = (
    __name__,
    "rentalctl.pipeline.transform",
    "rentalctl.pipeline.transform_record",
    "rentalctl.pipeline.transform_schema",
    "rentalctl.pipeline.frame_api",
    "rentalctl.curated",
    "rentalctl.tables",
)


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


def _text_view(session: Any, view: str, paths: list[Path], names: list[str]) -> None:
    """``view``: the CSV files ``paths`` of the raw dialect, every column (``names``) as text.
    The reader, told the columns, skips each file's header unread: the job verified the files
    against their manifest (checksums), whose columns it compared with the table's."""
    columns = dict.fromkeys(names, "VARCHAR")
    relation = session._conn.read_csv([str(p) for p in paths], columns=columns, **RAW_CSV)
    relation.create_view(view, replace=True)


def _typed(session: Any, table: str, view: str) -> Any:
    with using(DUCKDB):
        return session.table(view).select(
            *[F.col(f.name).cast(f.dataType).alias(f.name) for f in raw_schema(table).fields]
        )


def read_raw(session: Any, table: str, paths: list[Path]) -> Any:
    """The raw gzip CSV part files of one table as a typed SQLFrame DataFrame (``raw_schema``).

    The dialect is rawfiles.py's: only an unquoted empty field is NULL (a quoted ``""`` is the
    empty string), quotes are doubled, quoted text may hold newlines. Every field is read as
    text and then cast to its type: DuckDB would otherwise guess timestamp formats per file, and
    a value that does not parse fails the step (as Spark's FAILFAST does) instead of becoming
    NULL."""
    spec = table_spec(table)
    view = f"rentalctl_raw_{spec.name}"
    _text_view(session, view, paths, list(spec.column_names))
    return _typed(session, spec.name, view)


def read_invalid(session: Any, table: str, path: Path) -> Any:
    """The run's quarantined rows of ``table`` (all text columns: rawfiles.INVALID_FILE)."""
    view = f"rentalctl_invalid_{table_spec(table).name}"
    _text_view(session, view, [path], [name for name, _ in REJECTED_ROWS_COLUMNS])
    return session.table(view)


def classified(session: Any, table: str, paths: list[Path], rates: Mapping[str, Decimal]) -> Any:
    """``transform.classify`` of the raw files ``paths``, computed once into a table (the stats
    and both outputs read it, as Spark's ``persist()`` makes them share one computation), as a
    DataFrame over that table.

    SQLFrame plans the classification in Python, one to three seconds per table in every run,
    and its SQL depends only on the table, the fx rates and the code: it is kept in the SQL
    cache (``rentalctl.sql_cache``), and a later run reads it from there."""
    spec = table_spec(table)
    view = f"rentalctl_raw_{spec.name}"
    _text_view(session, view, paths, list(spec.column_names))
    key = json.dumps({"classify": spec.name, "rates": rate_texts(rates)})

    def plan() -> str:
        frame = classify(spec.name, _typed(session, spec.name, view), rates)
        # Unoptimised SQL, as SQLFrame's own collect() runs it: sqlglot's optimiser takes
        # seconds on the transform's expressions and drops the INTEGER cast of a date
        # difference.
        return str(frame.sql(dialect="duckdb", pretty=False, optimize=False))

    sql = cached(key, plan, CLASSIFY_SOURCES, ("sqlglot", "sqlframe"))
    name = f"rentalctl_classified_{spec.name}"
    # A table of the in-memory database: SQLFrame's catalog does not see TEMP tables' columns.
    session._conn.execute(f"CREATE OR REPLACE TABLE {name} AS {sql}")
    return session.table(name)


def release(session: Any, table: str) -> None:
    """Drop what ``read_raw``, ``read_invalid`` and ``classified`` made for ``table``."""
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
