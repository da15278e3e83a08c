"""Stall a ``rentalctl`` process's transform inside its engine, as a long query would.

Python imports this module at start-up when this folder is on PYTHONPATH, so it reaches every
rentalctl process a test starts, a ``run --no-wait``'s background process included. With
RENTALCTL_TEST_STALL=MARKER set, once the transform has its engine session the process writes
MARKER and runs a query on that session that would take hours (DuckDB: on SQLFrame's cursor,
where the transform's queries run; Spark: a job). Only an interrupt of the engine ends it.
Nothing in rentalctl knows about this: the patch is applied from outside.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ENDLESS = 10**13  # rows: far more than any test waits for


def _arm(marker: Path) -> None:
    from rentalctl import spark

    original = spark.transform_session

    def stalled(settings: Any) -> Any:
        session = original(settings)
        marker.write_text(f"{os.getpid()}\n")
        if settings.transform_engine == "spark":
            session.range(ENDLESS).selectExpr("sum(hash(id))").collect()
        else:
            session._cur.execute(f"SELECT sum(hash(range)) FROM range({ENDLESS})").fetchall()
        return session

    spark.transform_session = stalled


if os.environ.get("RENTALCTL_TEST_STALL"):
    _arm(Path(os.environ["RENTALCTL_TEST_STALL"]))
