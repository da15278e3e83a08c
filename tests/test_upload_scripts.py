"""``upload-scripts`` on moto (in-process): what it ships to S3, the Glue job definitions it
creates, that it changes only what changed, that ``--dry-run`` changes nothing; and the Glue
entrypoint (``glue/job.py``): safe to import, Python 3.9-clean, runnable through ``main``.

moto 5.2.5 has no Glue ``UpdateJob``: the ``moto`` fixture adds one to moto's Glue responder
(AWS semantics: the job update replaces the whole definition) and counts the calls.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import inspect
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import rentalctl
from rentalctl import config, resources
from rentalctl.cli import _Group, main_options
from rentalctl.cli.deploy import upload_scripts
from rentalctl.deploy import glue_files
from rentalctl.jobs import JOBS
from tests.support.moto_aws import ACCOUNT, REGION
from tests.support.pythons import python39
from tests.support.wheels import PURE, SHELL_BINARY, SPARK_BINARY, use_stand_in_wheels

REPO = Path(__file__).resolve().parents[1]
ENTRYPOINT = REPO / "glue" / "job.py"
BUCKET = "rental-lake"
LAKE = f"s3://{BUCKET}/lake"
SCRIPTS = f"{LAKE}/scripts"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/rentalctl-glue"
SOURCE_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rentalctl/aurora-AbCdEf"
REDSHIFT_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rentalctl/redshift-AbCdEf"
WHEEL = f"lib/rentalctl-{rentalctl.__version__}-py3-none-any.whl"
SQL_FILES = [
    "redshift/kpis/average_booking_duration.sql",
    "redshift/kpis/average_listing_price.sql",
    "redshift/kpis/bookings_per_user.sql",
    "redshift/kpis/occupancy_rate.sql",
    "redshift/kpis/popular_locations.sql",
    "redshift/kpis/repeat_customer_rate.sql",
    "redshift/kpis/top_performing_listings.sql",
    "redshift/presentation.sql",
]
ALL_FILES = {"glue/job.py", WHEEL, PURE, SHELL_BINARY, SPARK_BINARY, "config/rentalctl.yaml"}
ALL_FILES |= set(SQL_FILES)
# docs/contract.md §7's jobs in run order, then the failure path's; transform is the one Spark job.
JOBS_IN_ORDER = ["begin", "extract-load", "transform", "publish", "record-failure"]
PYTHON_SHELL_JOBS = ["begin", "extract-load", "publish", "record-failure"]


# --- fixtures and helpers ------------------------------------------------------------------


@dataclass
class Moto:
    s3: Any
    glue: Any
    updates: list[str]

    def versions(self) -> dict[str, int]:
        """Object key -> number of versions (the bucket is versioned: every PUT adds one)."""
        out: dict[str, int] = {}
        pages = self.s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET)
        for page in pages:
            for version in page.get("Versions", []):
                out[version["Key"]] = out.get(version["Key"], 0) + 1
        return out

    def job(self, name: str) -> dict[str, Any]:
        job: dict[str, Any] = self.glue.get_job(JobName=name)["Job"]
        return job

    def job_names(self) -> list[str]:
        return sorted(j["Name"] for j in self.glue.get_jobs()["Jobs"])


@pytest.fixture
def moto(aws_credentials: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Moto]:
    import boto3
    from moto import mock_aws
    from moto.core.responses import ActionResult
    from moto.glue.responses import GlueResponse

    updates: list[str] = []
    fields = {
        "Description": "description",
        "LogUri": "log_uri",
        "Role": "role",
        "ExecutionProperty": "execution_property",
        "Command": "command",
        "DefaultArguments": "default_arguments",
        "NonOverridableArguments": "non_overridable_arguments",
        "Connections": "connections",
        "MaxRetries": "max_retries",
        "Timeout": "timeout",
        "MaxCapacity": "max_capacity",
        "WorkerType": "worker_type",
        "NumberOfWorkers": "number_of_workers",
        "SecurityConfiguration": "security_configuration",
        "NotificationProperty": "notification_property",
        "GlueVersion": "glue_version",
    }

    def update_job(self: Any) -> Any:
        name = self._get_param("JobName")
        job = self.glue_backend.get_job(name)
        update = self._get_param("JobUpdate")
        for key, attribute in fields.items():  # UpdateJob overwrites the whole definition
            setattr(job, attribute, update.get(key))
        updates.append(name)
        return ActionResult({"JobName": name})

    monkeypatch.setattr(GlueResponse, "update_job", update_job, raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield Moto(s3, boto3.client("glue", region_name=REGION), updates)


@pytest.fixture(autouse=True)
def wheelhouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_stand_in_wheels(monkeypatch, tmp_path / "wheelhouse")


@pytest.fixture
def aws_config(tmp_path: Path) -> Path:
    """A copy of the shipped AWS profile template."""
    path = tmp_path / "aws.yaml"
    shutil.copy(REPO / "config" / "aws.example.yaml", path)
    return path


def _app() -> typer.Typer:
    app = typer.Typer(cls=_Group, pretty_exceptions_enable=False)
    app.callback()(main_options)
    app.command("upload-scripts")(upload_scripts)
    return app


def upload(
    config_file: Path, *args: str, sets: tuple[str, ...] = (), output: str = "json"
) -> tuple[int, Any, str]:
    """Run ``rentalctl upload-scripts``: (exit code, the JSON document or the text, stderr)."""
    argv = ["--config", str(config_file), "--set", f"lake.url={LAKE}"]
    for item in sets:
        argv += ["--set", item]
    result = CliRunner().invoke(_app(), [*argv, "--output", output, "upload-scripts", *args])
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    if output == "json":
        return result.exit_code, json.loads(result.stdout), result.stderr
    return result.exit_code, result.stdout, result.stderr


def actions(doc: dict[str, Any], kind: str) -> dict[str, str]:
    key = "path" if kind == "files" else "job"
    return {item[key]: item["action"] for item in doc[kind]}


def changed(doc: dict[str, Any], kind: str) -> set[str]:
    return {name for name, action in actions(doc, kind).items() if action != "unchanged"}


def python_shell(job: str, concurrent_runs: int = 1) -> dict[str, Any]:
    return {
        "Name": f"rentalctl-{job}",
        "Description": f"rentalctl {job} job, managed by `rentalctl upload-scripts`",
        "Role": ROLE,
        "Command": {
            "Name": "pythonshell",
            "ScriptLocation": f"{SCRIPTS}/glue/job.py",
            "PythonVersion": "3.9",
        },
        "GlueVersion": "3.0",
        "MaxCapacity": 0.0625,
        "WorkerType": None,
        "NumberOfWorkers": None,
        "Timeout": 60,
        "MaxRetries": 0,
        "ExecutionProperty": {"MaxConcurrentRuns": concurrent_runs},
        "Connections": {"Connections": ["rentalctl-aurora-vpc"]},
        "DefaultArguments": {
            "--job-language": "python",
            "--rentalctl_job": job,
            "--rentalctl_config": f"{SCRIPTS}/config/rentalctl.yaml",
            "--extra-py-files": f"{SCRIPTS}/{PURE},{SCRIPTS}/{SHELL_BINARY},{SCRIPTS}/{WHEEL}",
            "--source_secret_arn": SOURCE_SECRET,
            "--redshift_secret_arn": REDSHIFT_SECRET,
        },
    }


def spark(job: str, workers: int = 2) -> dict[str, Any]:
    return {
        "Name": f"rentalctl-{job}",
        "Description": f"rentalctl {job} job, managed by `rentalctl upload-scripts`",
        "Role": ROLE,
        "Command": {
            "Name": "glueetl",
            "ScriptLocation": f"{SCRIPTS}/glue/job.py",
            "PythonVersion": "3",
        },
        "GlueVersion": "5.0",
        "MaxCapacity": None,
        "WorkerType": "G.1X",
        "NumberOfWorkers": workers,
        "Timeout": 60,
        "MaxRetries": 0,
        "ExecutionProperty": {"MaxConcurrentRuns": 1},
        "Connections": None,  # reads and writes S3 only: outside the VPC, needs no endpoint
        "DefaultArguments": {
            "--job-language": "python",
            "--rentalctl_job": job,
            "--rentalctl_config": f"{SCRIPTS}/config/rentalctl.yaml",
            "--additional-python-modules": (
                f"{SCRIPTS}/{PURE},{SCRIPTS}/{SPARK_BINARY},{SCRIPTS}/{WHEEL}"
            ),
            "--python-modules-installer-option": "--no-index",
            "--enable-continuous-cloudwatch-log": "true",
            "--enable-metrics": "true",
            "--encryption-type": "sse-s3",
            "--source_secret_arn": SOURCE_SECRET,
            "--redshift_secret_arn": REDSHIFT_SECRET,
        },
    }


EXPECTED_JOBS = {
    "begin": python_shell("begin"),
    "extract-load": python_shell("extract-load", concurrent_runs=4),
    "transform": spark("transform"),
    "publish": python_shell("publish"),
    "record-failure": python_shell("record-failure"),
}


def assert_job(moto: Moto, expected: dict[str, Any]) -> None:
    deployed = moto.job(expected["Name"])
    assert {key: deployed.get(key) for key in expected} == expected


# --- upload-scripts ------------------------------------------------------------------------


def test_first_run_uploads_everything_and_creates_every_job(moto: Moto, aws_config: Path) -> None:
    code, doc, err = upload(aws_config)
    assert code == 0, (doc, err)
    assert doc["location"] == SCRIPTS
    assert doc["dry_run"] is False and doc["changed"] is True
    assert actions(doc, "files") == dict.fromkeys(ALL_FILES, "upload")
    assert {f["reason"] for f in doc["files"]} == {"new"}
    assert actions(doc, "jobs") == dict.fromkeys(JOBS_IN_ORDER, "create")
    assert doc["done"] == {
        "uploaded": [f["path"] for f in doc["files"]],
        "created": [f"rentalctl-{job}" for job in JOBS_IN_ORDER],
        "updated": [],
    }

    assert moto.versions() == {f"lake/scripts/{path}": 1 for path in ALL_FILES}
    for path in ALL_FILES:
        obj = moto.s3.get_object(Bucket=BUCKET, Key=f"lake/scripts/{path}")
        body = obj["Body"].read()
        assert obj["ServerSideEncryption"] == "AES256", path
        assert obj["Metadata"] == {"sha256": hashlib.sha256(body).hexdigest()}, path
    for path in ["glue/job.py", *SQL_FILES]:
        shipped = moto.s3.get_object(Bucket=BUCKET, Key=f"lake/scripts/{path}")["Body"].read()
        assert shipped == (REPO / path).read_bytes(), path

    assert moto.job_names() == sorted(f"rentalctl-{job}" for job in JOBS_IN_ORDER)
    for expected in EXPECTED_JOBS.values():
        assert_job(moto, expected)
    tags = moto.glue.get_tags(
        ResourceArn="arn:aws:glue:eu-west-1:123456789012:job/rentalctl-publish"
    )
    assert tags["Tags"] == {"managed-by": "rentalctl", "rentalctl:job": "publish"}
    assert moto.updates == []


def test_second_run_uploads_nothing_and_updates_nothing(moto: Moto, aws_config: Path) -> None:
    assert upload(aws_config)[0] == 0
    versions = moto.versions()

    code, doc, _ = upload(aws_config)
    assert code == 0
    assert doc["changed"] is False
    assert set(actions(doc, "files").values()) == {"unchanged"}
    assert {f["reason"] for f in doc["files"]} == {"up to date"}
    assert set(actions(doc, "jobs").values()) == {"unchanged"}
    assert doc["done"] == {"uploaded": [], "created": [], "updated": []}
    assert moto.versions() == versions  # no new object version: nothing was PUT
    assert moto.updates == []

    code, text, _ = upload(aws_config, output="text")
    assert code == 0
    assert "Nothing to do: 14 files and 5 Glue jobs are up to date." in text
    assert moto.versions() == versions


def test_changing_one_sql_file_uploads_it_and_the_library_only(
    moto: Moto, aws_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert upload(aws_config)[0] == 0
    versions = moto.versions()
    # A copy of the shipped redshift/ folder, found before the repository's, with one change.
    shadow = tmp_path / "shadow"
    shutil.copytree(REPO / "redshift", shadow / "redshift")
    changed_sql = shadow / "redshift" / "kpis" / "occupancy_rate.sql"
    changed_sql.write_text(changed_sql.read_text() + "\n-- a comment\n")
    monkeypatch.setattr(resources, "_ROOTS", (shadow, *resources._ROOTS))

    code, doc, _ = upload(aws_config)
    assert code == 0
    # The wheel carries the SQL the jobs execute (resources.shipped), so it changes with it; its
    # key does not, so no job definition changes.
    assert changed(doc, "files") == {"redshift/kpis/occupancy_rate.sql", WHEEL}
    assert {f["reason"] for f in doc["files"] if f["action"] == "upload"} == {"content changed"}
    assert changed(doc, "jobs") == set()
    assert moto.updates == []
    after = moto.versions()
    assert {k for k in after if after[k] != versions[k]} == {
        "lake/scripts/redshift/kpis/occupancy_rate.sql",
        f"lake/scripts/{WHEEL}",
    }
    body = moto.s3.get_object(Bucket=BUCKET, Key="lake/scripts/redshift/kpis/occupancy_rate.sql")
    assert body["Body"].read() == changed_sql.read_bytes()


def test_changing_spark_workers_updates_only_the_transform_job(
    moto: Moto, aws_config: Path
) -> None:
    assert upload(aws_config)[0] == 0
    code, doc, _ = upload(aws_config, sets=("aws.spark_workers=5",))
    assert code == 0
    assert changed(doc, "jobs") == {"transform"}
    (transform,) = [j for j in doc["jobs"] if j["job"] == "transform"]
    assert transform["changes"] == ["NumberOfWorkers"]
    # The shipped config holds the effective settings, so it changes too; nothing else does.
    assert changed(doc, "files") == {"config/rentalctl.yaml"}
    assert doc["done"]["updated"] == ["rentalctl-transform"]
    assert moto.updates == ["rentalctl-transform"]
    assert_job(moto, spark("transform", workers=5))
    for job, expected in EXPECTED_JOBS.items():
        if job != "transform":
            assert_job(moto, expected)

    code, doc, _ = upload(aws_config, sets=("aws.spark_workers=5",))
    assert code == 0 and doc["changed"] is False


def test_drift_in_aws_is_put_back(moto: Moto, aws_config: Path) -> None:
    """A job edited by hand (an argument added, a tag removed) is restored to its definition."""
    assert upload(aws_config)[0] == 0
    drifted = {
        k: v for k, v in moto.job("rentalctl-publish").items() if k in EXPECTED_JOBS["publish"]
    }
    drifted["DefaultArguments"] = {**drifted["DefaultArguments"], "--added-by-hand": "x"}
    for key in ("Name", "WorkerType", "NumberOfWorkers"):
        drifted.pop(key, None)
    moto.glue.update_job(JobName="rentalctl-publish", JobUpdate=drifted)
    arn = "arn:aws:glue:eu-west-1:123456789012:job/rentalctl-publish"
    moto.glue.untag_resource(ResourceArn=arn, TagsToRemove=["managed-by"])
    moto.updates.clear()

    code, doc, _ = upload(aws_config)
    assert code == 0
    assert changed(doc, "jobs") == {"publish"} and changed(doc, "files") == set()
    (publish,) = [j for j in doc["jobs"] if j["job"] == "publish"]
    assert publish["changes"] == ["DefaultArguments", "Tags"]
    assert moto.updates == ["rentalctl-publish"]
    assert_job(moto, EXPECTED_JOBS["publish"])
    assert moto.glue.get_tags(ResourceArn=arn)["Tags"] == {
        "managed-by": "rentalctl",
        "rentalctl:job": "publish",
    }


def test_the_transform_job_runs_outside_the_vpc(moto: Moto, aws_config: Path) -> None:
    """Only jobs that reach the source or Redshift get the Glue connection: a transform job
    deployed with one (as rentalctl did before) loses it."""
    assert upload(aws_config)[0] == 0
    deployed = moto.job("rentalctl-transform")
    update = {k: v for k, v in deployed.items() if k in EXPECTED_JOBS["transform"]}
    update = {k: v for k, v in update.items() if v is not None and k != "Name"}
    update["Connections"] = {"Connections": ["rentalctl-aurora-vpc"]}
    moto.glue.update_job(JobName="rentalctl-transform", JobUpdate=update)
    moto.updates.clear()

    code, doc, _ = upload(aws_config)
    assert code == 0
    assert [(j["job"], j["changes"]) for j in doc["jobs"] if j["action"] != "unchanged"] == [
        ("transform", ["Connections"])
    ]
    assert_job(moto, EXPECTED_JOBS["transform"])
    code, doc, _ = upload(aws_config, sets=("aws.glue_connections=[]",))
    assert code == 0
    assert sorted(j["job"] for j in doc["jobs"] if j["action"] != "unchanged") == sorted(
        job for job in JOBS_IN_ORDER if job != "transform"
    )
    assert [n for n in moto.job_names() if moto.job(n).get("Connections")] == []


def test_dry_run_changes_nothing(moto: Moto, aws_config: Path) -> None:
    code, doc, _ = upload(aws_config, "--dry-run")
    assert code == 0
    assert doc["dry_run"] is True and doc["done"] is None
    assert actions(doc, "files") == dict.fromkeys(ALL_FILES, "upload")
    assert actions(doc, "jobs") == dict.fromkeys(JOBS_IN_ORDER, "create")
    assert moto.versions() == {}
    assert moto.job_names() == []

    assert upload(aws_config)[0] == 0
    versions = moto.versions()
    code, text, _ = upload(aws_config, "--dry-run", sets=("aws.spark_workers=3",), output="text")
    assert code == 0
    assert "Dry run, nothing changed: 1 file(s) to upload, 0 job(s) to create, 1 job(s)" in text
    assert "would update" in text
    assert moto.versions() == versions
    assert moto.updates == []
    assert moto.job("rentalctl-transform")["NumberOfWorkers"] == 2


def test_job_arguments_hold_secret_arns_never_secrets(
    moto: Moto, aws_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "pw-never-shipped-7f3a"
    monkeypatch.setenv("RENTALCTL_SOURCE_PASSWORD", password)
    assert upload(aws_config)[0] == 0
    for job in JOBS_IN_ORDER:
        arguments = moto.job(f"rentalctl-{job}")["DefaultArguments"]
        assert password not in json.dumps(arguments)
        assert not any("password" in key.lower() for key in arguments)
        secrets = {k: v for k, v in arguments.items() if "secret" in k.lower()}
        assert secrets == {
            "--source_secret_arn": SOURCE_SECRET,
            "--redshift_secret_arn": REDSHIFT_SECRET,
        }
    for key in moto.versions():
        assert password.encode() not in moto.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def test_missing_role_or_a_local_lake_is_a_configuration_error(
    moto: Moto, aws_config: Path
) -> None:
    code, doc, stderr = upload(aws_config, sets=("aws.glue_role_arn=null",))
    assert code == 2
    assert doc["error"]["kind"] == "config_error"
    assert "aws.glue_role_arn" in doc["error"]["message"]
    assert stderr.startswith("error: ") and stderr.count("\n") == 1

    code, doc, _ = upload(aws_config, sets=("lake.url=file:///tmp/lake",))
    assert code == 2
    assert "lake.url" in doc["error"]["message"] and "s3://" in doc["error"]["message"]
    assert moto.versions() == {}
    assert moto.job_names() == []


def test_shipped_config_reads_back_to_the_same_settings(
    moto: Moto, aws_config: Path, tmp_path: Path
) -> None:
    overrides = {"lake.url": LAKE, "aws.spark_workers": "3", "lookback.bookings": "60"}
    env = {"RENTALCTL_STATE_URL": "dynamodb://other-state"}
    settings = config.load(config=str(aws_config), overrides=overrides, env=env)
    shipped = tmp_path / "shipped.yaml"
    shipped.write_bytes(glue_files.render_config(settings))
    again = config.load(config=str(shipped), env={})
    assert replace(again, config_file=settings.config_file, home=settings.home) == settings
    assert str(again.state) == "dynamodb://other-state"
    assert again.aws.spark_workers == 3 and again.lookback["bookings"] == 60


# --- the library wheel ---------------------------------------------------------------------


def test_library_wheel_is_reproducible_installable_and_carries_the_sql(tmp_path: Path) -> None:
    import tomllib
    from packaging.requirements import Requirement

    wheel = glue_files.build_wheel()
    assert wheel == glue_files.build_wheel()  # same bytes, same hash: no needless upload
    archive = zipfile.ZipFile(io.BytesIO(wheel))
    names = archive.namelist()
    assert "rentalctl/jobs.py" in names and "rentalctl/_shipped/redshift/presentation.sql" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    metadata = archive.read(f"rentalctl-{rentalctl.__version__}.dist-info/METADATA").decode()
    assert "Requires-Python: >=3.9" in metadata
    requires = [
        Requirement(line.split(": ", 1)[1])
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: ")
    ]
    assert [r.name for r in requires] == ["pyyaml", "pymysql", "redshift-connector", "sqlglot"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pinned = {Requirement(d).name: Requirement(d).specifier for d in project["dependencies"]}
    assert all(r.specifier == pinned[r.name] for r in requires)

    path = tmp_path / WHEEL.split("/")[-1]
    path.write_bytes(wheel)
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target"]
    subprocess.run([*pip, str(target), str(path)], check=True)
    probe = (
        "import rentalctl, rentalctl.resources as r; print(rentalctl.__file__); "
        "print(len(r.shipped('redshift/presentation.sql').read_text()))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    where, size = out.stdout.split()
    assert where.startswith(str(target))
    assert int(size) == len((REPO / "redshift" / "presentation.sql").read_text())


# --- the Glue entrypoint, run through main() -------------------------------------------------


def load_entrypoint() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rentalctl_glue_job", ENTRYPOINT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def local_aws_target(moto: Moto, aws_config: Path, tmp_path: Path) -> config.Settings:
    """upload-scripts has run for a target whose lake is on (moto) S3 and whose source, state
    and warehouse are local files, so the jobs can run here through the entrypoint."""
    sets = (
        f"source.url=sqlite:///{tmp_path}/source.db",
        f"state.url=sqlite:///{tmp_path}/state.db",
        f"warehouse.url=duckdb:///{tmp_path}/warehouse.duckdb",
    )
    assert upload(aws_config, sets=sets)[0] == 0
    overrides = {"lake.url": LAKE, **dict(s.split("=", 1) for s in sets)}
    return config.load(config=str(aws_config), overrides=overrides, env={})


def test_entrypoint_runs_the_record_failure_job(
    local_aws_target: config.Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from rentalctl import run_records as records
    from rentalctl.context import Context

    ctx = Context(local_aws_target)
    ctx.state.ensure()
    records.start(ctx, "run-1", mode="incremental", since=None, until=None, tables=[], target="aws")
    error = {"Error": "States.TaskFailed", "Cause": "extract failed"}
    job = load_entrypoint()
    code = job.main(
        [
            "--JOB_NAME", "some-name-glue-gave", "--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1",
            "--rentalctl_job", "record-failure",  # wins over --JOB_NAME
            "--rentalctl_config", f"{SCRIPTS}/config/rentalctl.yaml",
            "--run_id", "run-1", "--error", json.dumps(error),
            "--enable-metrics", "true", "--scriptLocation", f"{SCRIPTS}/glue/job.py",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr()
    assert json.loads(out.out) == {"job": "record-failure", "result": {"recorded": True}}
    record = Context(local_aws_target).state.get_run("run-1")
    assert record is not None
    assert record["status"] == "FAILED" and record["error"] == error and record["ended_at"]


def test_entrypoint_runs_an_extract_load_named_by_its_glue_job(
    local_aws_target: config.Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    from rentalctl.adapters.factories import open_source
    from rentalctl.context import Context
    from rentalctl.tables import TABLES

    with open_source(local_aws_target.source, create=True) as source:
        source.ensure_schema(TABLES.values())
        rows = [
            (1, "Loft", "web", "1200.00", "EUR", "2024-01-02 10:00:00", 1, "2024-01-02 10:00:00"),
            (2, "Flat", "app", "900.50", "USD", "2024-01-03 11:00:00", 0, "2024-01-03 11:00:00"),
        ]
        source.write([(source.insert_sql(TABLES["apartments"]), rows)])
    Context(local_aws_target).state.ensure()

    argv = [
        "--JOB_NAME", "rentalctl-extract-load",
        "--rentalctl_config", f"{SCRIPTS}/config/rentalctl.yaml",
        "--run_id", "run-2", "--table", "apartments", "--extract_mode", "incremental",
        "--since", "null", "--until", "null",
    ]  # fmt: skip
    # The extract runs; the raw load needs DuckDB's httpfs for an S3 lake, which cannot be
    # installed here: the job fails after its first step, as a Glue run would.
    with pytest.raises(SystemExit) as failed:
        load_entrypoint().main(argv)
    assert failed.value.code == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("rentalctl job rentalctl-extract-load failed: pipeline_failed: ")
    listing = [k for k in _lake_keys() if "run_id=run-2" in k]
    assert any(k.startswith("lake/raw/apartments/run_id=run-2/") for k in listing), listing
    # The extract's result is recorded (a retry skips the step), and so is the failure.
    assert "lake/runs/run_id=run-2/extract.apartments.json" in listing
    assert "lake/runs/run_id=run-2/failed/extract-load.apartments.json" in listing
    key = "lake/runs/run_id=run-2/extract.apartments.json"
    extracted = json.loads(
        boto3.client("s3", region_name=REGION).get_object(Bucket=BUCKET, Key=key)["Body"].read()
    )
    # No bookmark yet: the first incremental extract reads the whole table.
    assert (extracted["table"], extracted["rows"], extracted["mode"]) == ("apartments", 2, "full")


def test_entrypoint_reads_the_source_password_from_its_secret(
    moto: Moto, aws_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    secrets = boto3.client("secretsmanager", region_name=REGION)
    arn = secrets.create_secret(
        Name="rentalctl/aurora", SecretString=json.dumps({"username": "u", "password": "pw-1"})
    )["ARN"]
    settings = config.load(config=str(aws_config), overrides={"aws.source_secret_arn": arn}, env={})
    monkeypatch.setenv("RENTALCTL_SOURCE_PASSWORD", "")  # unset, and restored after the test
    load_entrypoint().provide_source_password(settings, None)
    assert os.environ["RENTALCTL_SOURCE_PASSWORD"] == "pw-1"


def _lake_keys() -> list[str]:
    import boto3

    pages = boto3.client("s3", region_name=REGION).get_paginator("list_objects_v2")
    return [o["Key"] for p in pages.paginate(Bucket=BUCKET) for o in p.get("Contents", [])]


def test_entrypoint_fails_the_glue_run_with_one_line_on_an_expected_error(
    local_aws_target: config.Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    job = load_entrypoint()
    uri = f"{SCRIPTS}/config/rentalctl.yaml"
    cases = [
        [
            "--rentalctl_job",
            "extract-load",
            "--rentalctl_config",
            uri,
            "--run_id",
            "r",
            "--table",
            "x",
        ],
        ["--JOB_NAME", "someone-elses-job", "--rentalctl_config", uri, "--run_id", "r"],
        ["--rentalctl_job", "publish", "--rentalctl_config", f"{SCRIPTS}/config/missing.yaml"],
        ["--rentalctl_job", "publish"],
    ]
    for argv in cases:
        with pytest.raises(SystemExit) as failed:
            job.main(argv)
        assert failed.value.code == 1, argv
        out = capsys.readouterr()
        assert out.out == ""
        assert out.err.startswith("rentalctl job ") and out.err.count("\n") == 1, out.err
        assert "Traceback" not in out.err


def test_entrypoint_is_safe_to_import_and_python_3_9_clean() -> None:
    source = ENTRYPOINT.read_text(encoding="utf-8")
    ast.parse(source, str(ENTRYPOINT), feature_version=(3, 9))
    assert py310_runtime_features(source, str(ENTRYPOINT)) == []
    # Importing it runs nothing: no rentalctl, boto3, pyspark or awsglue, no output.
    probe = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('job', {str(ENTRYPOINT)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('rentalctl', 'boto3', 'botocore', 'pyspark', 'awsglue', 'yaml')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd="/", check=True
    )
    assert out.stdout == "[]\n" and out.stderr == ""


def test_entrypoint_and_wheel_on_python_3_9(tmp_path: Path) -> None:
    """Under a real 3.9 (when there is one): the entrypoint parses Glue's arguments, and pip
    accepts the library wheel (Requires-Python) and installs what the jobs read."""
    python = python39()
    if python is None:
        pytest.skip("no Python 3.9 interpreter here (the static checks above still ran)")
    probe = (
        "import importlib.util, json\n"
        f"spec = importlib.util.spec_from_file_location('job', {str(ENTRYPOINT)!r})\n"
        "job = importlib.util.module_from_spec(spec); spec.loader.exec_module(job)\n"
        "options = job.parse_args(['--JOB_ID', 'j', '--JOB_NAME', 'rentalctl-load-raw',\n"
        "    '--scriptLocation', 's3://b/job.py', '--run_id', 'r1', '--table', 'bookings',\n"
        "    '--run', 'not --run_id', '--rentalctl_config', 's3://b/c.yaml'])\n"
        "print(json.dumps([job.job_name(options, 'rentalctl'), job.job_arguments(options)]))\n"
    )
    out = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd="/")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == ["load-raw", {"--run_id": "r1", "--table": "bookings"}]

    wheel = tmp_path / WHEEL.split("/")[-1]
    wheel.write_bytes(glue_files.build_wheel())
    pip = [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target"]
    installed = subprocess.run([*pip, str(tmp_path / "site"), str(wheel)], capture_output=True)
    assert installed.returncode == 0, installed.stderr
    assert (tmp_path / "site/rentalctl/_shipped/redshift/presentation.sql").is_file()


# --- what a Python shell job imports, and Python 3.9 ----------------------------------------

# The AWS adapters a job's Context opens on the aws target (rentalctl.context selects them at
# run time, so the static import graph does not show them).
AWS_ADAPTERS = (
    "rentalctl.adapters.lake_s3",
    "rentalctl.adapters.state_dynamodb",
    "rentalctl.adapters.source_mysql",
    "rentalctl.adapters.warehouse_redshift",
)
# Third-party packages those modules may import on Glue Python shell: Glue's own, and the
# Requires-Dist of the library wheel (import names).
PYTHON_SHELL_PROVIDES = {"boto3", "botocore", "yaml", "pymysql", "redshift_connector", "sqlglot"}

# Found by py310_runtime_features below (module: lines). Glue Python shell runs 3.9, where each
# fails at import or at run time. To be fixed in those modules, then this list emptied.

_NEW_NAMES = {  # names that appeared after Python 3.9
    "datetime": {"UTC"},
    "enum": {"StrEnum", "ReprEnum", "EnumCheck", "FlagBoundary", "verify", "member", "nonmember"},
    "typing": {
        "Self", "Never", "LiteralString", "TypeAlias", "ParamSpec", "Concatenate", "TypeGuard",
        "assert_never", "assert_type", "reveal_type", "Required", "NotRequired", "Unpack",
        "TypeVarTuple", "dataclass_transform", "is_typeddict",
    },
    "itertools": {"pairwise", "batched"},
    "contextlib": {"chdir", "aclosing"},
    "asyncio": {"TaskGroup", "timeout", "Runner"},
    "inspect": {"get_annotations"},
    "hashlib": {"file_digest"},
}  # fmt: skip
_NEW_MODULES = {"tomllib"}
_NEW_BUILTINS = {"aiter", "anext", "ExceptionGroup", "BaseExceptionGroup", "EncodingWarning"}
_NEW_KEYWORDS = {"zip": {"strict"}, "dataclass": {"slots", "kw_only"}, "field": {"kw_only"}}
_TYPES = {"int", "float", "str", "bytes", "bool", "dict", "list", "tuple", "set", "frozenset"}


def _typeish(node: ast.expr) -> bool:
    """Could this operand of ``|`` be a type (so ``|`` builds a union at run time)?"""
    if isinstance(node, ast.Constant):
        return node.value is None
    if isinstance(node, ast.Name):
        return node.id in _TYPES or node.id[:1].isupper()
    if isinstance(node, ast.Attribute):
        return node.attr[:1].isupper()
    if isinstance(node, ast.Subscript):
        return _typeish(node.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _typeish(node.left) or _typeish(node.right)
    return False


def _annotations(node: ast.AST) -> Iterator[ast.expr]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        a = node.args
        every = [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]
        yield from (arg.annotation for arg in every if arg and arg.annotation)
        if node.returns:
            yield node.returns
    elif isinstance(node, ast.AnnAssign):
        yield node.annotation


def py310_runtime_features(source: str, filename: str) -> list[tuple[int, str]]:
    """Uses of Python 3.10+ features that parse under 3.9 but fail when run there: ``X | Y``
    on types outside postponed annotations, names and keywords new in 3.10/3.11."""
    tree = ast.parse(source, filename, feature_version=(3, 9))
    postponed = any(
        isinstance(n, ast.ImportFrom)
        and n.module == "__future__"
        and any(a.name == "annotations" for a in n.names)
        for n in tree.body
    )
    in_annotations: set[int] = set()
    if postponed:  # annotations stay strings; elsewhere they are evaluated
        for node in ast.walk(tree):
            for annotation in _annotations(node):
                in_annotations.update(id(n) for n in ast.walk(annotation))
    found = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            if id(node) not in in_annotations and (_typeish(node.left) or _typeish(node.right)):
                found.append((line, "X | Y type union evaluated at run time"))
        elif isinstance(node, ast.ImportFrom) and node.module in _NEW_NAMES:
            for alias in node.names:
                if alias.name in _NEW_NAMES[node.module]:
                    found.append((line, f"from {node.module} import {alias.name}"))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            modules += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            found += [(line, f"import {m}") for m in modules if m in _NEW_MODULES]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.attr in _NEW_NAMES.get(node.value.id, ()):
                found.append((line, f"{node.value.id}.{node.attr}"))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            for keyword in node.keywords:
                if keyword.arg in _NEW_KEYWORDS.get(name, ()):
                    found.append((line, f"{name}({keyword.arg}=...)"))
        elif isinstance(node, ast.Name) and node.id in _NEW_BUILTINS:
            found.append((line, node.id))
    return sorted(set(found))


def _rentalctl_imports(tree: ast.AST) -> list[str]:
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return [m for m in out if m.split(".")[0] == "rentalctl"]


def python_shell_modules(job: str) -> dict[str, str]:
    """The modules (name -> file) a Python shell job imports: the entrypoint's imports (without
    the Spark-only ``_spark_session``), the job function's, and the AWS adapters; followed at
    run time in a fresh interpreter, so every module-level import is counted."""
    tree = ast.parse(ENTRYPOINT.read_text(encoding="utf-8"))
    roots = []
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name == "_spark_session"):
            roots += _rentalctl_imports(node)
    roots += _rentalctl_imports(ast.parse(inspect.getsource(JOBS[job])))
    probe = (
        "import importlib, json, sys\n"
        f"for name in {sorted(set(roots) | set(AWS_ADAPTERS))!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError as exc:\n"
        "        if exc.name != name:\n"  # `from package import function`, not a module
        "            raise\n"
        "print(json.dumps({n: getattr(m, '__file__', None) for n, m in sys.modules.items()}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd="/", env=env
    )
    assert out.returncode == 0, out.stderr
    modules: dict[str, str] = json.loads(out.stdout)
    return modules


@pytest.fixture(scope="module")
def shell_modules() -> dict[str, dict[str, str]]:
    """job -> its modules, for every Python shell job."""
    return {job: python_shell_modules(job) for job in PYTHON_SHELL_JOBS}


def _own(modules: dict[str, str]) -> dict[str, Path]:
    return {n: Path(f) for n, f in modules.items() if n.split(".")[0] == "rentalctl" and f}


def test_python_shell_jobs_import_only_3_9_parsable_code_and_no_spark(
    shell_modules: dict[str, dict[str, str]],
) -> None:
    for job, modules in shell_modules.items():
        own = _own(modules)
        assert {"rentalctl.jobs", "rentalctl.config", "rentalctl.context"} <= set(own), job
        for path in own.values():
            ast.parse(path.read_text(encoding="utf-8"), str(path), feature_version=(3, 9))
        heavy = {m.split(".")[0] for m in modules} & {"pyspark", "duckdb", "typer", "rich"}
        assert heavy == set(), (job, heavy)
        assert "rentalctl.cli" not in own and "rentalctl.spark" not in own, job
    assert "rentalctl.pipeline.merge" in _own(shell_modules["publish"])
    assert "rentalctl.run_records" in _own(shell_modules["record-failure"])


def test_python_shell_modules_import_only_what_glue_provides(
    shell_modules: dict[str, dict[str, str]],
) -> None:
    """Every third-party import in those modules (also inside functions, but not under
    TYPE_CHECKING) is Glue's own or a requirement of the library wheel."""
    for path in {p for modules in shell_modules.values() for p in _own(modules).values()}:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("rentalctl", "__future__"):
                    continue
                if path.name in ("warehouse.py", "spark.py") and top in ("duckdb", "pyspark"):
                    continue  # local-target branches
                assert top in PYTHON_SHELL_PROVIDES, (str(path), name)


def _findings(shell_modules: dict[str, dict[str, str]]) -> dict[str, list[tuple[int, str]]]:
    own: dict[str, Path] = {}
    for modules in shell_modules.values():
        own.update(_own(modules))
    found = {
        n: py310_runtime_features(p.read_text(encoding="utf-8"), str(p)) for n, p in own.items()
    }
    return {name: hits for name, hits in sorted(found.items()) if hits}


def test_python_shell_modules_run_on_python_3_9(
    shell_modules: dict[str, dict[str, str]],
) -> None:
    assert _findings(shell_modules) == {}
