"""State store port: bookmarks per source table and run records.

Bookmarks are what makes extraction exactly-once (docs/contract.md §4). A bookmark holds the last
committed watermark of a table: a timestamp as text ``YYYY-MM-DD HH:MM:SS.ffffff`` (always six
fractional digits, so text order is time order) or an integer id. ``None`` means "never
extracted": the next extract is a full one.

``commit_bookmark`` is the only way a bookmark moves during a run, and it is conditional: it
succeeds only if the stored value still equals the value the run started from, and only
forward. Anything else raises ``BookmarkConflict`` and changes nothing.

Every change of a bookmark — a run's commit, an operator's ``set`` or ``reset`` — is kept in
the store's bookmark history (old value, new value, the run or the command, host, user, time),
written in the same atomic write as the change itself: a change without its history entry, or
an entry without its change, cannot be left behind by a process that dies.

Run records are created with ``put_run`` and changed only with ``update_run``, a conditional
read-modify-write: the jobs of one run (the per-table ones run at once) update the same record,
and none may lose another's change.
"""

from __future__ import annotations

import getpass
import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Optional, Union

from rentalctl.errors import LockHeld, PipelineFailed

Watermark = Union[str, int]  # Union: evaluated at import, on Python 3.9 too
RunChange = Callable[[Optional[dict[str, Any]]], dict[str, Any]]  # Optional: Python 3.9 too


class BookmarkConflict(PipelineFailed):
    """A conditional bookmark write lost: another writer moved the bookmark, or the new value
    would move it backwards."""

    kind = "bookmark_conflict"


@dataclass(frozen=True)
class Bookmark:
    table: str
    value: Watermark | None
    updated_at: str | None = None  # ISO 8601 UTC of the last change
    run_id: str | None = None  # the run that committed it (None when seeded or reset)


@dataclass(frozen=True)
class BookmarkChange:
    """One entry of a bookmark's history."""

    table: str
    old: Watermark | None
    new: Watermark | None
    at: str  # ISO 8601 UTC
    run_id: str | None  # the run that committed it, or None for an operator's command
    command: str | None  # the operator's command (``bookmarks set bookings …``), or None
    host: str
    user: str


def actor() -> tuple[str, str]:
    """(host, user) of this process, as the bookmark history records them."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a container user without a passwd entry or login name
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return socket.gethostname(), user


def changed(table: str, expected: object, found: object) -> BookmarkConflict:
    """The error of an operator's change refused because the bookmark moved meanwhile."""
    shown = "no entry" if found is MISSING else repr(found)
    return BookmarkConflict(
        f"bookmark of {table} not changed: expected {expected!r}, found {shown}: it moved "
        "meanwhile; look again with `rentalctl bookmarks show`"
    )


def is_forward(old: Watermark | None, new: Watermark) -> bool:
    """True when ``new`` does not move a bookmark backwards."""
    if isinstance(new, bool) or isinstance(old, bool):
        return False  # bool is an int subclass, but never a watermark
    if old is None:
        return True
    if type(old) is not type(new):
        return False
    return new >= old  # type: ignore[operator]


MISSING: Any = object()  # "no entry", as distinct from an entry whose value is None


def conflict(table: str, expected: object, found: object, new: object) -> BookmarkConflict:
    """The error of a refused bookmark commit, saying which rule refused it."""
    if not is_forward(expected, new):  # type: ignore[arg-type]
        why = "the new value is behind the expected one, or of another type"
    elif found is MISSING:
        why = "the table has no bookmark entry (run `rentalctl seed-bookmarks`)"
    else:
        why = "the stored value is not the expected one (another run moved it)"
    shown = "no entry" if found is MISSING else repr(found)
    return BookmarkConflict(
        f"bookmark of {table} not moved: expected {expected!r}, found {shown}, new {new!r}: {why}"
    )


def lock_held(holder: dict[str, Any]) -> LockHeld:
    return LockHeld(
        f"another run holds the pipeline lock: run {holder.get('run_id')} "
        f"(host {holder.get('host')}, pid {holder.get('pid')}) since {holder.get('acquired_at')}, "
        f"last seen alive at {holder.get('heartbeat_at')}"
    )


