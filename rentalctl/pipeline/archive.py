"""Archive step: after a successful run, its raw files move from ``raw/`` to ``archive/raw/``
in the lake (same layout below), so ``raw/`` holds only what no run has completed yet."""

from __future__ import annotations

from rentalctl.context import Context
from rentalctl.run.layout import run_prefix


def archive_run(ctx: Context, run_id: str, tables: list[str]) -> int:
    """Move the run's raw files; idempotent (a retry moves what is left). Returns files moved."""
    moved = 0
    for table in tables:
        for key in ctx.lake.list(run_prefix(table, run_id)):
            ctx.lake.move(key, "archive/" + key)
            moved += 1
    return moved
