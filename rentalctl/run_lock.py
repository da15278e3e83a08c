"""One run at a time: the pipeline lock, held by the process that runs the pipeline.

A holder describes itself (run id, host, pid, the pid's start time, the machine's boot id) and
sends a heartbeat while it runs. Another runner takes the lock over only when the holder is
provably gone: on the same machine, its process no longer exists (or the pid now belongs to
another process, or the machine rebooted since); on another machine, its heartbeat is older
than ``STALE_AFTER``. Otherwise the second runner stops with LockHeld (exit 4).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rentalctl.adapters.state import StateStore

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30
STALE_AFTER = timedelta(minutes=10)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux); tells a reused pid apart."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def describe_self(run_id: str, pid: int | None = None) -> dict[str, Any]:
    """The lock holder record of ``run_id`` run by this process (or by its child ``pid``)."""
    now = _now().isoformat(timespec="seconds")
    pid = pid or os.getpid()
    return {
        "run_id": run_id,
        "host": socket.gethostname(),
        "pid": pid,
        "process_start": _process_start(pid),
        "boot_id": _boot_id(),
        "acquired_at": now,
        "heartbeat_at": now,
    }


def is_stale(holder: dict[str, Any], now: datetime | None = None) -> bool:
    """True when the holder cannot be running any more."""
    if holder.get("host") == socket.gethostname():
        if holder.get("boot_id") and holder.get("boot_id") != _boot_id():
            return True  # the machine rebooted since the lock was taken
        pid = int(holder.get("pid") or 0)
        if pid <= 0 or not _alive(pid):
            return True
        started = holder.get("process_start")
        return bool(started) and started != _process_start(pid)  # the pid was reused
    try:
        beat = datetime.fromisoformat(str(holder.get("heartbeat_at")))
    except ValueError:
        return True
    return (now or _now()) - beat > STALE_AFTER


class PipelineLock:
    """``with PipelineLock(state, run_id):`` holds the lock (with a heartbeat) for the block."""

    def __init__(
        self,
        state: StateStore,
        run_id: str,
        holder_is_stale: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        self.state, self.run_id = state, run_id
        # On AWS a run's holder is alive while its execution runs: begin.holder_is_stale.
        self._is_stale = holder_is_stale or is_stale
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.recovered: dict[str, Any] | None = None

    def __enter__(self) -> PipelineLock:
        # A holder with this very run id is `run --no-wait` handing the lock to this process.
        self.recovered = self.state.acquire_lock(
            describe_self(self.run_id),
            lambda holder: holder.get("run_id") == self.run_id or self._is_stale(holder),
        )
        if self.recovered and self.recovered.get("run_id") == self.run_id:
            self.recovered = None
        if self.recovered:
            log.warning(
                "recovered the pipeline lock from run %s (pid %s on %s), which is no longer "
                "running",
                self.recovered.get("run_id"),
                self.recovered.get("pid"),
                self.recovered.get("host"),
            )
        self._thread = threading.Thread(target=self._beat, name="rentalctl-lock", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self.state.refresh_lock(self.run_id, _now().isoformat(timespec="seconds"))
            except Exception:  # a missed beat is not fatal; the next one may succeed
                log.warning("could not refresh the pipeline lock", exc_info=True)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.state.release_lock(self.run_id)
