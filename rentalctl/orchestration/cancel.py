"""Cancelling a run: by a signal to the process that runs it (Ctrl-C, SIGTERM from cron, systemd
or CI), or by ``rentalctl cancel RUN_ID`` from anywhere.

A cancelled run ends CANCELLED and is settled exactly as a failed run: its raw rows go unless it
had committed its bookmarks, its unfinished files are removed, so the next run reads its windows
again and nothing is lost or doubled.

Locally the run's own process records that: a signal sets its ``StopRequest``, the executor runs
no further state (``Executor.execute(stop=…)``), the transform engine's running query is
interrupted, and ``run_local`` closes the record while it still holds the lock. ``cancel`` sends
SIGTERM to the lock's holder and waits for that; only a holder that is gone is settled by
``cancel`` itself. On AWS ``cancel`` stops the execution (which then runs no RecordFailure) and
closes the record.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from typing import Any

from rentalctl import aws
from rentalctl import run_records as records
from rentalctl.context import Context
from rentalctl.errors import ConfigError, ResourceUnavailable
from rentalctl.pipeline.begin import discard_unfinished_writes
from rentalctl.pipeline.settle import settle_failed_run
from rentalctl.run_lock import is_stale

log = logging.getLogger(__name__)

CANCELLED = "CANCELLED"
ERROR = "Rentalctl.Cancelled"
SIGNAL_NAMES: dict[int, str] = {signal.SIGINT: "Ctrl-C, SIGINT", signal.SIGTERM: "SIGTERM"}


class StopRequest:
    """Asked once, from a signal handler or another thread: why the run is to stop."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.reason: str | None = None
        self.signum: int | None = None

    def request(self, reason: str, signum: int | None = None) -> None:
        if not self.event.is_set():
            self.reason, self.signum = reason, signum
            self.event.set()

    @property
    def requested(self) -> bool:
        return self.event.is_set()


def close_cancelled(ctx: Context, run_id: str, cause: str) -> dict[str, Any]:
    """Close the record of ``run_id`` as CANCELLED and settle it as a failed run; returns the
    record. Called holding the lock, or when its holder is gone."""
    records.finish(ctx, run_id, CANCELLED, error={"Error": ERROR, "Cause": cause})
    settle_failed_run(ctx, run_id)
    record = ctx.state.get_run(run_id) or {}
    discard_unfinished_writes(ctx, run_id, list(record.get("tables") or []))
    return record


def cancel(ctx: Context, run_id: str, wait_seconds: float = 60.0) -> dict[str, Any]:
    """Cancel the running run ``run_id``; returns its record and whether this call changed it
    (``{"record": …, "cancelled": bool}``). A run already over is left as it is."""
    record = ctx.state.get_run(run_id)
    if record is None:
        raise ConfigError(f"no run {run_id!r} (see `rentalctl status` for recent runs)")
    if record.get("status") != "RUNNING":
        return {"record": record, "cancelled": False}
    if record.get("execution_arn"):
        return {"record": _cancel_aws(ctx, run_id, str(record["execution_arn"])), "cancelled": True}
    return _cancel_local(ctx, run_id, wait_seconds)


def _cancel_aws(ctx: Context, run_id: str, arn: str) -> dict[str, Any]:
    client = aws.client("stepfunctions", ctx._session())
    with aws.errors(f"stopping execution {arn}"):
        client.stop_execution(
            executionArn=arn, error=ERROR, cause="cancelled with `rentalctl cancel`"
        )
    # A stopped execution runs no more states, RecordFailure included: the record is closed
    # here, and the lock its Begin took is given up (only if this run still holds it).
    record = ctx.state.get_run(run_id) or {}
    if record.get("status") == "RUNNING":
        record = close_cancelled(ctx, run_id, "cancelled with `rentalctl cancel`")
    ctx.state.release_lock(run_id)
    return record


def _cancel_local(ctx: Context, run_id: str, wait_seconds: float) -> dict[str, Any]:
    holder = ctx.state.lock_holder()
    if holder and holder.get("run_id") == run_id and not is_stale(holder):
        if holder.get("host") != socket.gethostname():
            raise ResourceUnavailable(
                f"run {run_id} runs on host {holder.get('host')} (pid {holder.get('pid')}): "
                "run `rentalctl cancel` there"
            )
        pid = int(holder["pid"])
        os.kill(pid, signal.SIGTERM)  # the run records itself as cancelled (its SIGTERM path)
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            record = ctx.state.get_run(run_id) or {}
            if record.get("status") != "RUNNING":
                return {"record": record, "cancelled": record.get("status") == CANCELLED}
            time.sleep(0.2)
        raise ResourceUnavailable(
            f"run {run_id} (pid {pid}) was sent SIGTERM but has not stopped within "
            f"{wait_seconds:g} s: see `rentalctl status {run_id}`; `kill -9 {pid}` stops it at "
            "once (the next run then settles it)"
        )
    # Its process is gone without closing the record: settle it here, as the next run would.
    record = close_cancelled(
        ctx, run_id, "cancelled with `rentalctl cancel` after its process had ended"
    )
    if holder and holder.get("run_id") == run_id:
        ctx.state.release_lock(run_id)
    return {"record": record, "cancelled": True}
