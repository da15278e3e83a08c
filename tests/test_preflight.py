"""Problems a local run cannot get past, found before it starts (before any extract), each with
exit 3 and one line naming the path or the process and the fix: an unwritable home, a missing
or wrong Java for the Spark engine, a warehouse file another process holds open."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import invoke, ok_json

SCALE = "0.002"


def assert_refused_before_anything(home: Path, result: object, line: str) -> None:
    assert result.exit_code == 3, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    assert result.stderr == f"error: {line}\n"  # type: ignore[attr-defined]
    assert not (home / "lake" / "raw").exists()  # nothing was extracted


@pytest.fixture
def immutable_home(home: Path) -> Iterator[Path]:
    """A home holding a source, made immutable (``chattr +i``: not even root may add a file)."""
    assert invoke("demo-data", "--scale", SCALE).exit_code == 0
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(home)], check=False).returncode:
        pytest.skip("chattr +i is not available here (needs root and a file system with it)")
    yield home
    subprocess.run([chattr, "-i", str(home)], check=True)


def test_an_unwritable_home_is_refused_before_the_run(immutable_home: Path) -> None:
    result = invoke("run")
    assert_refused_before_anything(
        immutable_home,
        result,
        f"the rentalctl home {immutable_home} cannot be written (Operation not permitted): "
        "give this user write access to it, or point RENTALCTL_HOME (setting `home`) at a "
        "folder it can write. Nothing was run",
    )


def test_a_wrong_java_home_is_refused_when_the_engine_is_spark(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert invoke("demo-data", "--scale", SCALE).exit_code == 0
    wrong = tmp_path / "jdk-gone"
    wrong.mkdir()
    monkeypatch.setenv("JAVA_HOME", str(wrong))
    result = invoke("--set", "transform.engine=spark", "run")
    assert_refused_before_anything(
        home,
        result,
        f"JAVA_HOME={wrong} has no {wrong}/bin/java: point JAVA_HOME at a Java 17 (or later) "
        "installation (the folder holding bin/java), or unset it to use the java on the PATH; "
        "transform.engine=spark needs it. Nothing was run",
    )
    # The DuckDB engine needs no Java: the same setup runs.
    assert ok_json("run")["status"] == "SUCCEEDED"


def test_no_java_at_all_is_refused_when_the_engine_is_spark(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert invoke("demo-data", "--scale", SCALE).exit_code == 0
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no java on it
    monkeypatch.setenv("RENTALCTL_ENGINE", "spark")
    result = invoke("run")
    assert_refused_before_anything(
        home,
        result,
        "transform.engine=spark needs Java 17 (or later) and there is no java on the PATH and "
        "no JAVA_HOME: install a JDK (for example `apt-get install openjdk-17-jre-headless`) or "
        "set JAVA_HOME, or use transform.engine=duckdb. Nothing was run",
    )


def test_a_warehouse_another_process_holds_open_is_refused_at_once(home: Path) -> None:
    assert invoke("demo-data", "--scale", SCALE).exit_code == 0
    assert ok_json("run")["status"] == "SUCCEEDED"
    warehouse = home / "warehouse.duckdb"
    # A notebook's read-only session: it locks the file for every other process.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
            "print('open', flush=True); sys.stdin.read()",
            str(warehouse),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "open\n"
        started = time.monotonic()
        result = invoke("run")
        assert time.monotonic() - started < 10  # one open attempt, no retries
    finally:
        holder.communicate("")
    assert result.exit_code == 3, (result.stdout, result.stderr)
    pattern = (
        re.escape(f"error: DuckDB warehouse {warehouse} is held open by another process: ")
        + r"\S+"
        + re.escape(
            f" (PID {holder.pid}); close that session (a notebook or `duckdb` shell: close its "
            f"connection), or stop it (`kill {holder.pid}`), then run again. Nothing was run"
        )
    )
    assert re.fullmatch(pattern, result.stderr.rstrip("\n")), result.stderr
    assert len(ok_json("status")["runs"]) == 1  # no second run was started
    # Once the session is closed, the run goes ahead.
    assert ok_json("run")["status"] == "SUCCEEDED"
