"""MySQL / Aurora MySQL source over pymysql.

Extracts run in one REPEATABLE READ transaction with a consistent snapshot, and stream through an
unbuffered server-side cursor so memory stays flat whatever the table size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import pymysql
import pymysql.cursors

from rentalctl import resources, urls
from rentalctl.adapters.source import Snapshot, Source
from rentalctl.errors import ResourceUnavailable
from rentalctl.tables import TableSpec

_UNKNOWN_DATABASE = 1049


def schema_statements() -> list[str]:
    """The statements of the shipped MySQL DDL (mysql/schema.sql)."""
    text = resources.shipped("mysql/schema.sql").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class _MysqlSnapshot(Snapshot):
    def __init__(self, conn: pymysql.connections.Connection) -> None:
        self._conn = conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._conn.cursor() as cur:
            cur.execute(sql, tuple(params))
            return list(cur.fetchall())

    def stream(
        self, sql: str, params: Sequence[Any], batch_size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        with self._conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(sql, tuple(params))
            while batch := cur.fetchmany(batch_size):
                yield list(batch)


class MysqlSource(Source):
    placeholder = "%s"

    def __init__(self, url: urls.MysqlURL, *, password: str, create: bool = False) -> None:
        self.name = str(url)
        where = (
            f"MySQL source at {url.host}:{url.port}, database {url.database!r}, user {url.user!r}"
        )
        kwargs: dict[str, Any] = dict(
            host=url.host,
            port=url.port,
            user=url.user,
            password=password,
            charset="utf8mb4",
            connect_timeout=10,
            read_timeout=3600,
            autocommit=True,
        )
        try:
            try:
                self._conn = pymysql.connect(database=url.database, **kwargs)
            except pymysql.err.OperationalError as exc:
                if not (create and exc.args and exc.args[0] == _UNKNOWN_DATABASE):
                    raise
                self._conn = pymysql.connect(**kwargs)
                with self._conn.cursor() as cur:
                    cur.execute(
                        f"CREATE DATABASE IF NOT EXISTS {self.quote(url.database)} "
                        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                    )
                    cur.execute(f"USE {self.quote(url.database)}")
        except pymysql.err.MySQLError as exc:
            # pymysql's messages name the user and host but never the password.
            reason = exc.args[1] if len(exc.args) > 1 else str(exc)
            raise ResourceUnavailable(f"cannot connect to {where}: {reason}") from None
        with self._conn.cursor() as cur:
            # Extracts read timestamps as they are stored: no session time-zone conversion.
            cur.execute("SET time_zone = '+00:00'")

    def quote(self, identifier: str) -> str:
        return "`" + identifier.replace("`", "``") + "`"

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        with self._conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        try:
            yield _MysqlSnapshot(self._conn)
        finally:
            self._conn.rollback()

    def ensure_schema(self, tables: Iterable[TableSpec]) -> None:
        wanted = {t.name for t in tables}
        with self._conn.cursor() as cur:
            for statement in schema_statements():
                if any(f"`{name}`" in statement.split("(")[0] for name in wanted):
                    cur.execute(statement)

    def write(self, statements: Iterable[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        self._conn.begin()
        try:
            with self._conn.cursor() as cur:
                for sql, rows in statements:
                    cur.executemany(sql, [tuple(r) for r in rows])
        except BaseException:
            self._conn.rollback()
            raise
        self._conn.commit()

    def close(self) -> None:
        with suppress(pymysql.err.Error):
            self._conn.close()
