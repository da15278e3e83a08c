"""A run prints its progress and nothing else: nothing of the JVM during a Spark run (its
start-up notes and log4j lines go to the run's log file, ``<home>/logs/<run id>.log``), and
nothing of the libraries the run's child processes use (sqlglot notes each SQL translation of
the DuckDB transform)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import invoke

SCALE = "0.002"


def quiet_run(engine: str, *options: str) -> None:
    """A run of demo data on ``engine`` whose terminal shows its progress only."""
    assert invoke("demo-data", "--scale", SCALE).exit_code == 0
    done = subprocess.run(
        [sys.executable, "-m", "rentalctl", *options, "run", "--run-id", "quiet-1"],
        # A cache of its own: SQL planned from the cache would hide what planning it logs.
        env={
            **os.environ,
            "RENTALCTL_ENGINE": engine,
            "XDG_CACHE_HOME": str(Path("cache").resolve()),
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == (
        "Run quiet-1 (incremental) of apartments, apartment_attributes, user_viewing, bookings"
    )
    # Every other line is a state change: "   12.3s  Transform succeeded".
    progress = re.compile(r" *\d+\.\ds  \S+ (started|succeeded)")
    assert [line for line in lines[1:] if not progress.fullmatch(line)] == []


@pytest.mark.slow
def test_a_duckdb_run_prints_nothing_of_its_child_processes(home: Path) -> None:
    """The tables are extracted and transformed in child processes, whose libraries log as
    the run's own do: sqlglot's notes on the SQL it translates stay out of the terminal."""
    quiet_run("duckdb", "--set", "transform.parallel_min_rows=0")


@pytest.mark.slow
def test_a_spark_run_prints_nothing_of_the_jvm(home: Path) -> None:
    """Spark's start-up notes and log4j lines go to the run's log file, not the terminal."""
    quiet_run("spark")
    log = (home / "logs" / "quiet-1.log").read_text()
    # log4j's lines ("26/12/04 12:34:39 WARN NativeCodeLoader: …") are there instead.
    assert re.search(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d WARN \w+: ", log, re.MULTILINE), log
