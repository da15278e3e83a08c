"""The clock the local executor reads and sleeps on: the real one, or one that never sleeps, so
tests of retries and timings run at once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock:
    """A clock that never sleeps: ``sleep`` records the delay and moves time forward."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2025, 1, 1, tzinfo=UTC)
        self.sleeps: list[float] = []
        self._lock = threading.Lock()  # Map iterations share the clock

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.current += timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        """Time passing without a sleep (a handler pretending to work long)."""
        with self._lock:
            self.current += timedelta(seconds=seconds)
