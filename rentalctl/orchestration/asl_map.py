"""Map states in the local executor (INLINE only): one iteration a thread.

Iterations run at most ``MaxConcurrency`` at once (0 or absent: all of them, as the ASL says),
started in item order; results keep item order. When an iteration fails, iterations not yet
started never start and running ones stop at their next state boundary (AWS stops them at
once; a handler here cannot be interrupted, so a running task finishes and its iteration is
aborted before its next state or retry); once they have stopped, the Map fails with the first
failure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from rentalctl.orchestration.asl_failures import Failure
from rentalctl.orchestration.asl_history import History, Stopped, Strand


def run_map(
    history: History,
    name: str,
    items: list[Any],
    max_concurrency: int | None,
    item_input: Callable[[int, Any], Any],
    run_iteration: Callable[[Any], Any],
) -> list[Any]:
    """The results of ``run_iteration`` over the items of the Map state ``name``, each given
    ``item_input(index, item)`` (its ItemSelector applied)."""
    started = history.emit("MapStateStarted", {"length": len(items)})
    outer = history.strand
    stop = threading.Event()
    failures: list[BaseException] = []  # in the order they happened; the first one counts

    def iterate(index: int, item: Any) -> Any:
        history.enter(Strand(started, (*outer.stops, stop)))
        history.strand.check()  # a sibling failed before this one started: it never starts
        detail = {"name": name, "index": index}
        begun = False
        try:
            data = item_input(index, item)
            history.emit("MapIterationStarted", detail)
            begun = True
            result = run_iteration(data)
        except Stopped:
            history.emit("MapIterationAborted", detail)
            raise
        except BaseException as exc:
            with history.lock:
                failures.append(exc)
                stop.set()
            if begun and isinstance(exc, Failure):
                history.emit("MapIterationFailed", detail)
            raise
        history.emit("MapIterationSucceeded", detail)
        return result

    limit = min(max_concurrency or len(items), len(items))
    with ThreadPoolExecutor(max(limit, 1), thread_name_prefix=f"map-{name}") as pool:
        futures = [pool.submit(iterate, index, item) for index, item in enumerate(items)]
        try:
            wait(futures)
        except BaseException:  # interrupted: the iterations stop, the pool waits for them
            stop.set()
            raise
    history.catch_up(outer)  # the Map's own events follow its iterations'
    if failures:
        if isinstance(failures[0], Failure):
            history.emit("MapStateFailed", None)
        raise failures[0]
    outer.check()  # an enclosing Map is stopping: so is this one
    history.emit("MapStateSucceeded", None)
    return [future.result() for future in futures]
