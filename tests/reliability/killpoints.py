"""Where the kill tests stop a run: each point names a moment of a local run, and this file, run
as a script, runs ``rentalctl`` with the point armed: when the run reaches it, the process
SIGKILLs its whole process group (itself and the Spark JVM it started), exactly there.

    python killpoints.py POINT rentalctl-arguments...

State boundaries are the executor's StateEntered events (the next state has been entered and
nothing of it has run yet); the points inside a step patch the one call where that step is half
done. Nothing in rentalctl knows about these points: the patches are applied from outside.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KillPoint:
    name: str
    description: str  # for the report: "killed …"
    # Inside the Map: the other tables' steps run beside it, so how far they had got when the
    # run was killed (and so how many raw rows it leaves) differs from one kill to the next.
    beside: bool = False


# (state name, or "step:" and a step inside a job (``rentalctl.jobs``); table or None; n-th time
# it is entered (by that table's iteration); what it means). The Map runs the tables' ExtractLoad
# jobs at once (pipeline.max_concurrency), so a point inside it names its table: the other
# tables are wherever their own threads got to.
BOUNDARIES = {
    "enter-plan": ("Plan", None, 1, "as the run starts (Plan entered)"),
    "enter-begin": (
        "Begin",
        None,
        1,
        "before the run took the lock and opened its record (Begin entered)",
    ),
    "enter-extract-and-load": (
        "ExtractAndLoad",
        None,
        1,
        "before any extract (ExtractAndLoad entered)",
    ),
    "enter-load-raw-apartments": (
        "step:load-raw",
        "apartments",
        1,
        "between extracting and loading apartments, the other tables' extracts and loads "
        "running at the same time",
    ),
    "enter-extract-attributes": (
        "ExtractLoad",
        "apartment_attributes",
        1,
        "as apartment_attributes' extract starts, beside the other tables'",
    ),
    "enter-extract-bookings": (
        "ExtractLoad",
        "bookings",
        1,
        "as bookings' extract starts, beside the other tables'",
    ),
    "enter-transform": (
        "Transform",
        None,
        1,
        "after every table was loaded into raw (Transform entered)",
    ),
    "enter-merge": (
        "step:merge",
        None,
        1,
        "after the transform, before the merge (Publish began)",
    ),
    "enter-presentation": ("step:presentation", None, 1, "after the merge committed"),
    "enter-commit-bookmarks": (
        "step:commit-bookmarks",
        None,
        1,
        "after the KPIs were rebuilt, before the bookmarks moved",
    ),
    "enter-archive": (
        "step:archive",
        None,
        1,
        "after the bookmarks moved, before archiving",
    ),
    "enter-succeeded": (
        "Succeeded",
        None,
        1,
        "after archiving, as the run ends (Succeeded entered)",
    ),
}
MID_STEP = {
    "mid-extract": "in the middle of the bookings extract (one part file in the lake, the next "
    "half-written)",
    "mid-load-raw": "inside the raw load of user_viewing (rows inserted, not committed)",
    "mid-transform": "inside the transform of apartment_attributes (Parquet written, completion "
    "marker not)",
    "mid-merge": "halfway through the merge transaction",
    "mid-presentation": "halfway through the KPI rebuild transaction",
    "mid-commit-bookmarks": "after the first table's bookmark moved, before the next one",
    "mid-archive": "after two raw files were archived, before the rest",
}
POINTS = [KillPoint(n, d, table is not None) for n, (_, table, _, d) in BOUNDARIES.items()] + [
    KillPoint(n, d, n in ("mid-extract", "mid-load-raw")) for n, d in MID_STEP.items()
]
# What the kill tests pass to every run, so the extract writes several part files.
RUN_SETTINGS = ("--set", "extract.batch_size=100", "--set", "extract.part_file_rows=1000")


def die() -> None:
    os.killpg(os.getpgrp(), signal.SIGKILL)


def _wrap(owner: Any, name: str, before: Callable[..., None]) -> None:
    """Make ``owner.name`` call ``before(*args)`` first."""
    original = getattr(owner, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        before(*args, **kwargs)
        return original(*args, **kwargs)

    setattr(owner, name, wrapped)


def _nth(n: int, condition: Callable[..., bool]) -> Callable[..., None]:
    """A ``before`` hook that dies on the n-th call for which ``condition`` holds."""
    seen = [0]

    def before(*args: Any, **kwargs: Any) -> None:
        if condition(*args, **kwargs):
            seen[0] += 1
            if seen[0] == n:
                die()

    return before


def arm(point: str) -> None:
    from rentalctl.pipeline import child

    # A step the run hands to a child process (rentalctl.pipeline.child) runs this file too,
    # armed alike, so that a point inside it (mid-extract) is reached there; die() ends the
    # whole process group, the run's process with it.
    child._command = lambda parent: [sys.executable, __file__, "--child", point, str(parent)]
    from rentalctl.adapters.lake_local import LocalLake
    from rentalctl.adapters.state_sqlite import SqliteStateStore
    from rentalctl.adapters.warehouse_duckdb import DuckdbWarehouse
    from rentalctl.orchestration import asl_history

    if point in BOUNDARIES and BOUNDARIES[point][0].startswith("step:"):
        from rentalctl import jobs

        step, table, n, _ = BOUNDARIES[point]

        def is_step(ctx: Any, run_id: str, name: str, of: str | None, *rest: Any) -> bool:
            return name == step[5:] and (table is None or of == table)

        _wrap(jobs, "_step", _nth(n, is_step))
    elif point in BOUNDARIES:
        state, table, n, _ = BOUNDARIES[point]

        def entered(self: Any, type_: str, details: Any, key: str = "") -> None:
            if not type_.endswith("StateEntered") or (details or {}).get("name") != state:
                return
            if table is None or json.loads(details["input"]).get("table") == table:
                hook()

        hook = _nth(n, lambda: True)
        _wrap(asl_history.History, "emit", entered)
    elif point == "mid-extract":
        from rentalctl.pipeline import rawfiles

        # Batches of 100 rows, part files of 1000: the 16th batch is mid-way through part 2.
        _wrap(rawfiles.PartWriter, "write", _nth(16, lambda w, rows: w.spec.name == "bookings"))
    elif point == "mid-load-raw":
        from rentalctl.adapters import warehouse_duckdb

        _wrap(
            warehouse_duckdb,
            "check_loaded",
            _nth(1, lambda manifest, loaded: manifest.table == "user_viewing"),
        )
    elif point == "mid-transform":
        marker = "curated/apartment_attributes/"
        _wrap(
            LocalLake,
            "put_bytes",
            _nth(1, lambda lake, key, data: key.startswith(marker) and key.endswith("_stats.json")),
        )
    elif point in ("mid-merge", "mid-presentation"):
        _half_transaction(DuckdbWarehouse, "curated" if point == "mid-merge" else "presentation")
    elif point == "mid-commit-bookmarks":
        _wrap(SqliteStateStore, "commit_bookmark", _nth(2, lambda *a, **k: True))
    elif point == "mid-archive":
        _wrap(LocalLake, "move", _nth(3, lambda *a, **k: True))
    else:
        raise SystemExit(f"unknown kill point {point!r}")


def _half_transaction(cls: Any, schema: str) -> None:
    """The first transaction whose statements create ``schema`` tables dies halfway through."""
    original = cls.execute_transaction

    def execute_transaction(self: Any, statements: Any) -> None:
        text = [s if isinstance(s, str) else s[0] for s in statements]
        if not any(f"{schema}." in t for t in text):
            return original(self, statements)
        half = len(statements) // 2
        with self._transaction("killed"):
            for statement in statements[:half]:
                sql, params = (statement, []) if isinstance(statement, str) else statement
                self.conn.execute(sql, list(params))
            die()

    cls.execute_transaction = execute_transaction


if __name__ == "__main__" and sys.argv[1] == "--child":
    arm(sys.argv[2])
    from rentalctl.pipeline.child import _main

    _main(int(sys.argv[3]))
elif __name__ == "__main__":
    arm(sys.argv[1])
    from rentalctl.cli import main

    sys.argv = ["rentalctl", *sys.argv[2:]]
    main()
