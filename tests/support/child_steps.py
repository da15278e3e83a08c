"""Steps for tests/test_child_process.py to run in a child process: module-level in a module the
child can import by name, so that they pickle."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from rentalctl.context import Context
from rentalctl.errors import InvalidSetting, PipelineFailed


def answer(ctx: Context, extra: int) -> dict[str, Any]:
    logging.getLogger("rentalctl.test_child").info("working in %s", os.getpid())
    return {"pid": os.getpid(), "home": str(ctx.settings.home), "extra": extra}


def fail(ctx: Context, kind: str) -> None:
    if kind == "pipeline":
        raise PipelineFailed("source value bookings.total_price: not a number")
    raise InvalidSetting("extract.batch_size", "x", "a number")


def die(ctx: Context) -> None:
    os._exit(7)


def write_forever(ctx: Context, path: str) -> None:
    Path(path + ".pid").write_text(str(os.getpid()))
    with open(path, "a") as out:
        while True:
            out.write("row\n")
            out.flush()
            time.sleep(0.05)


def stalled_extract(ctx: Context, plan: Any) -> None:
    """An extract that never ends: says it started (its pid in a file in the home), then waits."""
    Path(ctx.settings.home, f"extract-{plan.table}.pid").write_text(str(os.getpid()))
    while True:
        time.sleep(0.05)
