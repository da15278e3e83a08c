"""The pipeline on a Spark standalone cluster gives the same lake output and curated layer as in
one process (``local[*]``).

The cluster is a master and one worker started from the installed pyspark, on 127.0.0.1. The
worker runs in its own mount namespace in which the tests' temp folder, where the driver keeps
its temp files (TMPDIR), is a private empty tmpfs, as a Glue worker has its own disk: what the
driver keeps in its temp folder the executors cannot see, and what the executors write there the
driver cannot see. Only that folder is hidden, not all of /tmp, so a checkout or venv under /tmp
stays visible to the worker. The lake is a folder outside it, shared by both, as S3 is on AWS.
Both runs go through the CLI with ``RENTALCTL_ENGINE=spark``, the cluster's with
``RENTALCTL_SPARK_MASTER`` naming the cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

RUN = "cluster-1"
TABLES = ("apartments", "apartment_attributes", "user_viewing", "bookings")
# Outside /tmp, so that the worker (whose /tmp is private) and the driver share it.
SHARED_ROOT = "/var/tmp"
START_TIMEOUT = 90.0


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the cluster test must run, not skip)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _master_state(ui_port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as response:
        state: dict[str, Any] = json.load(response)
    return state


def _wait_for(what: str, check: Any, logs: list[Path]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if check():
                return
        time.sleep(0.5)
    shown = "\n".join(f"--- {log}\n{log.read_text(errors='replace')[-3000:]}" for log in logs)
    raise AssertionError(f"{what} did not happen within {START_TIMEOUT:.0f} s\n{shown}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the process and everything it started (its own process group)."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(wait)
            return


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A running master and worker: ``url`` (spark://…) and ``ui_port`` of the master."""
    import pyspark

    if not shutil.which("java") and not os.environ.get("JAVA_HOME"):
        _unavailable("no Java runtime for the Spark cluster")
    # The driver's TMPDIR is a tmp_path, below this folder: the worker gets its own, empty.
    private_root = str(tmp_path_factory.getbasetemp())
    probe = ["unshare", "-m", "sh", "-c", f"mount -t tmpfs tmpfs '{private_root}'"]
    if not shutil.which("unshare") or subprocess.run(probe, capture_output=True).returncode:
        _unavailable("cannot give the Spark worker a private temp folder (unshare -m needs root)")

    spark_class = str(Path(pyspark.__file__).parent / "bin" / "spark-class")
    env = {
        **os.environ,
        "SPARK_HOME": str(Path(pyspark.__file__).parent),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
    }
    logs = tmp_path_factory.mktemp("spark-cluster")
    port, ui_port = _free_port(), _free_port()
    url = f"spark://127.0.0.1:{port}"
    master_log, worker_log = logs / "master.log", logs / "worker.log"
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with open(master_log, "wb") as out:
            master = [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1"]
            master += ["--port", str(port), "--webui-port", str(ui_port)]
            processes.append(
                subprocess.Popen(master, env=env, stdout=out, stderr=out, start_new_session=True)
            )
        _wait_for("the master starting", lambda: _master_state(ui_port), [master_log])
        with open(worker_log, "wb") as out:
            # The tests' temp folder (the driver's TMPDIR, the worker's work folder) is the
            # worker's own.
            private = 'mount -t tmpfs tmpfs "$0" && exec "$@"'
            worker = ["unshare", "-m", "sh", "-c", private, private_root, spark_class]
            worker += ["org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1"]
            worker += ["--cores", "1", "--memory", "1g"]
            worker += ["--work-dir", f"{private_root}/spark-work"]
            worker += ["--webui-port", str(_free_port())]
            processes.append(
                subprocess.Popen(worker, env=env, stdout=out, stderr=out, start_new_session=True)
            )
        _wait_for(
            "the worker registering",
            lambda: any(w["state"] == "ALIVE" for w in _master_state(ui_port)["workers"]),
            [master_log, worker_log],
        )
        yield {"url": url, "ui_port": ui_port, "logs": [master_log, worker_log]}
    finally:
        for process in reversed(processes):
            _stop(process)


def _rentalctl(home: Path, source: Path, *args: str, **env: str) -> Any:
    """``rentalctl -o json ARGS`` in a new process; its JSON document."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RENTALCTL_")}
    environ.update(RENTALCTL_HOME=str(home), RENTALCTL_SOURCE_URL=f"sqlite:///{source}", **env)
    done = subprocess.run(
        [sys.executable, "-m", "rentalctl", "-o", "json", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    return json.loads(done.stdout)


def _as_text(path: Path, source: str) -> list[tuple[str, ...]]:
    """Every row of ``source`` (a DuckDB table expression) with each value as text, sorted."""
    import duckdb

    with duckdb.connect(str(path), read_only=path.suffix == ".duckdb") as conn:
        columns = [row[0] for row in conn.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
        texts = ", ".join(f'CAST("{c}" AS VARCHAR)' for c in columns)
        return sorted(conn.execute(f"SELECT {texts} FROM {source}").fetchall(), key=repr)


def _output(home: Path) -> dict[str, Any]:
    """What a run left: each table's Parquet output and stats in the lake, and the curated layer
    in the warehouse, every value as text."""
    lake, warehouse = home / "lake", home / "warehouse.duckdb"
    out: dict[str, Any] = {}
    for table in TABLES:
        for kind in ("curated", "rejected"):
            folder = lake / kind / table / f"run_id={RUN}"
            files = sorted(str(p) for p in folder.glob("*.parquet"))
            out[f"lake {kind} {table}"] = (
                _as_text(Path(":memory:"), f"read_parquet({files!r}, hive_partitioning = false)")
                if files
                else []
            )
        out[f"stats {table}"] = json.loads(
            (lake / "curated" / table / f"run_id={RUN}" / "_stats.json").read_text()
        )
        out[f"curated.{table}"] = _as_text(warehouse, f"curated.{table}")
    out["curated.rejected_rows"] = _as_text(warehouse, "curated.rejected_rows")
    return out


def test_a_run_on_a_cluster_equals_the_run_in_one_process(
    cluster: dict[str, Any], tmp_path: Path
) -> None:
    source = tmp_path / "source.db"
    # 600 rows (100 apartments and attribute rows, 150 viewings, 250 bookings), with dirt.
    _rentalctl(tmp_path / "demo", source, "demo-data", "--scale", "0.0005", "--seed", "7")

    _rentalctl(tmp_path / "single", source, "run", "--run-id", RUN, RENTALCTL_ENGINE="spark")
    expected = _output(tmp_path / "single")
    for table in TABLES:
        assert expected[f"curated.{table}"], table  # the comparison below is not vacuous
        assert expected[f"lake curated {table}"] == expected[f"curated.{table}"], table
    assert expected["curated.rejected_rows"]

    shared = Path(tempfile.mkdtemp(prefix="rentalctl-cluster-", dir=SHARED_ROOT))
    try:
        # The driver's temp folder is a tmp_path, which the worker does not see.
        _rentalctl(
            shared / "home",
            source,
            "run",
            "--run-id",
            RUN,
            RENTALCTL_ENGINE="spark",
            RENTALCTL_SPARK_MASTER=cluster["url"],
            PYSPARK_PYTHON=sys.executable,  # as the worker's
            TMPDIR=str(tmp_path),
        )
        actual = _output(shared / "home")
    finally:
        shutil.rmtree(shared)

    state = _master_state(cluster["ui_port"])
    apps = [a["name"] for a in state["activeapps"] + state["completedapps"]]
    assert "rentalctl" in apps, "the run did not use the cluster"
    assert actual == expected
