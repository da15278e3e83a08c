"""DuckDB warehouse: the local target. Reads the lake's files directly (the lake is a folder
here: DuckDB extensions such as httpfs are not used).

A local run loads its tables at the same time, each through its own connection. In one process
``duckdb.connect`` on the same file gives connections to one shared database, and only one
process can have the file open for writing; DuckDB's transactions are optimistic, so two that
write the same catalog entry or rows conflict and one fails. The raw loads avoid both: each
writes only its own table, and creating schemas and tables (``IF NOT EXISTS``, which still
conflicts when two connections create the same entry at once) goes through one lock.

duckdb is imported where used: `run` checks the warehouse (``check_writable``) before it needs
duckdb, and a Redshift profile never does.
"""

from __future__ import annotations

import errno
import re
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rentalctl.adapters.warehouse import (
    RAW_SCHEMA,
    Warehouse,
    check_loaded,
    raw_table_ddl,
    warehouse_type,
)
from rentalctl.errors import PipelineFailed, ResourceUnavailable
from rentalctl.tables import TableSpec, table

if TYPE_CHECKING:
    from rentalctl.adapters.lake import Lake
    from rentalctl.run.manifest import Manifest


_DDL = threading.Lock()  # one connection at a time creates schemas and tables


def check_writable(path: Path) -> None:
    """ResourceUnavailable, before a run starts, when the warehouse file or its folder cannot be
    written: a read-only or immutable (``chattr +i``) file, a read-only folder or file system.
    No retry mends that, whereas DuckDB's own error for it looks like the passing one of a file
    another process holds open (which a run does retry)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            with open(path, "r+b"):
                pass
        # DuckDB writes its journal (``<file>.wal``) next to the file.
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".rentalctl-check-"):
            pass
    except OSError as exc:
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
        raise ResourceUnavailable(
            f"DuckDB warehouse {path} cannot be written ({reason}: {exc.filename}): give this "
            "user write access to the file and its folder (an immutable file shows an `i` in "
            "`lsattr`; `chattr -i` clears it). Nothing was run"
        ) from None


def _duckdb_type(sql_type: str) -> str:
    return "VARCHAR" if sql_type.startswith("VARCHAR") else sql_type


class DuckdbWarehouse(Warehouse):
    dialect = "duckdb"
    placeholder = "?"

    def __init__(self, path: Path) -> None:
        import duckdb

        self.name = f"duckdb:///{path}"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = duckdb.connect(str(path))
        except duckdb.IOException as exc:
            # Typically another process holds the file's write lock.
            raise ResourceUnavailable(f"cannot open DuckDB warehouse {path}: {exc}") from None
        self.conn.execute("SET TimeZone = 'UTC'")

    def ensure_raw(self, tables: Sequence[TableSpec]) -> None:
        with _DDL:
            self.conn.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
            for spec in tables:
                self.conn.execute(_duck_ddl(spec))

    def load_raw(self, lake: Lake, manifest: Manifest) -> int:
        spec = table(manifest.table)
        self.ensure_raw([spec])
        target = f'{RAW_SCHEMA}."{spec.name}"'
        paths = [lake.uri(f.key) for f in manifest.files]
        with self._transaction(f"raw load of {spec.name} for run {manifest.run_id} failed"):
            self.conn.execute(f'DELETE FROM {target} WHERE "_run_id" = ?', [manifest.run_id])
            if paths:
                columns = {c.name: _duckdb_type(warehouse_type(c)) for c in spec.columns}
                names = ", ".join(f'"{c}"' for c in spec.column_names)
                self.conn.execute(
                    f"INSERT INTO {target} SELECT {names}, ?, CAST(? AS TIMESTAMP) "
                    "FROM read_csv(?, columns = ?, header = true, delim = ',', quote = '\"', "
                    "escape = '\"', nullstr = '', allow_quoted_nulls = false, auto_detect = false, "
                    "compression = 'gzip', strict_mode = true, hive_partitioning = false, "
                    "dateformat = '%Y-%m-%d')",
                    [manifest.run_id, manifest.extracted_at.rstrip("Z"), paths, columns],
                )
            (loaded,) = self.conn.execute(
                f'SELECT COUNT(*) FROM {target} WHERE "_run_id" = ?', [manifest.run_id]
            ).fetchall()[0]
            check_loaded(manifest, loaded)
        return int(loaded)

    def execute_transaction(self, statements: Sequence[str | tuple[str, Sequence[Any]]]) -> None:
        with self._transaction("warehouse transaction failed and was rolled back"):
            for statement in statements:
                sql, params = (statement, []) if isinstance(statement, str) else statement
                self.conn.execute(sql, list(params))

    @contextmanager
    def _transaction(self, failure: str) -> Iterator[None]:
        """All or nothing; a database error becomes PipelineFailed(``failure``: error)."""
        import duckdb

        self.conn.execute("BEGIN TRANSACTION")
        try:
            yield
        except duckdb.Error as exc:
            self.conn.execute("ROLLBACK")
            raise PipelineFailed(f"{failure}: {exc}") from None
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def stage_parquet(
        self, lake: Lake, keys: Sequence[str], stage: str, like: str
    ) -> list[str | tuple[str, Sequence[Any]]]:
        out: list[str | tuple[str, Sequence[Any]]] = [
            f'DROP TABLE IF EXISTS "{stage}"',
            f'CREATE TEMP TABLE "{stage}" AS SELECT * FROM {like} WHERE FALSE',
        ]
        if keys:
            paths = [lake.uri(key) for key in keys]
            out.append(
                (
                    f'INSERT INTO "{stage}" BY NAME '
                    "SELECT * FROM read_parquet(?, hive_partitioning = false)",
                    [paths],
                )
            )
        return out

    def stage_integers(
        self, lake: Lake, key: str, stage: str, columns: Sequence[str]
    ) -> list[str | tuple[str, Sequence[Any]]]:
        names = ", ".join(_quote(c) for c in columns)
        types = ", ".join(f"{_quote(c)} BIGINT" for c in columns)
        read = ", ".join(f"'{c}': 'BIGINT'" for c in columns)  # names from code, not input
        return [
            f'DROP TABLE IF EXISTS "{stage}"',
            f'CREATE TEMP TABLE "{stage}" ({types})',
            (
                f'INSERT INTO "{stage}" SELECT {names} FROM read_csv(?, header = true, '
                f"hive_partitioning = false, auto_detect = false, columns = {{{read}}})",
                [lake.uri(key)],
            ),
        ]

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, list(params)).fetchall()

    def close(self) -> None:
        self.conn.close()


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _duck_ddl(spec: TableSpec) -> str:
    # DuckDB's VARCHAR has no length; the Redshift lengths are kept for the Redshift DDL only.

    return re.sub(r"VARCHAR\(\d+\)", "VARCHAR", raw_table_ddl(spec))
