"""Security: secrets stay out of everything rentalctl produces, passwords come only from the
environment or Secrets Manager, the S3 lake encrypts every object, the shipped IAM policies
grant nothing on wildcards, and configuration cannot smuggle identifiers into SQL or AWS names.

Secrets are distinctive strings that appear nowhere else, so finding one anywhere (an output, a
log line, a run record, a lake file, something the tool wrote to AWS) is a leak. Commands run
in-process with rentalctl's own logging set up as a user's ``--verbose`` gets it (pytest's
capturing handlers are put aside for the call), so a library logging a secret at DEBUG shows.
"""

from __future__ import annotations

import gzip
import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rentalctl.cli import app
from tests.support.moto_aws import (
    ACCOUNT,
    NAME,
    REGION,
    ROLE,
    TOPIC,
    glue_sync_stand_in,
)
from tests.support.wheels import use_stand_in_wheels

SOURCE_PASSWORD = "SrcPw-Kestrel-7731-qZ"
REDSHIFT_PASSWORD = "RsPw-Heron-5520-xW"
AWS_SECRET_KEY = "AwsKey-Osprey-4410-vT"
WRONG_PASSWORD = "WrongPw-Plover-9046-kJ"
SECRETS = {
    "source password": SOURCE_PASSWORD,
    "Redshift password": REDSHIFT_PASSWORD,
    "AWS secret access key": AWS_SECRET_KEY,
    "mistyped source password": WRONG_PASSWORD,
}

Artefacts = dict[str, str]


# --------------------------------------------------------------------------------- helpers


@contextmanager
def product_logging() -> Iterator[None]:
    """rentalctl's own logging setup, as in a terminal: pytest's handlers on the root logger
    would make ``logging.basicConfig`` in the CLI a no-op, so they are set aside for the call
    and everything the CLI configures is undone afterwards."""
    root, own = logging.getLogger(), logging.getLogger("rentalctl")
    handlers, level, own_level = root.handlers[:], root.level, own.level
    for handler in handlers:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        own.setLevel(own_level)


class Cli:
    """Runs ``rentalctl`` in this process and keeps every output as an artefact to scan."""

    def __init__(self) -> None:
        self.outputs: Artefacts = {}

    def __call__(self, *args: str, code: int = 0) -> Any:
        with product_logging():
            result = CliRunner().invoke(app, list(args))
        name = f"rentalctl {' '.join(args)}"
        self.outputs[f"{name} (stdout)"] = result.stdout
        self.outputs[f"{name} (stderr)"] = result.stderr
        assert result.exit_code == code, (args, result.stdout[-2000:], result.stderr[-3000:])
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self("-o", "json", *args, code=code).stdout)


def leaks(artefacts: Artefacts) -> list[str]:
    """``"<artefact>: <secret>"`` for every secret found in an artefact."""
    return [
        f"{where}: {what}"
        for where, text in artefacts.items()
        for what, secret in SECRETS.items()
        if secret in text
    ]


def file_texts(root: Path, label: str) -> Artefacts:
    """Every file under ``root`` as text: raw bytes (decoded leniently), gzip content
    decompressed, Parquet as its rows."""
    import duckdb

    out: Artefacts = {}
    parquet = duckdb.connect()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = f"{label}/{path.relative_to(root)}"
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # SQLite's -shm/-wal, gone as the last connection closed
            continue
        out[name] = data.decode("utf-8", "replace")
        if path.suffix == ".gz":
            out[f"{name} (decompressed)"] = gzip.decompress(data).decode("utf-8", "replace")
        elif path.suffix == ".parquet":
            rows = parquet.execute("SELECT * FROM read_parquet(?)", [str(path)]).fetchall()
            out[f"{name} (rows)"] = repr(rows)
    parquet.close()
    return out


# ------------------------------------------------------------------------ a local run's artefacts


