"""SQLite state store: bookmarks and run records in one local file (local runs and demos).

Every write opens with ``BEGIN IMMEDIATE``, so writers in other processes (or threads with their
own connection) queue on the database lock instead of interleaving: the loser of two commits
from the same bookmark value then runs its conditional UPDATE against the winner's value, matches
no row, and gets BookmarkConflict.

A commit refused because the bookmark already holds exactly the value this run is committing,
recorded by this same run, is this run's own earlier commit (the state machine retrying a
`publish` job whose bookmark commit had moved some bookmarks before it failed): it succeeds,
changing nothing.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rentalctl.adapters.state import (
    MISSING,
    Bookmark,
    BookmarkChange,
    RunChange,
    StateStore,
    Watermark,
    actor,
    changed,
    conflict,
    is_forward,
    lock_held,
)
from rentalctl.errors import ResourceUnavailable

# A watermark's type must round-trip exactly (an id stays an int, a timestamp stays text), so
# each type has its own column rather than relying on SQLite's loose column affinity.
_SCHEMA = (
    "CREATE TABLE bookmarks (table_name TEXT PRIMARY KEY, value_text TEXT, value_int INTEGER,"
    " updated_at TEXT, run_id TEXT)",
    "CREATE TABLE runs (run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, doc TEXT NOT NULL)",
    "CREATE INDEX runs_started_at ON runs (started_at)",
)
# Created on first use too (CREATE … IF NOT EXISTS), so stores made before it work.
_HISTORY = (
    "CREATE TABLE IF NOT EXISTS bookmark_history (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " table_name TEXT NOT NULL, old_text TEXT, old_int INTEGER, new_text TEXT, new_int INTEGER,"
    " at TEXT NOT NULL, run_id TEXT, command TEXT, host TEXT NOT NULL, user TEXT NOT NULL)"
)
_UPSERT_RUN = (
    "INSERT INTO runs (run_id, started_at, doc) VALUES (?, ?, ?) ON CONFLICT (run_id)"
    " DO UPDATE SET started_at = excluded.started_at, doc = excluded.doc"
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _value(text: str | None, integer: int | None) -> Watermark | None:
    return text if text is not None else integer


def _columns(value: Watermark | None) -> tuple[str | None, int | None]:
    """(value_text, value_int) for a watermark; bool is an int subclass but never a watermark."""
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"a watermark is a str or an int, not {type(value).__name__}")
    return (value, None) if isinstance(value, str) else (None, value)


class SqliteStateStore(StateStore):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = f"sqlite:///{path}"
        self._conn: sqlite3.Connection | None = None
        # One connection per store, shared by threads that share the store: the lock keeps one
        # transaction at a time on it (sqlite3 connections track a single transaction state).
        self._lock = threading.RLock()

    def known_empty(self) -> bool:
        return not self.path.exists()

    def _missing(self) -> ResourceUnavailable:
        return ResourceUnavailable(
            f"state store not found at {self.path}: run `rentalctl seed-bookmarks`"
        )

    def _connect(self, create: bool = False) -> sqlite3.Connection:
        if self._conn is None:
            # Check first: mode=rw would fail too, but with SQLite's vaguer message.
            if not create and not self.path.is_file():
                raise self._missing()
            mode = "rwc" if create else "rw"
            self._conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode={mode}",
                uri=True,
                isolation_level=None,  # autocommit: transactions are explicit BEGINs
                timeout=30,
                check_same_thread=False,
            )
        return self._conn

    @contextmanager
    def _guard(self, create: bool = False) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, with operational SQLite errors made user-facing.
        Programming and integrity errors are bugs and stay as they are."""
        with self._lock:
            try:
                yield self._connect(create)
            except sqlite3.DatabaseError as exc:
                if type(exc) not in (sqlite3.OperationalError, sqlite3.DatabaseError):
                    raise
                if "no such table" in str(exc):
                    raise self._missing() from exc
                raise ResourceUnavailable(f"state store {self.path} unusable: {exc}") from exc

    @staticmethod
    @contextmanager
    def _write(conn: sqlite3.Connection) -> Iterator[None]:
        # IMMEDIATE takes the write lock now, not at the first write, so a read made inside the
        # transaction cannot be invalidated by another writer before our UPDATE.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def ensure(self) -> bool:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._guard(create=True) as conn:
                # WAL lets readers run beside the writer; it is a property of the file, and it
                # cannot be switched inside a transaction.
                conn.execute("PRAGMA journal_mode=WAL")
                with self._write(conn):
                    found = conn.execute(
                        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'bookmarks'"
                    ).fetchone()
                    if found:
                        return False
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute(_HISTORY)
                    return True

    def bookmarks(self) -> dict[str, Bookmark]:
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT table_name, value_text, value_int, updated_at, run_id FROM bookmarks"
            ).fetchall()
        return {
            table: Bookmark(table, text if text is not None else integer, updated_at, run_id)
            for table, text, integer, updated_at, run_id in rows
        }

    def seed(self, tables: Iterable[str]) -> list[str]:
        added: list[str] = []
        now = _now()
        with self._guard() as conn, self._write(conn):
            for table in dict.fromkeys(tables):  # keeps order, drops repeats
                cursor = conn.execute(
                    "INSERT INTO bookmarks (table_name, updated_at) VALUES (?, ?)"
                    " ON CONFLICT (table_name) DO NOTHING",
                    (table, now),
                )
                if cursor.rowcount == 1:
                    added.append(table)
        return added

    @staticmethod
    def _stored(conn: sqlite3.Connection, table: str) -> tuple[object, str | None]:
        """The stored value (MISSING without an entry) and the run that committed it."""
        row = conn.execute(
            "SELECT value_text, value_int, run_id FROM bookmarks WHERE table_name = ?", (table,)
        ).fetchone()
        return (MISSING, None) if row is None else (_value(row[0], row[1]), row[2])

    @staticmethod
    def _swap(
        conn: sqlite3.Connection,
        table: str,
        expected: Watermark | None,
        new: Watermark,
        at: str,
        run_id: str | None,
    ) -> bool:
        """Set the bookmark to ``new`` if it still holds ``expected``. IS compares NULL-safely,
        and matching both columns also matches the type."""
        cursor = conn.execute(
            "UPDATE bookmarks SET value_text = ?, value_int = ?, updated_at = ?, run_id = ?"
            " WHERE table_name = ? AND value_text IS ? AND value_int IS ?",
            (*_columns(new), at, run_id, table, *_columns(expected)),
        )
        return cursor.rowcount == 1

    def reset(self, table: str, command: str = "seed-bookmarks --reset") -> None:
        # An upsert: the contract is the end state ("None"), whether or not an entry existed.
        now = _now()
        with self._guard() as conn, self._write(conn):
            found, _ = self._stored(conn, table)
            conn.execute(
                "INSERT INTO bookmarks (table_name, updated_at) VALUES (?, ?)"
                " ON CONFLICT (table_name) DO UPDATE SET value_text = NULL, value_int = NULL,"
                " updated_at = excluded.updated_at, run_id = NULL",
                (table, now),
            )
            old = None if found is MISSING else found
            self._record(conn, table, old, None, now, None, command)  # type: ignore[arg-type]

    def set_bookmark(
        self, table: str, expected: Watermark | None, new: Watermark, command: str
    ) -> None:
        now = _now()
        with self._guard() as conn, self._write(conn):
            if not self._swap(conn, table, expected, new, now, None):
                raise changed(table, expected, self._stored(conn, table)[0])  # rolls back
            self._record(conn, table, expected, new, now, None, command)

    @staticmethod
    def _record(
        conn: sqlite3.Connection,
        table: str,
        old: Watermark | None,
        new: Watermark | None,
        at: str,
        run_id: str | None,
        command: str | None,
    ) -> None:
        """The history entry of a change, inside the change's own transaction."""
        conn.execute(_HISTORY)
        conn.execute(
            "INSERT INTO bookmark_history (table_name, old_text, old_int, new_text, new_int, at,"
            " run_id, command, host, user) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (table, *_columns(old), *_columns(new), at, run_id, command, *actor()),
        )

    def history(self, table: str | None = None) -> list[BookmarkChange]:
        with self._guard() as conn:
            known = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'bookmark_history'"
            ).fetchone()
            if not known:
                conn.execute("SELECT 1 FROM bookmarks LIMIT 0")  # a missing store says so
                return []
            rows = conn.execute(
                "SELECT table_name, old_text, old_int, new_text, new_int, at, run_id, command,"
                " host, user FROM bookmark_history WHERE ? IS NULL OR table_name = ?"
                " ORDER BY seq",
                (table, table),
            ).fetchall()
        return [
            BookmarkChange(t, _value(ot, oi), _value(nt, ni), at, run_id, command, host, user)
            for t, ot, oi, nt, ni, at, run_id, command, host, user in rows
        ]

    def commit_bookmark(
        self, table: str, expected: Watermark | None, new: Watermark, run_id: str
    ) -> None:
        _columns(new)  # a value that is no watermark is a bug: TypeError, not a conflict
        now = _now()
        with self._guard() as conn, self._write(conn):
            if is_forward(expected, new) and self._swap(conn, table, expected, new, now, run_id):
                if expected != new:  # a commit that moves nothing is not a change
                    self._record(conn, table, expected, new, now, run_id, None)
                return
            found, by_run = self._stored(conn, table)
            if by_run == run_id and type(found) is type(new) and found == new:
                return  # this run committed exactly this before: a retried step
            raise conflict(table, expected, found, new)  # rolls back: nothing changed

    def put_run(self, run: dict[str, Any]) -> None:
        doc = json.dumps(run, sort_keys=True)
        with self._guard() as conn, self._write(conn):
            conn.execute(_UPSERT_RUN, (run["run_id"], run["started_at"], doc))

    def update_run(self, run_id: str, change: RunChange) -> dict[str, Any]:
        # The write lock, taken before the read, makes the read-modify-write one step: no other
        # writer (thread or process) can come in between, so there is nothing to retry.
        with self._guard() as conn, self._write(conn):
            row = conn.execute("SELECT doc FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            run = change(None if row is None else json.loads(row[0]))
            conn.execute(_UPSERT_RUN, (run_id, run["started_at"], json.dumps(run, sort_keys=True)))
        return run

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        with self._guard() as conn:
            row = conn.execute("SELECT doc FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def delete_runs(self) -> int:
        with self._guard() as conn, self._write(conn):
            return int(conn.execute("DELETE FROM runs").rowcount)

    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT doc FROM runs ORDER BY started_at DESC, run_id DESC LIMIT ?",
                (max(limit, 0),),  # SQLite reads a negative LIMIT as "no limit"
            ).fetchall()
        return [json.loads(doc) for (doc,) in rows]

    # The lock lives in its own table, created on first use so stores made before it work.
    _LOCKS = "CREATE TABLE IF NOT EXISTS locks (name TEXT PRIMARY KEY, holder TEXT NOT NULL)"

    def acquire_lock(
        self, holder: dict[str, Any], is_stale: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        with self._guard() as conn, self._write(conn):
            conn.execute(self._LOCKS)
            row = conn.execute("SELECT holder FROM locks WHERE name = 'pipeline'").fetchone()
            current = json.loads(row[0]) if row else None
            other = current is not None and current.get("run_id") != holder["run_id"]
            if other and not is_stale(current):  # type: ignore[arg-type]
                raise lock_held(current)  # type: ignore[arg-type]
            conn.execute(
                "INSERT OR REPLACE INTO locks (name, holder) VALUES ('pipeline', ?)",
                (json.dumps(holder, sort_keys=True),),
            )
        return dict(current) if other and current else None

    def lock_holder(self) -> dict[str, Any] | None:
        with self._guard() as conn, self._write(conn):
            conn.execute(self._LOCKS)
            row = conn.execute("SELECT holder FROM locks WHERE name = 'pipeline'").fetchone()
        return dict(json.loads(row[0])) if row else None

    def refresh_lock(self, run_id: str, heartbeat_at: str) -> None:
        with self._guard() as conn, self._write(conn):
            conn.execute(self._LOCKS)
            row = conn.execute("SELECT holder FROM locks WHERE name = 'pipeline'").fetchone()
            if row and json.loads(row[0]).get("run_id") == run_id:
                holder = {**json.loads(row[0]), "heartbeat_at": heartbeat_at}
                conn.execute(
                    "UPDATE locks SET holder = ? WHERE name = 'pipeline'",
                    (json.dumps(holder, sort_keys=True),),
                )

    def release_lock(self, run_id: str) -> None:
        with self._guard() as conn, self._write(conn):
            conn.execute(self._LOCKS)
            conn.execute(
                "DELETE FROM locks "
                "WHERE name = 'pipeline' AND json_extract(holder, '$.run_id') = ?",
                (run_id,),
            )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
