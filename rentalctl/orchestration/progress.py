"""Per-state status from a Step Functions event history: the same events whether they come live
from the local executor or from an AWS execution history. Inside the Map over tables, a state's
name is qualified by its table (``ExtractLoad[bookings]``)."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any

from rentalctl.errors import error_words


def _details(event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if key.endswith("EventDetails"):
            return value  # type: ignore[no-any-return]
    return {}


def _job_run_id(text: Any) -> str | None:
    """The Glue job run id in a task's output (Glue's JobRun, or what ResultSelector kept)."""
    try:
        doc = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    if isinstance(doc, dict):
        value = doc.get("Id") or doc.get("JobRunId")
        return str(value) if value else None
    return None


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    parse = datetime.fromisoformat
    return round(
        (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds(), 3
    )


class _ScopeTracker:
    """The states of one scope (the top level, or one Map iteration), fed that scope's events in
    order; ``states`` holds one entry per state (and table) run so far."""

    def __init__(self, tables: list[str]) -> None:
        self.tables = tables
        self.states: dict[str, dict[str, Any]] = {}
        self._item: int | None = None
        self._current: str | None = None

    def _key(self, name: str) -> str:
        if self._item is not None and self._item < len(self.tables):
            return f"{name}[{self.tables[self._item]}]"
        return name

    def feed(self, event: dict[str, Any]) -> tuple[str, str] | None:
        """Update from one event; returns (state, what happened) when a state changed."""
        kind, details = event["type"], _details(event)
        stamp = str(event.get("timestamp"))
        if kind == "MapIterationStarted":
            self._item = int(details.get("index", 0))
        elif kind in ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"):
            self._item = None
            if kind == "MapIterationAborted":  # stopped by a failed sibling: what ran, ended
                self._close_running(stamp)
        elif kind.endswith("StateEntered"):
            key = self._key(details["name"])
            self._current = key
            self.states[key] = {
                "status": "RUNNING",
                "started_at": stamp,
                "ended_at": None,
                "seconds": None,
                "attempts": 0,
                "error": None,
                "cause": None,
            }
            if kind == "FailStateEntered":
                self.states[key].update(status="FAILED", ended_at=stamp, seconds=0.0)
            return key, "started"
        elif kind == "TaskScheduled" and self._current in self.states:
            self.states[self._current]["attempts"] += 1
        elif kind == "TaskSucceeded" and self._current in self.states:
            succeeded = self.states[self._current]
            succeeded["failed"] = False
            job_run = _job_run_id(details.get("output"))
            if job_run:
                succeeded["job_run_id"] = job_run
        elif kind in ("TaskFailed", "TaskTimedOut", "MapStateFailed", "ParallelStateFailed"):
            failed = self._current if kind.startswith("Task") else self._outer()
            entry = self.states.get(failed or "")
            if failed is not None and entry is not None:
                entry.update(failed=True, error=details.get("error"), cause=details.get("cause"))
                why = error_words({"Error": details.get("error"), "Cause": details.get("cause")})
                return failed, f"attempt {entry['attempts']} failed: {_first_line(why)}"
        elif kind.endswith("StateExited"):
            key = self._key(details["name"])
            entry = self.states.get(key)
            if entry is not None:
                # A state can exit after a failure that its Catch handled: it still failed.
                status = "FAILED" if entry.pop("failed", False) else "SUCCEEDED"
                entry.update(
                    status=status, ended_at=stamp, seconds=_seconds(entry["started_at"], stamp)
                )
                return key, status.lower()
        elif kind in ("ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"):
            self._close_running(stamp)
        return None

    def _close_running(self, stamp: str) -> None:
        for entry in self.states.values():
            if entry["status"] == "RUNNING":
                entry.update(
                    status="FAILED", ended_at=stamp, seconds=_seconds(entry["started_at"], stamp)
                )

    def _outer(self) -> str | None:
        """The most recent top-level state still running (a Map or Parallel that failed)."""
        running = [k for k, v in self.states.items() if v["status"] == "RUNNING" and "[" not in k]
        return running[-1] if running else None


_EXECUTION_ENDS = ("ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut")
# A Map state's own events after its iterations: they may name an iteration's last event as
# their previous one, yet belong to the scope the Map state is in.
_MAP_ENDS = ("MapStateSucceeded", "MapStateFailed", "MapStateAborted", "MapStateExited")

Scope = tuple[str, int, int]  # a Map iteration: Map state name, index, its first event's id


class StateTracker:
    """Feed a run's history events in order; ``states`` holds one entry per state (and table).

    Map iterations run concurrently (on AWS and locally) and their events interleave. Each
    event names the one before it in its own thread of execution (``previousEventId``), so each
    iteration's events go to a tracker of their own, and ``states`` lists an iteration's states
    right after its Map state, by index. Feeding and reading are thread-safe: a local run's
    events come from the threads of its iterations.
    """

    def __init__(self, tables: list[str]) -> None:
        self.tables = tables
        self.top = _ScopeTracker(tables)
        self.iterations: dict[Scope, _ScopeTracker] = {}
        self._parent: dict[Scope, Scope | None] = {}
        self._events: dict[int, tuple[str, Scope | None]] = {}  # id -> (type, scope)
        self._map_scope: dict[str, Scope | None] = {}  # Map state name -> the scope it is in
        self._lock = threading.RLock()

    @property
    def states(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return self._states()

    def _states(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        placed: set[Scope] = set()
        for name, entry in self.top.states.items():
            out[name] = entry
            for scope in sorted(k for k in self.iterations if k[0] == name):
                out.update(self.iterations[scope].states)
                placed.add(scope)
        for scope in sorted(set(self.iterations) - placed):  # nested Maps: at the end
            out.update(self.iterations[scope].states)
        return out

    def as_list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"name": name, **entry} for name, entry in self._states().items()]

    def _scope_of(self, kind: str, event: dict[str, Any]) -> Scope | None:
        previous_kind, scope = self._events.get(int(event.get("previousEventId") or 0), ("", None))
        if kind == "MapStateEntered":
            name = str((event.get("stateEnteredEventDetails") or {}).get("name"))
            self._map_scope[name] = scope
        if kind == "MapIterationStarted":
            details = event.get("mapIterationStartedEventDetails") or {}
            inner = (str(details.get("name")), int(details.get("index", 0)), int(event["id"]))
            # The iteration belongs to the scope its Map state is in. (When iterations run one
            # after another, its previous event is the last one of the iteration before.)
            self._parent[inner] = self._map_scope.get(inner[0], scope)
            self.iterations[inner] = _ScopeTracker(self.tables)
            return inner
        if kind in _MAP_ENDS and scope is not None and not previous_kind.startswith("MapState"):
            return self._parent.get(scope)
        return scope

    def feed(self, event: dict[str, Any]) -> tuple[str, str] | None:
        with self._lock:
            return self._feed(event)

    def _feed(self, event: dict[str, Any]) -> tuple[str, str] | None:
        kind = str(event["type"])
        scope = self._scope_of(kind, event)
        self._events[int(event["id"])] = (kind, scope)
        if kind in _EXECUTION_ENDS:
            for tracker in self.iterations.values():
                tracker.feed(event)
        return (self.top if scope is None else self.iterations[scope]).feed(event)


def _first_line(text: str, width: int = 100) -> str:
    """The start of a cause, for a progress line; the whole of it ends the command."""
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= width else line[: width - 1] + "…"
