"""Ctrl-C, SIGTERM and ``rentalctl cancel`` during a local run, through the CLI in a real process.

The run's transform is stalled inside its engine by ``tests/support/stall`` (a query that would
run for hours, ended only by an interrupt of the engine), so each signal lands at the same
place: extracts done, raw rows loaded, the transform running. Afterwards the run must be
CANCELLED, the lock free, and the next run must leave the warehouse exactly as a clean run over
the same source does (the cancelled run's raw rows discarded, none doubled, none lost).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability import support
from tests.support.cli import invoke, ok_json

STALL = Path(__file__).parent / "support" / "stall"
SCALE = "0.002"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("interrupt-source")
    made = subprocess.run(
        [sys.executable, "-m", "rentalctl", "demo-data", "--scale", SCALE],
        env={**os.environ, "RENTALCTL_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr
    return home / "source.db"


@pytest.fixture(scope="module")
def clean(source: Path, tmp_path_factory: pytest.TempPathFactory) -> support.Snapshot:
    """The warehouse one undisturbed run over the source leaves."""
    home = tmp_path_factory.mktemp("interrupt-clean")
    shutil.copy(source, home / "source.db")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RENTALCTL_HOME", str(home))
        assert ok_json("run")["status"] == "SUCCEEDED"
    return support.warehouse_snapshot(home)


def fresh_home(tmp_path: Path, source: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(source, home / "source.db")
    monkeypatch.setenv("RENTALCTL_HOME", str(home))
    return home


def start_stalled(home: Path, *args: str, engine: str = "duckdb") -> subprocess.Popen[str]:
    """``rentalctl ARGS`` in a process of its own whose transform stalls in the engine."""
    marker = home / "stalled"
    env = {
        **os.environ,
        "RENTALCTL_HOME": str(home),
        "RENTALCTL_ENGINE": engine,
        "RENTALCTL_TEST_STALL": str(marker),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(STALL), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "rentalctl", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # a signal the test sends reaches this process only
    )


def wait_stalled(home: Path, proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + 240
    while not (home / "stalled").exists():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run ended before its transform: {proc.communicate()}")
        assert time.monotonic() < deadline, "the run never reached its transform"
        time.sleep(0.1)


def assert_settled_and_next_run_clean(
    home: Path, run_id: str, cause: str, clean: support.Snapshot
) -> None:
    record = ok_json("status", run_id)
    assert (record["status"], record["error"]) == (
        "CANCELLED",
        {"Error": "Rentalctl.Cancelled", "Cause": cause},
    )
    # Its raw rows were loaded before the transform: settled, they are gone again.
    assert record["raw_to_discard"] == []
    assert sorted(record["raw_discarded"]) == [
        "apartment_attributes",
        "apartments",
        "bookings",
        "user_viewing",
    ]
    assert all(count > 0 for count in record["raw_discarded"].values())
    assert support.unfinished_lake_files(home) == []
    # The lock is free and the next run proceeds; the warehouse is a clean run's.
    assert ok_json("run")["status"] == "SUCCEEDED"
    assert support.differences(clean, support.warehouse_snapshot(home)) == {}


@pytest.mark.parametrize(
    ("signum", "code", "named"),
    [(signal.SIGINT, 130, "Ctrl-C, SIGINT"), (signal.SIGTERM, 143, "SIGTERM")],
)
def test_a_signal_cancels_the_run_with_one_line_and_its_exit_code(
    signum: int,
    code: int,
    named: str,
    source: Path,
    clean: support.Snapshot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = fresh_home(tmp_path, source, monkeypatch)
    proc = start_stalled(home, "-o", "json", "run", "--run-id", "sig-1")
    wait_stalled(home, proc)
    os.kill(proc.pid, signum)
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == code, err
    cause = f"cancelled by the user ({named})"
    assert err == (
        f"error: run sig-1 {cause}: settled as a failed run (the next run reads its rows again)\n"
    )
    assert json.loads(out)["status"] == "CANCELLED"
    assert_settled_and_next_run_clean(home, "sig-1", cause, clean)


def test_cancel_stops_a_detached_run_which_records_itself_cancelled(
    source: Path, clean: support.Snapshot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = fresh_home(tmp_path, source, monkeypatch)
    starter = start_stalled(home, "-o", "json", "run", "--no-wait", "--run-id", "bg-1")
    out, err = starter.communicate(timeout=120)
    assert starter.returncode == 0, err
    assert json.loads(out)["status"] == "STARTED"
    wait_stalled(home)
    background = int((home / "stalled").read_text())

    doc = ok_json("cancel", "bg-1")
    assert (doc["run_id"], doc["status"], doc["cancelled"]) == ("bg-1", "CANCELLED", True)
    assert doc["run"]["error"] == {
        "Error": "Rentalctl.Cancelled",
        "Cause": "cancelled by the user (SIGTERM)",
    }
    # Asked again: already over, nothing changes.
    again = ok_json("cancel", "bg-1")
    assert (again["status"], again["cancelled"]) == ("CANCELLED", False)
    # The background run itself ended on the SIGTERM `cancel` sent it, with its one line, and
    # the process that stalled in the engine (the run's, or a transform's child) with it.
    line = (
        "error: run bg-1 cancelled by the user (SIGTERM): settled as a failed run (the next "
        "run reads its rows again)"
    )
    log_file = home / "logs" / "bg-1.log"
    deadline = time.monotonic() + 30
    while Path(f"/proc/{background}").exists() or line not in log_file.read_text():
        assert time.monotonic() < deadline, "the background run did not end"
        time.sleep(0.1)
    time.sleep(0.5)  # nothing more is written
    assert log_file.read_text().splitlines().count(line) == 1
    assert_settled_and_next_run_clean(home, "bg-1", "cancelled by the user (SIGTERM)", clean)


def test_cancel_of_a_finished_run_changes_nothing(home: Path) -> None:
    ok_json("demo-data", "--scale", SCALE)
    assert ok_json("run", "--run-id", "done-1")["status"] == "SUCCEEDED"
    before = ok_json("status", "done-1")
    doc = ok_json("cancel", "done-1")
    assert (doc["run_id"], doc["status"], doc["cancelled"]) == ("done-1", "SUCCEEDED", False)
    assert ok_json("status", "done-1") == before
    text = invoke("cancel", "done-1")
    assert (text.exit_code, text.stdout) == (
        0,
        "Run done-1 is already over (SUCCEEDED): nothing to cancel.\n",
    )


def test_cancel_of_an_unknown_run_is_not_found(home: Path) -> None:
    ok_json("demo-data", "--scale", SCALE)
    ok_json("seed-bookmarks")
    result = invoke("-o", "json", "cancel", "nope")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "error": {
            "kind": "config_error",
            "message": "no run 'nope' (see `rentalctl status` for recent runs)",
            "exit_code": 2,
        }
    }


def test_cancel_settles_a_run_whose_process_is_gone(home: Path) -> None:
    """A run killed outright holds the lock and its record stays RUNNING: cancel closes it."""
    from rentalctl import config
    from rentalctl import run_records as records
    from rentalctl.context import Context
    from rentalctl.run_lock import describe_self

    ok_json("demo-data", "--scale", SCALE)
    ok_json("seed-bookmarks")
    ctx = Context(config.load())
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    ctx.state.acquire_lock(describe_self("gone-1", int(dead.stdout)), lambda h: False)
    records.start(
        ctx,
        "gone-1",
        mode="incremental",
        since=None,
        until=None,
        tables=["bookings"],
        target="local",
    )
    doc = ok_json("cancel", "gone-1")
    assert (doc["status"], doc["cancelled"]) == ("CANCELLED", True)
    assert doc["run"]["error"] == {
        "Error": "Rentalctl.Cancelled",
        "Cause": "cancelled with `rentalctl cancel` after its process had ended",
    }
    assert doc["run"]["raw_to_discard"] == []
    assert ctx.state.lock_holder() is None
    assert ok_json("run")["status"] == "SUCCEEDED"


@pytest.mark.slow
def test_ctrl_c_stops_a_spark_run_quietly(
    source: Path, clean: support.Snapshot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Spark job is cancelled (the JVM lives on, untouched by Ctrl-C, until the process
    ends): no py4j traceback, one line, exit 130."""
    home = fresh_home(tmp_path, source, monkeypatch)
    proc = start_stalled(home, "-o", "json", "run", "--run-id", "spark-1", engine="spark")
    wait_stalled(home, proc)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 130, err
    assert err == (
        "error: run spark-1 cancelled by the user (Ctrl-C, SIGINT): settled as a failed run "
        "(the next run reads its rows again)\n"
    )
    assert json.loads(out)["status"] == "CANCELLED"
    assert_settled_and_next_run_clean(
        home, "spark-1", "cancelled by the user (Ctrl-C, SIGINT)", clean
    )
