"""transform.engine: the DuckDB engine (the default of local runs) needs no Java, and needs a lake
folder; the engine is chosen where the session is made."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rentalctl import config
from rentalctl.adapters.lake_s3 import S3Lake
from rentalctl.errors import ConfigError
from rentalctl.pipeline import transform_duckdb
from rentalctl.pipeline.frame_api import DUCKDB, SPARK, engine_of


def test_an_s3_lake_needs_the_spark_engine() -> None:
    lake = S3Lake("rentalctl-test-lake", "lake/dev")
    with pytest.raises(ConfigError) as caught:
        transform_duckdb.lake_folder(lake, "raw/bookings/run_id=R1/part-00000.csv.gz")
    assert str(caught.value) == (
        "transform.engine duckdb reads and writes a lake folder, and "
        "s3://rentalctl-test-lake/lake/dev/raw/bookings/run_id=R1/part-00000.csv.gz is not in "
        "one: set transform.engine to spark (RENTALCTL_ENGINE=spark) for an s3:// lake"
    )
    assert caught.value.exit_code == 2


def test_the_session_factory_follows_the_setting(tmp_path: Path, spark: object) -> None:
    from rentalctl.spark import transform_session

    settings = config.load(env={"RENTALCTL_HOME": str(tmp_path)})
    assert engine_of(transform_session(settings)) == DUCKDB
    assert engine_of(spark) == SPARK


@pytest.mark.slow
def test_a_duckdb_run_needs_no_java(tmp_path: Path) -> None:
    no_java = tmp_path / "bin"
    no_java.mkdir()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("RENTALCTL_") and k != "JAVA_HOME"
    }
    env["PATH"] = str(no_java)  # nothing on it, java least of all
    env["RENTALCTL_HOME"] = str(tmp_path / "home")
    assert shutil.which("java", path=env["PATH"]) is None
    for args in (["demo-data", "--scale", "0.01"], ["run"]):
        done = subprocess.run(
            [sys.executable, "-m", "rentalctl", "-o", "json", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(done.stdout)
    assert record["status"] == "SUCCEEDED"
