"""Shared fixtures.

Service-backed tests read the server's URL from an environment variable with a default that
matches the development machine. They skip when the server is absent on a laptop, but fail when
the CI environment variable is set, so CI can never pass by skipping them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# The reliability suite's record and report (docs/reliability.md); its hooks must be registered
# here, in the top-level conftest, to see the whole session.
from tests.reliability.plugin import (  # noqa: F401
    pytest_addoption,
    pytest_collection_modifyitems,
    pytest_deselected,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    reliability,
)
from tests.support.moto_aws import fake_aws_credentials

MYSQL_URL_ENV = "RENTALCTL_TEST_MYSQL_URL"
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/test"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: service-backed tests must run, not skip)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's RENTALCTL_* settings, and each runs in its own directory."""
    for var in list(os.environ):
        if var.startswith("RENTALCTL_") and var != MYSQL_URL_ENV:
            monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True, scope="session")
def _session_sql_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The test session's own SQL cache (``rentalctl.sql_cache``), not the developer's: what a
    test runs was written by the code under test, in this session."""
    with pytest.MonkeyPatch.context() as m:
        m.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh RENTALCTL_HOME."""
    path = tmp_path / "home"
    monkeypatch.setenv("RENTALCTL_HOME", str(path))
    return path


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake AWS credentials and region for tests on moto; returns the region."""
    return fake_aws_credentials(monkeypatch)


@pytest.fixture
def on_moto(aws_credentials: str) -> Iterator[str]:
    """moto intercepting every AWS call (on the fake credentials) for the test; yields the
    region."""
    from moto import mock_aws

    with mock_aws():
        yield aws_credentials


@pytest.fixture(scope="session")
def mysql_server() -> dict[str, object]:
    """Connection parameters of the test MySQL/MariaDB server (skips or fails if absent)."""
    import pymysql

    from rentalctl.urls import MysqlURL, parse_source

    url = parse_source(os.environ.get(MYSQL_URL_ENV, DEFAULT_MYSQL_URL), Path.cwd())
    assert isinstance(url, MysqlURL)
    params = dict(
        host=url.host,
        port=url.port,
        user=url.user,
        password=os.environ.get("RENTALCTL_TEST_MYSQL_PASSWORD", ""),
    )
    try:
        pymysql.connect(connect_timeout=5, **params).close()
    except pymysql.err.MySQLError as exc:
        _unavailable(f"MySQL test server not reachable at {url.host}:{url.port}: {exc}")
    return params


@pytest.fixture
def mysql_url(mysql_server: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A URL to a fresh, empty database on the test server, dropped afterwards. The password
    (if any) is in RENTALCTL_SOURCE_PASSWORD, as users provide it."""
    import pymysql

    database = f"rentalctl_test_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("RENTALCTL_SOURCE_PASSWORD", str(mysql_server["password"]))
    yield f"mysql://{mysql_server['user']}@{mysql_server['host']}:{mysql_server['port']}/{database}"
    conn = pymysql.connect(**mysql_server)  # type: ignore[arg-type]
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
    finally:
        conn.close()


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One local SparkSession for the whole test session, small and quiet (pyspark is loaded
    only by the tests that ask for it)."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("rentalctl-tests")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(params=["duckdb", "spark"])
def frames(request: pytest.FixtureRequest) -> object:
    """A transform session of each engine in turn: SQLFrame over DuckDB, then the ``spark``
    session (the transform must give the same answers on both)."""
    if request.param == "spark":
        return request.getfixturevalue("spark")
    from rentalctl.spark import duckdb_session

    return duckdb_session()


@pytest.fixture
def duckdb_frames() -> object:
    """The SQLFrame DuckDB session (the transform of local runs by default)."""
    from rentalctl.spark import duckdb_session

    return duckdb_session()


@pytest.fixture(scope="session")
def pipeline_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A RENTALCTL_HOME where small demo data (scale 0.01) went through one local run: every
    KPI table filled, a run record, bookmarks. Made once per session, through the CLI in a
    process of its own (a run takes a minute or two); tests only read it. Returns the home and
    the run's JSON record as `run` printed it."""
    home = tmp_path_factory.mktemp("pipeline") / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENTALCTL_")}
    env["RENTALCTL_HOME"] = str(home)
    outputs = [
        subprocess.run(
            [sys.executable, "-m", "rentalctl", "-o", "json", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        for args in (["demo-data", "--scale", "0.01"], ["run"])
    ]
    for out in outputs:
        assert out.returncode == 0, out.stderr[-3000:]
    return {"home": home, "run": json.loads(outputs[-1].stdout)}
