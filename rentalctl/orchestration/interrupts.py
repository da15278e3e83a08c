"""Ctrl-C and SIGTERM while this process runs the pipeline: the run is stopped and recorded as
cancelled, not torn apart.

Python turns Ctrl-C into an exception raised wherever the main thread happens to be — inside a
py4j socket read, a DuckDB call or a state-store write — which leaves the engine and the run
record half-done. So the run goes on another thread, and the main thread only waits and
handles the signals: it asks the run to stop (``StopRequest``; the executor runs no further
state) and interrupts the engine's running query, and the run then closes its record CANCELLED
and settles itself. The JVM ignores Ctrl-C (pyspark starts it so), so it does not die under the
run's feet.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from rentalctl import spark
from rentalctl.orchestration.cancel import SIGNAL_NAMES, StopRequest

T = TypeVar("T")

# A second signal this long after the first ends the process at once (the operator insists);
# sooner, it is taken as the same request (Ctrl-C pressed twice).
FORCE_AFTER_SECONDS = 2.0


def run_stoppable(work: Callable[[], T], stop: StopRequest) -> T:
    """``work()`` on a thread, stopped through ``stop`` on SIGINT or SIGTERM; its result."""
    if threading.current_thread() is not threading.main_thread():
        return work()  # only the main thread receives signals (a caller embedding the CLI)
    box: dict[str, Any] = {}
    first: list[float] = []

    def target() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:  # handed to the main thread, which raises it
            box["error"] = exc

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.requested:
            if time.monotonic() - first[0] > FORCE_AFTER_SECONDS:
                # Nothing is recorded: the next run finds the lock's holder gone and settles
                # this run (Rentalctl.Abandoned).
                os._exit(128 + signum)
            return
        first.append(time.monotonic())
        stop.request(f"cancelled by the user ({SIGNAL_NAMES[signum]})", signum)
        spark.interrupt()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=target, name="rentalctl-run", daemon=True)
    try:
        thread.start()
        while thread.is_alive():
            thread.join(0.2)
            if stop.requested:
                # Again and again: an interrupt ends the engine's current query or job only,
                # and the task may start another before the run reaches its next state.
                spark.interrupt()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result