class StateStore(ABC):
    #: user-facing location, e.g. sqlite:///…/state.db or dynamodb://table
    name: str

    @abstractmethod
    def ensure(self) -> bool:
        """Create the store (file and tables / DynamoDB table) if missing. True if created."""

    @abstractmethod
    def known_empty(self) -> bool:
        """True when the store is known to hold nothing yet, learnt without creating anything
        or reaching a service (a local store whose file is not there: nothing has run here).
        False when only a read can tell."""

    @abstractmethod
    def bookmarks(self) -> dict[str, Bookmark]:
        """Every bookmark entry, by table name."""

    @abstractmethod
    def seed(self, tables: Iterable[str]) -> list[str]:
        """Add an entry with value None for each table that has none; never touches an existing
        entry. Returns the tables added."""

    @abstractmethod
    def reset(self, table: str, command: str = "seed-bookmarks --reset") -> None:
        """Set a table's bookmark back to None (the next extract is full); creates the entry
        when the table has none. Recorded in the history as ``command``."""

    @abstractmethod
    def set_bookmark(
        self, table: str, expected: Watermark | None, new: Watermark, command: str
    ) -> None:
        """An operator's change: set ``table``'s bookmark from ``expected`` to ``new``, in either
        direction, atomically with its history entry (``command``, no run id). Raises
        BookmarkConflict, changing nothing, when the stored value is not ``expected`` (or the
        table has no entry)."""

    @abstractmethod
    def history(self, table: str | None = None) -> list[BookmarkChange]:
        """Every recorded change (of ``table`` only, when given), oldest first."""

    @abstractmethod
    def commit_bookmark(
        self, table: str, expected: Watermark | None, new: Watermark, run_id: str
    ) -> None:
        """Move ``table``'s bookmark from ``expected`` to ``new`` atomically, or raise
        BookmarkConflict (when the stored value differs from ``expected``, including a missing
        entry for a non-None ``expected``, or when ``new`` is behind ``expected`` or of another
        type). ``new == expected`` is allowed and only records the run. A commit this run already
        made (the stored value is ``new``, recorded by ``run_id``) succeeds, changing nothing: it
        is a retried step, or a write whose response was lost. A move to another value is
        recorded in the history with ``run_id``."""

    @abstractmethod
    def put_run(self, run: dict[str, Any]) -> None:
        """Create or replace a run record. ``run`` is JSON-serialisable and has at least
        ``run_id`` (str) and ``started_at`` (ISO 8601 UTC str)."""

    @abstractmethod
    def update_run(self, run_id: str, change: RunChange) -> dict[str, Any]:
        """Replace run ``run_id``'s record with ``change(current record, or None)``, atomically:
        if another writer changed the record in between, ``change`` is applied again to the new
        record (so it must only compute from its argument), a bounded number of times, after
        which ResourceUnavailable is raised. Returns the record stored."""

    @abstractmethod
    def get_run(self, run_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def delete_runs(self) -> int:
        """Forget every run record (``demo-data --replace``: the data they describe is gone);
        returns how many there were. Bookmarks, their history and the lock stay."""

    @abstractmethod
    def list_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The most recent runs first (by started_at, then run_id)."""

    @abstractmethod
    def acquire_lock(
        self, holder: dict[str, Any], is_stale: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any] | None:
        """Take the one pipeline lock for ``holder`` (a JSON-serialisable dict with at least
        ``run_id``), atomically. When another holder has it and ``is_stale(that holder)`` is
        False, raise LockHeld naming the holder and since when. When it is stale (its process
        died), take it over and return the stale holder; otherwise return None."""

    @abstractmethod
    def lock_holder(self) -> dict[str, Any] | None:
        """Who holds the pipeline lock now (the holder given to ``acquire_lock``), or None."""

    @abstractmethod
    def refresh_lock(self, run_id: str, heartbeat_at: str) -> None:
        """Record that ``run_id``, the holder, is alive; nothing if it does not hold the lock."""

    @abstractmethod
    def release_lock(self, run_id: str) -> None:
        """Give the lock up if ``run_id`` holds it; nothing otherwise."""

    def close(self) -> None:  # noqa: B027 - optional for adapters without connections
        """Release connections."""

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
