"""MySQL / Aurora MySQL source over pymysql.

Extracts run in one REPEATABLE READ transaction with a consistent snapshot, and stream through an
unbuffered server-side cursor so memory stays flat whatever the table size.

A connection that breaks during a read (network drop, server restart or failover, the session
killed, a lock or statement timeout) is ResourceUnavailable: the same extract can succeed when
run again, and the state machine retries it. Any other database error propagates unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any

import pymysql
import pymysql.cursors

from rentalctl import resources, urls
from rentalctl.adapters.source import Snapshot, Source
from rentalctl.errors import ResourceUnavailable
from rentalctl.tables import TableSpec

_UNKNOWN_DATABASE = 1049

# Errors after which the same read can succeed on a new connection: the client lost the server
# (CR_* codes, 2000-2999) or the server cut the session or statement off for reasons outside it.
_TRANSIENT = frozenset(
    {
        2002,  # CR_CONNECTION_ERROR
        2003,  # CR_CONN_HOST_ERROR
        2006,  # CR_SERVER_GONE_ERROR: MySQL server has gone away
        2013,  # CR_SERVER_LOST: Lost connection to MySQL server during query
        2055,  # CR_SERVER_LOST_EXTENDED
        1040,  # ER_CON_COUNT_ERROR: too many connections
        1053,  # ER_SERVER_SHUTDOWN
        1152,  # ER_ABORTING_CONNECTION
        1158,  # ER_NET_READ_ERROR
        1159,  # ER_NET_READ_INTERRUPTED
        1160,  # ER_NET_ERROR_ON_WRITE
        1161,  # ER_NET_WRITE_INTERRUPTED
        1205,  # ER_LOCK_WAIT_TIMEOUT
        1213,  # ER_LOCK_DEADLOCK
        1317,  # ER_QUERY_INTERRUPTED (KILL QUERY)
        1927,  # ER_CONNECTION_KILLED (MariaDB: KILL)
        1969,  # ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
        3024,  # ER_QUERY_TIMEOUT (MySQL max_execution_time)
        4031,  # ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8: idle session closed)
    }
)


def _is_transient(exc: pymysql.err.MySQLError) -> bool:
    if isinstance(exc, pymysql.err.InterfaceError):
        return True  # the connection is closed: nothing can be sent on it
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    return isinstance(exc, pymysql.err.OperationalError) and code in _TRANSIENT


def _reason(exc: pymysql.err.MySQLError) -> str:
    if len(exc.args) > 1 and exc.args[1]:
        return f"{exc.args[1]} ({exc.args[0]})"
    return "the connection is closed"


@contextmanager
def _connection_errors(where: str, doing: str) -> Iterator[None]:
    """A broken connection or a statement cut off becomes ResourceUnavailable naming the
    source and what was being done; other errors are left as they are."""
    try:
        yield
    except pymysql.err.MySQLError as exc:
        if not _is_transient(exc):
            raise
        raise ResourceUnavailable(
            f"lost the connection to {where} while {doing}: {_reason(exc)}"
        ) from exc


def _drop_unbuffered(cursor: pymysql.cursors.SSCursor) -> None:
    """Close an unbuffered cursor whose connection is gone. pymysql would try to read the rest
    of the result from the closed socket (AttributeError, also later from the result's
    ``__del__``), so the result is marked finished first."""
    result = getattr(cursor, "_result", None)
    if result is not None:
        result.unbuffered_active = False
    cursor.connection = None  # type: ignore[assignment]


def schema_statements() -> list[str]:
    """The statements of the shipped MySQL DDL (mysql/schema.sql)."""
    text = resources.shipped("mysql/schema.sql").read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


class _MysqlSnapshot(Snapshot):
    def __init__(self, conn: pymysql.connections.Connection, where: str) -> None:
        self._conn = conn
        self._where = where

    def _errors(self, doing: str) -> AbstractContextManager[None]:
        return _connection_errors(self._where, doing)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._errors("reading"), self._conn.cursor() as cur:
            cur.execute(sql, tuple(params))
            return list(cur.fetchall())

    def stream(
        self, sql: str, params: Sequence[Any], batch_size: int, *, lenient: bool = False
    ) -> Iterator[list[tuple[Any, ...]]]:
        # ``lenient`` changes nothing: MySQL checks text against the column's character set on
        # insert, and the driver decodes what it stored.
        cur = self._conn.cursor(pymysql.cursors.SSCursor)
        rows = 0
        try:
            with self._errors("starting to stream rows"):
                cur.execute(sql, tuple(params))
            while True:
                with self._errors(f"streaming rows (after {rows:,} rows)"):
                    batch = cur.fetchmany(batch_size)
                if not batch:
                    break
                rows += len(batch)
                yield list(batch)
        finally:
            if self._conn.open:
                cur.close()  # reads what is left of the result, so the connection is usable
            else:
                _drop_unbuffered(cur)


class MysqlSource(Source):
    placeholder = "%s"

    def __init__(self, url: urls.MysqlURL, *, password: str, create: bool = False) -> None:
        self.name = str(url)
        self._where = where = (
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
        with _connection_errors(where, "setting up the session"), self._conn.cursor() as cur:
            # Extracts read timestamps as they are stored: no session time-zone conversion.
            cur.execute("SET time_zone = '+00:00'")

    def quote(self, identifier: str) -> str:
        return "`" + identifier.replace("`", "``") + "`"

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        with _connection_errors(self._where, "starting a snapshot"), self._conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        try:
            yield _MysqlSnapshot(self._conn, self._where)
        finally:
            # A read-only transaction: on a lost connection there is nothing to undo, and the
            # error that lost it (raised from the block) is the one to report.
            if self._conn.open:
                with suppress(pymysql.err.MySQLError):
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
