"""A step run in a child process (rentalctl.pipeline.child) answers as if it ran in the run's
process: its result, its error (type and message), its log lines; and the child stops when the
run is stopped or its process dies."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rentalctl import config
from rentalctl.context import Context
from rentalctl.errors import ConfigError, InvalidSetting, PipelineFailed, ResourceUnavailable
from rentalctl.pipeline.child import ChildRunner, ChildStopped
from tests.support.child_steps import answer, die, fail, stalled_extract, write_forever


@pytest.fixture
def settings(tmp_path: Path) -> Any:
    return config.load(env={"RENTALCTL_HOME": str(tmp_path)})


def test_result_and_log_lines_come_back(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="rentalctl"):
        result = ChildRunner().run(settings, answer, 42)
    assert result["pid"] != os.getpid()  # it ran elsewhere
    assert result == {"pid": result["pid"], "home": str(settings.home), "extra": 42}
    lines = [r for r in caplog.records if r.name == "rentalctl.test_child"]
    assert [r.getMessage() for r in lines] == [f"working in {result['pid']}"]


def test_errors_cross_with_their_type_and_message(settings: Any) -> None:
    with pytest.raises(PipelineFailed) as failed:
        ChildRunner().run(settings, fail, "pipeline")
    assert type(failed.value) is PipelineFailed
    assert str(failed.value) == "source value bookings.total_price: not a number"
    # One whose __init__ cannot take its message back crosses as its nearest class that can.
    expected = str(InvalidSetting("extract.batch_size", "x", "a number"))
    with pytest.raises(ConfigError) as config_error:
        ChildRunner().run(settings, fail, "setting")
    assert str(config_error.value) == expected


def test_a_child_that_dies_without_answer_is_a_retryable_failure(settings: Any) -> None:
    with pytest.raises(ResourceUnavailable, match="exit code 7"):
        ChildRunner().run(settings, die)


def test_a_stop_request_kills_the_child(settings: Any, tmp_path: Path) -> None:
    out = tmp_path / "rows"
    asked: list[float] = []

    def stopped() -> bool:
        if not out.exists():
            return False
        asked.append(time.monotonic())
        return len(asked) > 2

    with pytest.raises(ChildStopped):
        ChildRunner(stopped).run(settings, write_forever, str(out))
    assert not _alive(int((tmp_path / "rows.pid").read_text()))


def test_cancelling_the_run_stops_its_extracts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop request (Ctrl-C, SIGTERM, `rentalctl cancel`) kills the tables' extract processes
    and the run ends CANCELLED, without waiting for them."""
    import threading

    from rentalctl import jobs
    from rentalctl.orchestration.cancel import StopRequest
    from rentalctl.orchestration.local import run_local
    from rentalctl.tables import TABLES
    from tests.support.cli import invoke

    monkeypatch.setenv("RENTALCTL_HOME", str(tmp_path))
    assert invoke("demo-data", "--scale", "0.002").exit_code == 0
    ctx = Context(config.load(env={"RENTALCTL_HOME": str(tmp_path)}))
    ctx.state.ensure()
    ctx.state.seed(list(TABLES))
    monkeypatch.setattr(jobs, "_extract", stalled_extract)  # pickled by name: the child runs it
    stop = StopRequest()
    record: dict[str, Any] = {}

    def run() -> None:
        record.update(
            run_local(
                ctx,
                run_id="R1",
                mode="incremental",
                since=None,
                until=None,
                tables=list(TABLES),
                stop=stop,
            )
        )

    runner = threading.Thread(target=run)
    runner.start()
    pid_files = [tmp_path / f"extract-{t}.pid" for t in TABLES]
    deadline = time.monotonic() + 60
    while not all(f.exists() and f.read_text() for f in pid_files):
        assert time.monotonic() < deadline, "the extracts did not start"
        time.sleep(0.05)
    stop.request("cancelled by the user (SIGTERM)")
    runner.join(30)
    assert not runner.is_alive()
    assert record["status"] == "CANCELLED"
    assert [_alive(int(f.read_text())) for f in pid_files] == [False] * len(TABLES)


PARENT = """
import sys
from rentalctl import config
from rentalctl.pipeline.child import ChildRunner
from tests.support.child_steps import write_forever
settings = config.load(env={"RENTALCTL_HOME": sys.argv[1]})
ChildRunner().run(settings, write_forever, sys.argv[2])
"""


def test_the_child_dies_with_the_run_process(tmp_path: Path) -> None:
    """kill -9 of the run's process: its child stops writing at once, nobody left to stop it."""
    out = tmp_path / "rows"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path), str(out)], cwd=Path(__file__).parent.parent
    )
    try:
        pid_file = Path(str(out) + ".pid")
        for _ in range(200):
            if pid_file.exists() and pid_file.read_text():
                break
            time.sleep(0.05)
        child = int(pid_file.read_text())
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        for _ in range(100):
            if not _alive(child):
                break
            time.sleep(0.05)
        assert not _alive(child)
        size = out.stat().st_size
        time.sleep(0.3)
        assert out.stat().st_size == size  # nothing more written
    finally:
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"
