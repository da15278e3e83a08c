"""Run one step in a child process: ``ChildRunner.run(settings, fn, *args)`` is
``fn(Context(settings), *args)`` computed in a fresh Python process, its result, exception and
log records handed back.

Why: a local run extracts its tables side by side (``pipeline.max_concurrency``), and the
extract's per-value work is Python that holds the interpreter lock: on threads of one process
the tables take turns on one core. In processes of their own they use every core. Only the
extract runs here; whatever needs the DuckDB warehouse stays in the run's process, because
DuckDB lets one process at a time open a database file and the run holds it.

How the child starts: a new interpreter (``python -m rentalctl.pipeline.child``), never a fork.
The run's process has threads (the Map's iterations, the signal-waiting main thread) and may
hold an open DuckDB connection; a fork copies locks held by other threads in their held state
and the DuckDB handle with them, which can hang or corrupt the child. A new interpreter costs
about 0.15 s (start-up and imports, measured on the reference machine), paid once per table and
in parallel, against seconds of extraction. ``multiprocessing``'s spawn would also import the
parent's ``__main__`` (the CLI with Typer and Rich, or a test runner); a plain interpreter
imports only what the step needs. The request goes down the child's stdin, pickled; replies
come up its stdout as framed messages (``multiprocessing.connection``: whole messages however
the pipe splits them; the child writes its own prints to stderr, which it shares with the run,
as the run log of a detached run is that stderr).

The child's log records go to the run's process, which hands them to its own loggers: the
terminal with ``--verbose`` and the run log show them as they show the run's own lines. An
exception crosses as itself (a RentalctlError keeps its type and message, so the job records
and reports it exactly as in-process), or, when it cannot be pickled, as a RuntimeError naming
its type and message.

Stopping: the child ignores SIGINT (Ctrl-C reaches the whole foreground process group; the run
decides what a Ctrl-C means); the run's process kills the child when the run is stopped
(Ctrl-C, SIGTERM, ``rentalctl cancel``) and when the waiting thread leaves for any reason. When
the run's process dies without a chance to do so (``kill -9``), Linux kills the child at once
(``PR_SET_PDEATHSIG``); elsewhere the child checks every second that its parent is alive. A
killed extract leaves at most part files without a manifest, which a retry of the run deletes
before it extracts again.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from rentalctl.context import Context
from rentalctl.errors import ResourceUnavailable

log = logging.getLogger("rentalctl.pipeline.child")  # also when run as __main__

_POLL_SECONDS = 0.2  # how soon a stop request reaches a waiting child


class ChildStopped(Exception):
    """The run was stopped while a child worked: not a failure of the step (nothing is
    recorded for it), the run is closed as cancelled."""


class ChildRunner:
    """Runs steps in child processes; ``stopped()`` says when the run is asked to stop."""

    def __init__(self, stopped: Callable[[], bool] = lambda: False) -> None:
        self.stopped = stopped

    def run(self, settings: Any, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(Context(settings), *args)`` in a child process. ``fn`` and its arguments and
        result must pickle (``fn`` a module-level function)."""
        child = subprocess.Popen(
            _command(os.getpid()),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=os.environ.copy(),
        )
        assert child.stdin is not None and child.stdout is not None
        replies = Connection(os.dup(child.stdout.fileno()), writable=False)
        child.stdout.close()
        try:
            with child.stdin:
                pickle.dump((settings, fn, args, _levels()), child.stdin)
            return self._replies(child, replies)
        finally:
            if child.poll() is None:
                child.kill()
            child.wait()
            replies.close()

    def _replies(self, child: subprocess.Popen[bytes], replies: Connection) -> Any:
        while True:
            while not replies.poll(_POLL_SECONDS):
                if self.stopped():
                    raise ChildStopped(f"stopped: the run was asked to stop (pid {child.pid})")
            try:
                kind, payload = replies.recv()
            except EOFError:
                code = child.wait()
                raise ResourceUnavailable(
                    f"the step's process (pid {child.pid}) ended without an answer "
                    f"({_exit_words(code)}); a retry runs the step again"
                ) from None
            if kind == "log":
                logging.getLogger(payload.name).handle(payload)
            elif kind == "result":
                return payload
            else:
                raise payload


def _command(parent: int) -> list[str]:
    """The child's command line: this module run by this interpreter, given the parent's pid."""
    return [sys.executable, "-m", "rentalctl.pipeline.child", str(parent)]


def _levels() -> dict[str, int]:
    """The levels set on this process's loggers, the root's included (``""``): the CLI quiets
    some libraries (sqlglot's notes on each translation, botocore's debug lines), and the child
    filters its records as this process would."""
    loggers = logging.Logger.manager.loggerDict.items()
    levels = {name: lg.level for name, lg in loggers if isinstance(lg, logging.Logger) and lg.level}
    return {"": logging.getLogger().level, **levels}


def _exit_words(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class _PipeHandler(logging.Handler):
    """Sends each record up the reply pipe, its message formatted (arguments and tracebacks
    may not pickle)."""

    def __init__(self, send: Callable[[str, Any], None]) -> None:
        super().__init__()
        self.send = send

    def emit(self, record: logging.LogRecord) -> None:
        record = logging.makeLogRecord(record.__dict__)
        record.msg, record.args = record.getMessage(), None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        self.send("log", record)


def _portable(exc: Exception) -> Exception:
    """``exc`` if it survives pickling, else the nearest of its classes that does, with its
    message (one whose ``__init__`` takes other arguments does not)."""
    for kind in type(exc).__mro__[:-2]:  # down to Exception, which always does
        with contextlib.suppress(Exception):
            candidate = exc if kind is type(exc) else kind(str(exc))
            pickle.loads(pickle.dumps(candidate))
            return candidate
    return Exception(str(exc))


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        # Sent when the parent thread that started this process ends; that thread waits for
        # this process to its end (ChildRunner.run), so only the parent's death sends it.
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
        if os.getppid() != parent:  # it died before the call: no signal will come
            os._exit(1)
        return

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _main(parent: int) -> None:
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    replies = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # the pipe carries replies only: prints go to stderr
    sys.stdout = sys.stderr
    lock = threading.Lock()

    def send(kind: str, payload: Any) -> None:
        with lock:
            replies.send((kind, payload))

    settings, fn, args, levels = pickle.load(sys.stdin.buffer)
    logging.getLogger().handlers[:] = [_PipeHandler(send)]
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)

    try:
        result = fn(Context(settings), *args)
    except Exception as exc:
        log.debug("the step failed", exc_info=True)
        send("error", _portable(exc))
        return
    send("result", result)


if __name__ == "__main__":
    _main(int(sys.argv[1]))
