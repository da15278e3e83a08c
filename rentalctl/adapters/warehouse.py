"""Warehouse port: the raw, curated and presentation layers (DuckDB locally, Redshift on AWS).

Raw layer: ``raw.<table>`` holds the source columns with their source types plus ``_run_id``
and ``_extracted_at``; every extracted row version, once per run. Loading a run replaces that
run's rows in one transaction, so a retried or repeated load never duplicates, and the rows of a
run that failed before committing are discarded (``rentalctl.pipeline.settle``), because the
next run loads them again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rentalctl.curated import REDSHIFT_VARCHAR_MAX, redshift_type
from rentalctl.errors import PipelineFailed
from rentalctl.tables import Column, Kind, TableSpec

if TYPE_CHECKING:
    from rentalctl.adapters.lake import Lake
    from rentalctl.run.manifest import Manifest

RAW_SCHEMA = "raw"
META_COLUMNS = (("_run_id", "VARCHAR(64)"), ("_extracted_at", "TIMESTAMP"))


def warehouse_type(column: Column) -> str:
    """The warehouse type of a source column, spelled for Redshift: text lengths in bytes, as
    Redshift counts them (DuckDB ignores VARCHAR lengths)."""
    kind = column.kind
    if kind is Kind.INTEGER:
        return "BIGINT" if column.mysql_type.upper() == "BIGINT" else "INTEGER"
    if kind is Kind.DECIMAL:
        precision, scale = column.precision_scale or (18, 2)
        return f"DECIMAL({precision},{scale})"
    if kind is Kind.DATETIME:
        return "TIMESTAMP"
    if kind is Kind.DATE:
        return "DATE"
    if column.mysql_type.upper() == "TEXT":
        return f"VARCHAR({REDSHIFT_VARCHAR_MAX})"  # MySQL's TEXT holds at most 65535 bytes
    return redshift_type(column.mysql_type.upper())  # VARCHAR(n): n characters in MySQL


def raw_table_ddl(spec: TableSpec, quote: Any = lambda s: f'"{s}"') -> str:
    cols = [f"{quote(c.name)} {warehouse_type(c)}" for c in spec.columns]
    cols += [f"{quote(name)} {typ}" for name, typ in META_COLUMNS]
    body = ",\n    ".join(cols)
    return f"CREATE TABLE IF NOT EXISTS {RAW_SCHEMA}.{quote(spec.name)} (\n    {body}\n)"


def check_loaded(manifest: Manifest, loaded: int) -> None:
    """A load must hold exactly the rows its manifest lists: anything else means the lake's files
    were changed after the extract, and the load is rolled back."""
    if loaded != manifest.rows:
        raise PipelineFailed(
            f"raw load of {manifest.table} for run {manifest.run_id} loaded {loaded} rows, "
            f"the manifest lists {manifest.rows}"
        )


class Warehouse(ABC):
    name: str
    #: the sqlglot dialect of this warehouse's SQL: "duckdb" or "redshift"
    dialect: str
    #: how a bound parameter is written in this warehouse's SQL
    placeholder: str

    @abstractmethod
    def execute_transaction(self, statements: Sequence[str | tuple[str, Sequence[Any]]]) -> None:
        """Run statements (SQL, or (SQL, parameters)) in one transaction: all or nothing."""

    @abstractmethod
    def ensure_raw(self, tables: Sequence[TableSpec]) -> None:
        """Create the raw schema and tables if missing."""

    @abstractmethod
    def load_raw(self, lake: Lake, manifest: Manifest) -> int:
        """Replace ``manifest.run_id``'s rows of ``raw.<table>`` with the manifest's files, in
        one transaction. Returns the rows loaded."""

    def discard_raw(self, spec: TableSpec, run_id: str) -> int:
        """Delete ``run_id``'s rows of ``raw.<table>`` in one transaction; returns how many."""
        self.ensure_raw([spec])
        target = f'{RAW_SCHEMA}."{spec.name}"'
        where = f'"_run_id" = {self.placeholder}'
        (count,) = self.query(f"SELECT COUNT(*) FROM {target} WHERE {where}", [run_id])[0]
        self.execute_transaction([(f"DELETE FROM {target} WHERE {where}", [run_id])])
        return int(count)

    @abstractmethod
    def stage_parquet(
        self, lake: Lake, keys: Sequence[str], stage: str, like: str
    ) -> list[str | tuple[str, Sequence[Any]]]:
        """Statements that create the temporary table ``stage`` with the columns of the table
        ``like`` and fill it with the Parquet files at ``keys`` (columns matched by name)."""

    @abstractmethod
    def stage_integers(
        self, lake: Lake, key: str, stage: str, columns: Sequence[str]
    ) -> list[str | tuple[str, Sequence[Any]]]:
        """Statements that create the temporary table ``stage`` with BIGINT ``columns`` and
        fill it with the file at ``key`` (gzip CSV, one header row, those columns in order)."""

    def tables_present(self, schema: str, names: Sequence[str]) -> set[str]:
        """Which of the tables ``names`` exist in ``schema``."""
        p = self.placeholder
        marks = ", ".join([p] * len(names))
        rows = self.query(
            "SELECT table_name FROM information_schema.tables "
            f"WHERE table_schema = {p} AND table_name IN ({marks})",
            [schema, *names],
        )
        return {str(name) for (name,) in rows}

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