@pytest.fixture
def mysql_user(mysql_server: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(user, database): a MySQL user of its own, with a distinctive password, owning a
    database that does not exist yet (demo-data creates it); both dropped afterwards."""
    import pymysql

    suffix = uuid.uuid4().hex[:8]
    user, database = f"rc_sec_{suffix}", f"rentalctl_sec_{suffix}"
    conn = pymysql.connect(autocommit=True, **mysql_server)
    try:
        with conn.cursor() as cur:
            # '%%': pymysql formats the statement, as it binds the password.
            cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY %s", [SOURCE_PASSWORD])
            cur.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO '{user}'@'%'")
        yield user, database
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        conn.close()


@pytest.mark.mysql
@pytest.mark.slow
def test_local_run_leaks_no_secret(
    mysql_server: dict[str, Any],
    mysql_user: tuple[str, str],
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    reliability: Any,
) -> None:
    from tests.reliability.support import warehouse_snapshot

    user, database = mysql_user
    host, port = mysql_server["host"], mysql_server["port"]
    monkeypatch.setenv("RENTALCTL_SOURCE_URL", f"mysql://{user}@{host}:{port}/{database}")
    monkeypatch.setenv("RENTALCTL_SOURCE_PASSWORD", SOURCE_PASSWORD)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLESECURITY1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY)
    cli = Cli()

    cli("demo-data", "--scale", "0.002")
    ok = cli("-v", "run")
    # --verbose shows rentalctl's debug lines (the extract queries) and no library's: botocore
    # and py4j log secrets at DEBUG.
    log_lines = [ln for ln in ok.stderr.splitlines() if " DEBUG " in ln or " INFO " in ln]
    assert any(" DEBUG rentalctl.pipeline.extract: " in ln for ln in log_lines)
    assert [ln for ln in log_lines if " rentalctl." not in ln] == []

    # A failing run for the failure path's records: a backfill of everything, whose dirty rows
    # the strictest data-quality gate refuses.
    cli("-v", "--set", "quality.max_rejected_share=0.0001", "--set", "retry.max_attempts=0",
        "backfill", "--since", "2000-01-01", code=1)  # fmt: skip
    # A mistyped password: the run cannot start, and the message names user and host only.
    monkeypatch.setenv("RENTALCTL_SOURCE_PASSWORD", WRONG_PASSWORD)
    refused = cli("-v", "run", code=3)
    assert f"user {user!r}" in refused.stderr

    runs = cli.json("status")["runs"]
    assert sorted(r["status"] for r in runs) == ["FAILED", "SUCCEEDED"]
    records = {r["run_id"]: cli.json("status", r["run_id"]) for r in runs}
    failed = next(r for r in records.values() if r["status"] == "FAILED")
    assert "data-quality gate" in json.dumps(failed["error"])

    artefacts: Artefacts = dict(cli.outputs)
    artefacts.update(
        {f"run record {run_id}": json.dumps(record) for run_id, record in records.items()}
    )
    artefacts.update(file_texts(home, "home"))  # lake, state store, warehouse file, logs
    artefacts["warehouse tables"] = repr(warehouse_snapshot(home))
    lake_files = [name for name in artefacts if name.startswith("home/lake/")]
    for kind in ("/raw/", "/runs/", "_manifest.json", ".parquet"):
        assert any(kind in name for name in lake_files), kind
    assert leaks(artefacts) == []
    reliability(
        "security",
        "secrets (MySQL password of a dedicated user in RENTALCTL_SOURCE_PASSWORD, AWS secret "
        "key in the environment) against a local `-v run`, a failing backfill (quality gate), a "
        "run with a mistyped password (exit 3) and status",
        "no secret in any output or log line, run record, lake file (raw CSV, manifests, "
        "Parquet, job results under runs/), state store or warehouse; --verbose shows "
        "rentalctl's debug lines and no library's",
        "nothing",
    )


# ------------------------------------------------------------------------ AWS-side artefacts

BUCKET = "sec-lake"


def aws_config(source_secret: str, redshift_secret: str) -> str:
    return f"""\
target: aws
source: {{url: "mysql://etl@db.example.com:3306/marketplace"}}
lake: {{url: "s3://{BUCKET}/rentalctl"}}
# A warehouse nothing listens on: a run's KPI snapshot fetches the secret, then cannot connect.
warehouse: {{url: "redshift://etl@127.0.0.1:1/dw"}}
state: {{url: "dynamodb://rentalctl-sec-state"}}
retry: {{interval_seconds: 1, max_attempts: 0, backoff_rate: 1.0, max_delay_seconds: 1}}
aws:
  region: {REGION}
  glue_role_arn: arn:aws:iam::{ACCOUNT}:role/rentalctl-glue
  state_machine_name: {NAME}
  state_machine_role_arn: {ROLE}
  state_machine_log_group_arn: "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/rentalctl/sfn:*"
  sns_topic_arn: {TOPIC}
  source_secret_arn: {source_secret}
  redshift_secret_arn: {redshift_secret}
  redshift_copy_role_arn: arn:aws:iam::{ACCOUNT}:role/rentalctl-redshift-copy
"""


@pytest.mark.slow  # upload-scripts builds the library wheel
def test_aws_side_artefacts_hold_no_secret(
    aws_credentials: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reliability: Any,
) -> None:
    use_stand_in_wheels(monkeypatch, tmp_path / "wheelhouse")  # no package index here
    import boto3
    from moto import mock_aws

    from rentalctl import aws

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET_KEY)
    # An operator may well have the source password in the environment too: it must not be
    # shipped to AWS from there.
    monkeypatch.setenv("RENTALCTL_SOURCE_PASSWORD", SOURCE_PASSWORD)
    # Which secrets the commands read: a scan only means something if a secret was in memory.
    secrets_read: list[str] = []
    make_session = aws.session

    def spying_session(region: str | None = None) -> Any:
        session = make_session(region)
        session.events.register(
            "before-parameter-build.secrets-manager.GetSecretValue",
            lambda params, **_: secrets_read.append(params["SecretId"]),
        )
        return session

    monkeypatch.setattr(aws, "session", spying_session)
    cli = Cli()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        secrets = boto3.client("secretsmanager", region_name=REGION)
        source_arn = secrets.create_secret(
            Name="rentalctl/aurora",
            SecretString=json.dumps({"username": "etl", "password": SOURCE_PASSWORD}),
        )["ARN"]
        redshift_arn = secrets.create_secret(
            Name="rentalctl/redshift",
            SecretString=json.dumps({"username": "etl", "password": REDSHIFT_PASSWORD}),
        )["ARN"]
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        boto3.client("sns", region_name=REGION).create_topic(Name="rentalctl-alerts")
        path = tmp_path / "aws.yaml"
        path.write_text(aws_config(source_arn, redshift_arn))
        c = ("--config", str(path), "-v")

        for role in ("glue-job", "state-machine", "redshift-copy"):
            cli(*c, "iam-policy", role)
        cli(*c, "seed-bookmarks")
        cli(*c, "upload-scripts", "--dry-run")
        cli(*c, "upload-scripts")
        cli(*c, "deploy-sfn", "--dry-run")
        cli(*c, "deploy-sfn")

        sfn = boto3.client("stepfunctions", region_name=REGION)
        (machine,) = sfn.list_state_machines()["stateMachines"]
        arn = machine["stateMachineArn"]
        artefacts: Artefacts = {
            "deployed state machine definition": sfn.describe_state_machine(stateMachineArn=arn)[
                "definition"
            ]
        }
        # moto cannot run glue:startJobRun.sync: the same definition with plain startJobRun.
        definition, _ = glue_sync_stand_in(
            json.loads(artefacts["deployed state machine definition"])
        )
        sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(definition))

        ok = cli.json(*c, "run", "--run-id", "sec-ok")
        assert ok["status"] == "SUCCEEDED"
        # Its KPI snapshot comes from the presentation step's result in S3: the operator's run
        # logs in to no database, so it read no secret (the environment's are scanned below).
        assert secrets_read == []
        # A failing run: the transform job is gone, its task fails, the failure is recorded.
        glue = boto3.client("glue", region_name=REGION)
        glue.delete_job(JobName="rentalctl-transform")
        failed = cli.json(*c, "run", "--run-id", "sec-failed", code=1)
        assert failed["status"] == "FAILED"
        for run_id in ("sec-ok", "sec-failed"):
            cli(*c, "-o", "json", "status", run_id)
        cli(*c, "status")

        executions = sfn.list_executions(stateMachineArn=arn)["executions"]
        assert sorted(e["name"] for e in executions) == ["sec-failed", "sec-ok"]
        for execution in executions:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            artefacts[f"execution input {execution['name']}"] = described["input"]
            history = sfn.get_execution_history(executionArn=execution["executionArn"])
            artefacts[f"execution history {execution['name']}"] = json.dumps(
                history["events"], default=str
            )
        for job in glue.get_jobs()["Jobs"]:
            artefacts[f"Glue job {job['Name']}"] = json.dumps(job, default=str)
        for obj in s3.list_objects_v2(Bucket=BUCKET)["Contents"]:
            body = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
            artefacts[f"s3://{BUCKET}/{obj['Key']}"] = body.decode("utf-8", "replace")
        table = boto3.client("dynamodb", region_name=REGION).scan(TableName="rentalctl-sec-state")
        artefacts["DynamoDB state table"] = json.dumps(table["Items"])

    artefacts.update(cli.outputs)
    assert leaks(artefacts) == []
    # The scan looked where the secrets' neighbours are: ARNs in Glue arguments and policies.
    assert any(source_arn in text for text in artefacts.values())
    reliability(
        "security",
        "secrets (source and Redshift passwords in Secrets Manager, the source password and AWS "
        "secret key in the environment) against every AWS-side artefact of iam-policy, "
        "seed-bookmarks, upload-scripts, deploy-sfn, a succeeding and a failing `-v run` and "
        "status",
        "no secret in any output or log line, S3 object, Glue job definition, state machine "
        "definition, execution input or history, or DynamoDB item",
        "nothing",
    )


# ------------------------------------------------------- passwords only from env or Secrets Manager

URL_PASSWORD = "UrlPw-Lapwing-3318-nB"
MYSQL_WITH_PASSWORD = f"mysql://etl:{URL_PASSWORD}@db.example.com:3306/market"
# (how the password was given, YAML file or None, extra arguments, environment, the setting the
# message must name)
PASSWORD_CASES = [
    (
        "mysql://USER:PASSWORD@… as source.url in the YAML file",
        f'source: {{url: "{MYSQL_WITH_PASSWORD}"}}\n',
        [],
        {},
        "source.url",
    ),
    (
        "--set source.url=mysql://USER:PASSWORD@…",
        None,
        ["--set", f"source.url={MYSQL_WITH_PASSWORD}"],
        {},
        "source.url",
    ),
    (
        "--set source=mysql://USER:PASSWORD@…",
        None,
        ["--set", f"source={MYSQL_WITH_PASSWORD}"],
        {},
        "'source'",
    ),
    (
        "RENTALCTL_SOURCE_URL=mysql://USER:PASSWORD@…",
        None,
        [],
        {"RENTALCTL_SOURCE_URL": MYSQL_WITH_PASSWORD},
        "source.url",
    ),
    (
        "redshift://USER:PASSWORD@… as warehouse.url in the YAML file",
        f'warehouse: {{url: "redshift://loader:{URL_PASSWORD}@wg.example.com:5439/dw"}}\n',
        [],
        {},
        "warehouse.url",
    ),
    (
        "--set source.url=mysql://USER@…/DB?password=PASSWORD",
        None,
        ["--set", f"source.url=mysql://etl@db.example.com:3306/market?password={URL_PASSWORD}"],
        {},
        "source.url",
    ),
    (
        "--set source.url:mysql://USER:PASSWORD@… (':' typed for '=')",
        None,
        ["--set", f"source.url:{MYSQL_WITH_PASSWORD}"],
        {},
        "--set",
    ),
    (
        "source.password in the YAML file",
        f'source: {{url: "mysql://etl@db.example.com/market", password: "{URL_PASSWORD}"}}\n',
        [],
        {},
        "'source.password'",
    ),
]


@pytest.mark.parametrize(
    ("how", "yaml_text", "args", "env", "key"), PASSWORD_CASES, ids=[c[0] for c in PASSWORD_CASES]
)
def test_a_password_in_configuration_is_refused_without_echo(
    how: str,
    yaml_text: str | None,
    args: list[str],
    env: dict[str, str],
    key: str,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reliability: Any,
) -> None:
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    config_args: list[str] = []
    if yaml_text is not None:
        path = tmp_path / "with-password.yaml"
        path.write_text(yaml_text)
        config_args = ["--config", str(path)]
    cli = Cli()
    text = cli(*config_args, *args, "run", code=2)
    doc = cli.json(*config_args, *args, "run", code=2)

    assert doc["error"]["exit_code"] == 2
    assert "\n" not in doc["error"]["message"]  # one line, no traceback
    assert key in doc["error"]["message"] and key in text.stderr
    assert text.stdout == ""
    assert not [name for name, out in cli.outputs.items() if URL_PASSWORD in out]
    assert not home.exists()  # refused before anything was created or connected to
    reliability(
        "security",
        f"a password in configuration: {how}",
        f"refused with exit 2 before anything ran; the message names {key.strip(chr(39))} "
        "and does not show the password",
        "nothing",
    )


# ----------------------------------------------------------- identifiers from configuration

# (where the value was given, YAML file or None, arguments, the setting named, the value)
IDENTIFIER_CASES: list[tuple[str, str | None, list[str], str, Any]] = [
    ("tables in the YAML file", "tables: ['bookings; DROP TABLE x']\n", ["run"], "tables",
     "bookings; DROP TABLE x"),
    ("--set tables", None, ["--set", 'tables=[apartments" --]', "run"], "tables",
     'apartments" --'),
    ("--set tables", None, ["--set", "tables=../../etc", "run"], "tables", "../../etc"),
    ("lookback.TABLE in the YAML file", "lookback: {'bookings; DROP TABLE x': 60}\n", ["run"],
     "lookback.bookings; DROP TABLE x", 60),
    ("--set lookback.TABLE", None, ["--set", "lookback.../../etc=60", "run"],
     "lookback.../../etc", 60),
    ("fx_rates in the YAML file", "fx_rates: {\"EUR'); DROP TABLE x; --\": 1.08}\n", ["run"],
     "fx_rates.EUR'); DROP TABLE x; --", "EUR'); DROP TABLE x; --"),
    ("--set fx_rates.CODE", None, ["--set", 'fx_rates.US"D=1', "run"], 'fx_rates.US"D',
     'US"D'),
    ("--set aws.glue_job_prefix", None, ["--set", "aws.glue_job_prefix=rentalctl*", "run"],
     "aws.glue_job_prefix", "rentalctl*"),
    ("--set aws.glue_job_prefix", None, ["--set", "aws.glue_job_prefix=../../etc", "run"],
     "aws.glue_job_prefix", "../../etc"),
    ("--set aws.glue_job_prefix", None, ["--set", "aws.glue_job_prefix=x; DROP TABLE y", "run"],
     "aws.glue_job_prefix", "x; DROP TABLE y"),
    ("--set aws.state_machine_name", None, ["--set", "aws.state_machine_name=pipeline*", "run"],
     "aws.state_machine_name", "pipeline*"),
    ("--set aws.state_machine_name", None, ["--set", 'aws.state_machine_name=p" --', "run"],
     "aws.state_machine_name", 'p" --'),
    ("--set aws.scripts_prefix", None, ["--set", "aws.scripts_prefix=../../etc", "run"],
     "aws.scripts_prefix", "../../etc"),
    ("--set lake.url", None, ["--set", "lake.url=s3://rental-lake/lake/*", "run"], "lake.url",
     "s3://rental-lake/lake/*"),
    ("--set lake.url", None, ["--set", "lake.url=s3://rental-lake/../../etc", "run"],
     "lake.url", "s3://rental-lake/../../etc"),
    ("--set aws.glue_connections", None, ["--set", "aws.glue_connections=['*']", "run"],
     "aws.glue_connections", "*"),
    ("--set aws.region", None, ["--set", "aws.region=*", "run"], "aws.region", "*"),
    ("--set aws.sns_topic_arn", None, ["--set", "aws.sns_topic_arn=arn:aws:sns:*:*:*", "run"],
     "aws.sns_topic_arn", "arn:aws:sns:*:*:*"),
    ("--set aws.source_secret_arn", None,
     ["--set", f"aws.source_secret_arn=arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:*", "run"],
     "aws.source_secret_arn", f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:*"),
    ("--set aws.glue_role_arn", None,
     ["--set", f'aws.glue_role_arn=arn:aws:iam::{ACCOUNT}:role/x" --', "run"],
     "aws.glue_role_arn", f'arn:aws:iam::{ACCOUNT}:role/x" --'),
    ("--set state.url", None, ["--set", "state.url=dynamodb://state; DROP TABLE x", "run"],
     "state.url", "dynamodb://state; DROP TABLE x"),
    ("run --tables", None, ["run", "--tables", "bookings; DROP TABLE x"], "--tables",
     "bookings; DROP TABLE x"),
    ("run --tables", None, ["run", "--tables", 'apartments" --'], "--tables", 'apartments" --'),
    ("backfill --tables", None, ["backfill", "--since", "2025-01-01", "--tables", "../../etc"],
     "--tables", "../../etc"),
    ("run --run-id", None, ["run", "--run-id", "../../etc"], "--run-id", "../../etc"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("where", "yaml_text", "args", "key", "value"),
    IDENTIFIER_CASES,
    ids=[f"{c[0]}={c[4]}" for c in IDENTIFIER_CASES],
)
def test_identifiers_from_configuration_are_checked_before_use(
    where: str,
    yaml_text: str | None,
    args: list[str],
    key: str,
    value: Any,
    home: Path,
    tmp_path: Path,
    reliability: Any,
) -> None:
    config_args: list[str] = []
    if yaml_text is not None:
        path = tmp_path / "identifiers.yaml"
        path.write_text(yaml_text)
        config_args = ["--config", str(path)]
    result = Cli()(*config_args, *args, code=2)

    (message,) = result.stderr.splitlines()  # one line, no traceback
    assert message.startswith(f"error: invalid setting {key} = {value!r}"), message
    if key == "--tables":  # checked against the table specs: says which names it may hold
        assert "apartments, apartment_attributes, user_viewing, bookings" in message
    assert not home.exists()  # nothing ran: no SQL, no lake, no state store
    tried = f"`rentalctl {' '.join(args)}`"
    if yaml_text:
        tried += f" with `{yaml_text.strip()}` in the YAML file"
    reliability(
        "security",
        f"identifier from configuration ({where}): {tried}",
        "refused with exit 2 before anything ran; the message names the setting and the value",
        "nothing",
    )


def test_a_backfill_date_is_a_date_not_sql(home: Path, reliability: Any) -> None:
    value = "2025-01-01'; DROP TABLE bookings; --"
    result = Cli()("backfill", "--since", value, code=2)

    (message,) = result.stderr.splitlines()
    assert message == f"error: --since {value!r} is not a date: use YYYY-MM-DD[ HH:MM:SS]"
    assert not home.exists()
    reliability(
        "security",
        f"backfill --since {value}",
        "refused with exit 2 before anything ran; the message names the value and the "
        "date formats accepted",
        "nothing",
    )


# ------------------------------------------------------------------------ shipped IAM policies

REPO = Path(__file__).resolve().parents[2]
AWS_EXAMPLE = REPO / "config" / "aws.example.yaml"
# The shipped policy templates, one per role: a new one must be reviewed and added here.
IAM_TEMPLATES = {
    "glue-job": "glue-job-role.json",
    "state-machine": "state-machine-role.json",
    "redshift-copy": "redshift-copy-role.json",
}
# Wildcards a rendered policy may hold besides the documented "Resource": "*" statements,
# written out for config/aws.example.yaml: the objects under the lake's prefix, the log groups
# Glue itself names (/aws-glue/jobs/output, /aws-glue/jobs/error, /aws-glue/python-jobs/…), the
# network interfaces Glue creates in the connection's subnet (whose IDs no one knows in advance)
# and the executions of the state machine (named after their runs).
EXAMPLE_WILDCARD_RESOURCES = {
    "arn:aws:s3:::my-rental-lake/rentalctl/*",
    f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/*",
    f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws-glue/*:log-stream:*",
    f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*",
    f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/*",
    f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/*",
    f"arn:aws:states:{REGION}:{ACCOUNT}:execution:rentalctl-pipeline:*",
}
# Where each of those wildcards stays, as the report says it.
WILDCARD_SCOPES = {
    ":s3:::": "the lake's prefix",
    ":log-group:/aws-glue/": "Glue's own /aws-glue/ log groups",
    ":ec2:": "the account's network interfaces, subnets and security groups in the region",
    ":execution:": "the state machine's executions",
}
# What each statement on "Resource": "*" holds: actions AWS documents no resource-level
# permission for.
STAR_STATEMENTS = {
    "StepFunctionsLogDelivery": "the CloudWatch Logs delivery actions",
    "GlueVpcDescribe": "EC2's Describe actions for a job's network interface",
    "GlueJobMetrics": "cloudwatch:PutMetricData in the Glue namespace",
}


def _wildcards(role: str, doc: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(statements on "Resource": "*", other resources holding a wildcard); fails on a wildcard
    action or an undocumented "Resource": "*"."""
    from tests.test_iam import RESOURCE_STAR_ALLOWED, as_list

    star: list[str] = []
    others: list[str] = []
    for statement in doc["Statement"]:
        sid, statement_actions = statement["Sid"], as_list(statement["Action"])
        for action in statement_actions:
            service, _, name = action.partition(":")
            assert service and name and "*" not in action and "?" not in action, (role, sid)
        resources = as_list(statement["Resource"])
        if "*" in resources:
            # Only where AWS offers no resource-level permission, with exactly those actions.
            assert resources == ["*"], (role, sid)
            assert set(statement_actions) == RESOURCE_STAR_ALLOWED.get((role, sid)), (role, sid)
            star.append(sid)
        others += [r for r in resources if r != "*" and ("*" in r or "?" in r)]
    return star, others


@pytest.mark.parametrize("role", list(IAM_TEMPLATES))
def test_shipped_iam_policies_grant_nothing_on_wildcards(role: str, reliability: Any) -> None:
    from rentalctl import resources

    shipped = sorted(p.name for p in resources.shipped("config/iam").glob("*.json"))
    assert shipped == sorted(IAM_TEMPLATES.values())
    template = json.loads((resources.shipped("config/iam") / IAM_TEMPLATES[role]).read_text())
    template_star, _ = _wildcards(role, template)

    # Rendered as an operator gets it, from the shipped AWS profile.
    rendered = Cli().json("--config", str(AWS_EXAMPLE), "iam-policy", role)
    star, others = _wildcards(role, rendered)
    assert star == template_star
    assert set(others) <= EXAMPLE_WILDCARD_RESOURCES, others
    on_star = (
        f'{len(star)} statement(s) on "Resource": "*" ('
        + ", ".join(STAR_STATEMENTS[sid] for sid in star)
        + ": AWS documents no resource-level permission for them)"
        if star
        else 'no "Resource": "*"'
    )
    scopes = dict.fromkeys(
        scope for r in others for part, scope in WILDCARD_SCOPES.items() if part in r
    )
    wildcards = (
        f"{len(others)} resource ARN(s) ending in a wildcard, each within {' or '.join(scopes)}"
        if others
        else "no other wildcard"
    )
    reliability(
        "security",
        f"shipped IAM policy of the {role} role: config/iam/{IAM_TEMPLATES[role]} and its "
        "rendering from config/aws.example.yaml",
        f"no wildcard action; {on_star}; {wildcards}",
        "nothing",
    )


# ---------------------------------------------------------------------- S3 server-side encryption

SSE_BUCKET = "sec-sse-lake"
WRITES = ("PutObject", "CreateMultipartUpload", "CopyObject")


@pytest.mark.slow  # upload-scripts builds the library wheel
def test_every_object_written_to_the_s3_lake_is_encrypted(
    aws_credentials: str,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    reliability: Any,
) -> None:
    use_stand_in_wheels(monkeypatch, tmp_path / "wheelhouse")  # no package index here
    import boto3
    from moto import mock_aws

    from rentalctl import aws, config
    from rentalctl import run_records as records
    from rentalctl.adapters import lake_s3
    from rentalctl.context import Context
    from rentalctl.jobs import run_job
    from rentalctl.pipeline import steps
    from rentalctl.pipeline.archive import archive_run

    Cli()("demo-data", "--scale", "0.002")  # a SQLite source in the home
    requests: list[tuple[str, dict[str, Any]]] = []
    session = aws.session(REGION)
    session.events.register(
        "before-parameter-build.s3",
        lambda model, params, **_: requests.append((model.name, dict(params))),
    )
    path = tmp_path / "s3-lake.yaml"
    path.write_text(
        f"lake: {{url: 's3://{SSE_BUCKET}/lake'}}\n"
        f"aws: {{region: {REGION}, glue_role_arn: 'arn:aws:iam::{ACCOUNT}:role/rentalctl-glue'}}\n"
    )
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(
            Bucket=SSE_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        ctx = Context(config.load(config=str(path)), boto3_session=session)
        ctx.state.ensure()
        tables = list(ctx.settings.tables)
        records.start(ctx, "sse", mode="incremental", since=None, until=None, tables=tables,
                   target="local")  # fmt: skip
        # What writes the lake without Spark or a warehouse: raw parts and manifests (the
        # extract), job results (runs/), the archive's copies.
        for table in tables:
            steps.extract(ctx, table, "sse")
        run_job(ctx, "begin", {"--run_id": "sse", "--tables": json.dumps(tables)})
        archive_run(ctx, "sse", tables)
        # A file large enough for a multipart upload (the threshold lowered to S3's minimum).
        monkeypatch.setattr(lake_s3, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
        big = tmp_path / "part-00000.parquet"
        big.write_bytes(bytes(range(256)) * (6 * 4096))
        ctx.lake.put_file(big, "curated/bookings/run_id=sse/part-00000.parquet")
        # upload-scripts' uploads, through the command.
        Cli()("--config", str(path), "upload-scripts")

        keys = [
            o["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=SSE_BUCKET)
            for o in page.get("Contents", [])
        ]
        unencrypted = [
            k
            for k in keys
            if s3.head_object(Bucket=SSE_BUCKET, Key=k).get("ServerSideEncryption") != "AES256"
        ]

    kinds = {
        "archived raw parts": [k for k in keys if k.startswith("lake/archive/raw/")],
        "job results": [k for k in keys if k.startswith("lake/runs/")],
        "multipart upload": [k for k in keys if k.startswith("lake/curated/")],
        "scripts": [k for k in keys if k.startswith("lake/scripts/")],
    }
    assert all(kinds.values()), {k: len(v) for k, v in kinds.items()}
    assert not [k for k in keys if k.startswith("lake/raw/")]  # all moved by the archive
    assert unencrypted == []
    used = {name for name, _ in requests}
    assert set(WRITES) <= used, used
    unasked = [name for name, params in requests if name in WRITES and
               params.get("ServerSideEncryption") != "AES256"]  # fmt: skip
    assert unasked == []
    reliability(
        "security",
        "objects written to an S3 lake (moto): extract's raw parts and manifests, job results, "
        "the archive's copies, a multipart upload, and upload-scripts' files",
        "every write (PutObject, CreateMultipartUpload, CopyObject) asks for SSE-S3, and "
        "every object in the bucket reports ServerSideEncryption AES256",
        "nothing",
    )
