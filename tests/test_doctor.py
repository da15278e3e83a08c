"""``rentalctl doctor``: settings with their origins, versions, and a ✓/✗ per resource with the
fix; exit 3 when a check fails; one JSON document with ``-o json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import invoke

NO_JAVA = "no java found; not needed (transform.engine=duckdb)"
VERSIONS = {
    "rentalctl": "9.9.9",
    "python": "3.11.0",
    "java": None,
    "pyspark": "4.0.0",
    "duckdb": "1.0.0",
    "sqlframe": "3.0.0",
}


@pytest.fixture
def profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A profile file naming a home under tmp_path; versions fixed, so outputs are literal."""
    import rentalctl.doctor

    monkeypatch.setattr(rentalctl.doctor, "versions", lambda: dict(VERSIONS))
    monkeypatch.setattr(rentalctl.doctor, "java_version", lambda: None)
    path = tmp_path / "p.yaml"
    path.write_text(f"home: {tmp_path}/h\ntables: [apartments, bookings]\n", encoding="utf-8")
    return path


def test_a_fresh_home_fails_on_the_source_only_and_exits_3(
    profile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENTALCTL_ENGINE", "duckdb")
    result = invoke("--config", str(profile), "--set", "spark.master=local[1]", "doctor")
    assert result.exit_code == 3, (result.stdout, result.stderr)
    h = f"{tmp_path}/h"
    lines = [line.rstrip() for line in result.stdout.splitlines()]
    assert lines[:2] == [f"config file: {profile}", f"home: {h}"]
    assert lines[2:15] == [
        "settings (value, and where it came from):",
        "  target = local  (default)",
        f"  home = {h}  ({profile})",
        f"  source.url = sqlite:///{h}/source.db  (default)",
        f"  lake.url = file://{h}/lake  (default)",
        f"  warehouse.url = duckdb:///{h}/warehouse.duckdb  (default)",
        f"  state.url = sqlite:///{h}/state.db  (default)",
        f"  tables = ['apartments', 'bookings']  ({profile})",
        "  lookback = {'apartments': 300, 'apartment_attributes': 300, 'user_viewing': 10000, "
        "'bookings': 300}  (default)",
        "  fx_rates = {'USD': '1.0', 'EUR': '1.08', 'GBP': '1.27', 'INR': '0.012'}  (default)",
        "  spark.master = local[1]  (--set spark.master)",
        "  transform.engine = duckdb  (RENTALCTL_ENGINE)",
        "versions: rentalctl 9.9.9, python 3.11.0, java not installed, pyspark 4.0.0, "
        "duckdb 1.0.0, sqlframe 3.0.0",
    ]
    assert lines[15:] == [
        f"✓ config file: {profile}",
        f"✓ home: {h} (created by the first run)",
        "✓ java: no java found; not needed (transform.engine=duckdb)",
        f"✗ source: source database not found: {h}/source.db (create demo data with "
        "`rentalctl demo-data`, or set RENTALCTL_SOURCE_URL)",
        f"✓ lake: {h}/lake (created by the first run)",
        f"✓ warehouse: {h}/warehouse.duckdb (created by the first run)",
        f"✓ state store: {h}/state.db (created by the first run)",
        "1 check(s) failed: source",
    ]
    assert result.stderr == ""


def test_after_demo_data_every_check_passes_and_json_has_the_documented_shape(
    profile: Path, tmp_path: Path
) -> None:
    assert invoke("--config", str(profile), "demo-data", "--scale", "0.002").exit_code == 0
    result = invoke("--config", str(profile), "-o", "json", "doctor")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    doc = json.loads(result.stdout)
    h = f"{tmp_path}/h"
    assert doc["checks"] == [
        {"name": "config file", "ok": True, "detail": str(profile)},
        {"name": "home", "ok": True, "detail": h},
        {
            "name": "java",
            "ok": True,
            "detail": "no java found; not needed (transform.engine=duckdb)",
        },
        {
            "name": "source",
            "ok": True,
            "detail": f"sqlite:///{h}/source.db: tables apartments, bookings readable",
        },
        {"name": "lake", "ok": True, "detail": f"{h}/lake (created by the first run)"},
        {
            "name": "warehouse",
            "ok": True,
            "detail": f"{h}/warehouse.duckdb (created by the first run)",
        },
        {"name": "state store", "ok": True, "detail": f"{h}/state.db (created by the first run)"},
    ]
    assert sorted(doc) == ["checks", "config_file", "home", "ok", "settings", "versions"]
    assert doc["ok"] is True
    assert doc["versions"] == VERSIONS
    assert doc["settings"][:2] == [
        {"key": "target", "value": "local", "origin": "default"},
        {"key": "home", "value": h, "origin": str(profile)},
    ]


def test_java_missing_fails_only_when_the_engine_is_spark(
    profile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "jdk-gone"
    gone.mkdir()
    monkeypatch.setenv("JAVA_HOME", str(gone))
    spark = invoke(
        "--config", str(profile), "--set", "transform.engine=spark", "-o", "json", "doctor"
    )
    assert spark.exit_code == 3
    java = [c for c in json.loads(spark.stdout)["checks"] if c["name"] == "java"]
    assert java == [
        {
            "name": "java",
            "ok": False,
            "detail": f"JAVA_HOME={gone} has no {gone}/bin/java: point JAVA_HOME at a Java 17 "
            "(or later) installation (the folder holding bin/java), or unset it to use the java "
            "on the PATH; transform.engine=spark needs it.",
        }
    ]
    duck = invoke("--config", str(profile), "-o", "json", "doctor")
    java = [c for c in json.loads(duck.stdout)["checks"] if c["name"] == "java"]
    assert java == [
        {
            "name": "java",
            "ok": True,
            "detail": "no java found; not needed (transform.engine=duckdb)",
        }
    ]


def test_an_unwritable_home_is_a_failed_check_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rentalctl.doctor

    monkeypatch.setattr(rentalctl.doctor, "versions", lambda: dict(VERSIONS))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        cfg = tmp_path / "p.yaml"
        cfg.write_text(f"home: {locked}/h\n", encoding="utf-8")
        import os

        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        result = invoke("--config", str(cfg), "-o", "json", "doctor")
    finally:
        locked.chmod(0o700)
    assert result.exit_code == 3
    home = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "home"]
    assert home == [
        {
            "name": "home",
            "ok": False,
            "detail": f"home {locked}/h cannot be written ({locked} is not writable): give this "
            f"user write access to {locked}, or point the `home` setting at a folder it can write",
        }
    ]


def test_on_aws_the_bucket_table_state_machine_and_jobs_are_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_moto: str
) -> None:
    """On moto: first nothing is deployed (each ✗ names the command that makes it), then all
    is there."""
    import boto3

    import rentalctl.doctor

    monkeypatch.setattr(rentalctl.doctor, "versions", lambda: dict(VERSIONS))
    cfg = tmp_path / "aws.yaml"
    cfg.write_text(
        f"target: aws\nhome: {tmp_path}/h\nlake: {{url: s3://doctor-lake/x}}\n"
        "state: {url: dynamodb://doctor-state}\n"
        f"warehouse: {{url: duckdb:///{tmp_path}/h/w.duckdb}}\n"
        "aws: {region: eu-west-1, glue_job_prefix: dr, state_machine_name: dr-pipeline}\n",
        encoding="utf-8",
    )
    names = ["lake", "state store", "aws credentials", "state machine", "glue jobs"]

    def checks() -> tuple[int, list[dict[str, object]]]:
        result = invoke("--config", str(cfg), "-o", "json", "doctor")
        doc = json.loads(result.stdout)
        return result.exit_code, [c for c in doc["checks"] if c["name"] in names]

    code, found = checks()
    assert code == 3
    assert found == [
        {
            "name": "lake",
            "ok": False,
            "detail": "bucket doctor-lake does not exist: create it, or point lake.url at yours",
        },
        {
            "name": "state store",
            "ok": True,
            "detail": "dynamodb://doctor-state (created by the first run)",
        },
        {
            "name": "aws credentials",
            "ok": True,
            "detail": "arn:aws:sts::123456789012:user/moto (account 123456789012, "
            "region eu-west-1)",
        },
        {
            "name": "state machine",
            "ok": False,
            "detail": "state machine dr-pipeline does not exist: run `rentalctl deploy-sfn`",
        },
        {
            "name": "glue jobs",
            "ok": False,
            "detail": "Glue job dr-begin, dr-extract-load, dr-transform, dr-publish, "
            "dr-record-failure missing: run `rentalctl upload-scripts` and "
            "`rentalctl deploy-sfn`",
        },
    ]
    boto3.client("s3").create_bucket(
        Bucket="doctor-lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    sfn = boto3.client("stepfunctions")
    sfn.create_state_machine(
        name="dr-pipeline",
        definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/r",
    )
    glue = boto3.client("glue")
    for job in ["begin", "extract-load", "transform", "publish", "record-failure"]:
        glue.create_job(
            Name=f"dr-{job}",
            Role="r",
            Command={"Name": "pythonshell", "ScriptLocation": "s3://x/y"},
        )
    code, found = checks()
    assert [(c["name"], c["ok"]) for c in found] == [(n, True) for n in names]
    assert found[3]["detail"] == "arn:aws:states:eu-west-1:123456789012:stateMachine:dr-pipeline"
    assert found[4]["detail"] == (
        "dr-begin, dr-extract-load, dr-transform, dr-publish, dr-record-failure"
    )
