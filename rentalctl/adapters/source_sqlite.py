"""SQLite source: the embedded default for local runs and demos."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rentalctl import urls
from rentalctl.adapters.source import Snapshot, Source, UnreadableValue
from rentalctl.errors import ResourceUnavailable
from rentalctl.tables import TableSpec


class _SqliteSnapshot(Snapshot):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._conn.execute(sql, tuple(params)).fetchall()

    def stream(
        self, sql: str, params: Sequence[Any], batch_size: int, *, lenient: bool = False
    ) -> Iterator[list[tuple[Any, ...]]]:
        if lenient:
            self._conn.text_factory = _text_or_bytes
        cursor = self._conn.execute(sql, tuple(params))
        try:
            while True:
                try:
                    batch = cursor.fetchmany(batch_size)
                except sqlite3.OperationalError as exc:
                    # "Could not decode to UTF-8 column 'title' with text '...'": bad data, not
                    # a database failure; the message names the column and the value.
                    if "decode" not in str(exc):
                        raise
                    raise UnreadableValue(f"a value is not UTF-8 text ({exc})") from None
                if not batch:
                    break
                yield batch
        finally:
            cursor.close()
            self._conn.text_factory = str


def _text_or_bytes(data: bytes) -> str | bytes:
    """SQLite text as str, or as its bytes when they are not UTF-8 (SQLite stores any bytes)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


class SqliteSource(Source):
    placeholder = "?"

    def __init__(self, url: urls.SqliteURL, *, create: bool = False) -> None:
        self.name = str(url)
        path = url.path
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.is_file():
            raise ResourceUnavailable(
                f"source database not found: {path} "
                "(create demo data with `rentalctl demo-data`, or set RENTALCTL_SOURCE_URL)"
            )
        mode = "rwc" if create else "rw"
        try:
            # Autocommit mode: transactions are opened explicitly, so a snapshot is one BEGIN.
            self._conn = sqlite3.connect(
                f"file:{path}?mode={mode}", uri=True, isolation_level=None, timeout=30
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.Error as exc:
            raise ResourceUnavailable(f"cannot open SQLite source {path}: {exc}") from None

    def quote(self, identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    def integer_condition(self, column: str) -> str:
        return f"typeof({column}) = 'integer'"  # a SQLite column stores any type

    def remainder(self, dividend: str, divisor: int) -> str:
        return f"({dividend} % {divisor})"  # SQLite has MOD only when built with math functions

    def missing_columns(self, snap: Snapshot, spec: TableSpec) -> list[str]:
        # Asked of the catalogue, not by a probing SELECT: SQLite reads a double-quoted name
        # that matches no column as a string literal, so a dropped column would not fail a
        # query but read as its own name in every row.
        rows = snap.query("SELECT name FROM pragma_table_info(?)", [spec.name])
        present = {str(name).lower() for (name,) in rows}
        if not present:  # no such table: the driver's own error says so
            snap.query(f"SELECT 1 FROM {self.quote(spec.name)} WHERE 1 = 0")
        return [c for c in spec.column_names if c.lower() not in present]

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        # In WAL mode a read transaction sees one snapshot from its first read to its end.
        self._conn.execute("BEGIN")
        try:
            yield _SqliteSnapshot(self._conn)
        finally:
            self._conn.execute("ROLLBACK")

    def ensure_schema(self, tables: Iterable[TableSpec]) -> None:
        self._conn.executescript("".join(t.sqlite_ddl() for t in tables))

    def write(self, statements: Iterable[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, rows in statements:
                self._conn.executemany(sql, rows)
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()
