"""``rentalctl deploy-sfn`` on moto: create, leave alone, update, dry-run diff, the schedule, and
the deployed definition executed by moto's Step Functions interpreter (success and failure).

Commands go through a Typer app built here with rentalctl's own global options and error
handling; what was deployed is read back with plain boto3 calls, not through rentalctl.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import typer
from typer.testing import CliRunner

from rentalctl import aws
from rentalctl.cli import _Group, main_options
from rentalctl.cli.aws_commands import deploy_sfn
from tests.support.moto_aws import (
    ACCOUNT,
    GLUE_SYNC,
    NAME,
    REGION,
    ROLE,
    SM_ARN,
    TOPIC,
    glue_sync_stand_in,
    moto_executing_state_machines,
)

SCHEDULER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/rentalctl-scheduler"
LOG_GROUP = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/rentalctl/sfn:*"
JOBS = [
    "begin",
    "extract-load",
    "transform",
    "publish",
    "record-failure",
]
TABLES = ["apartments", "apartment_attributes", "user_viewing", "bookings"]
# Calls that change something on AWS: none may happen on --dry-run or when nothing changed.
MUTATING = {
    "CreateStateMachine",
    "UpdateStateMachine",
    "DeleteStateMachine",
    "CreateSchedule",
    "UpdateSchedule",
    "DeleteSchedule",
}

CONFIG = f"""\
target: aws
source: {{url: "mysql://etl@db.example.com:3306/marketplace"}}
lake: {{url: "s3://test-lake/rentalctl"}}
warehouse: {{url: "redshift://etl@wg.{ACCOUNT}.{REGION}.redshift-serverless.amazonaws.com:5439/dw"}}
state: {{url: "dynamodb://rentalctl-state"}}
retry: {{interval_seconds: 1, max_attempts: 1, backoff_rate: 1.0, max_delay_seconds: 1}}
aws:
  region: {REGION}
  glue_role_arn: arn:aws:iam::{ACCOUNT}:role/rentalctl-glue
  state_machine_name: {NAME}
  state_machine_role_arn: {ROLE}
  state_machine_log_group_arn: "{LOG_GROUP}"
  scheduler_role_arn: {SCHEDULER_ROLE}
  sns_topic_arn: {TOPIC}
"""


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def app() -> typer.Typer:
    """The two commands under rentalctl's global options and error-to-exit-code mapping."""
    test_app = typer.Typer(cls=_Group, pretty_exceptions_enable=False, add_completion=False)
    test_app.callback()(main_options)
    test_app.command("deploy-sfn")(deploy_sfn)
    return test_app


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "aws.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def moto(aws_credentials: str) -> Iterator[None]:
    with moto_executing_state_machines():
        yield


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the AWS operations rentalctl's clients make (recorded before each call)."""
    made: list[str] = []
    original = aws.client

    def recording_client(service: str, boto3_session: Any | None = None) -> Any:
        client = original(service, boto3_session)
        client.meta.events.register(
            "before-call", lambda model, **_: made.append(model.name), unique_id="test-calls"
        )
        return client

    monkeypatch.setattr(aws, "client", recording_client)
    return made


def run(app: typer.Typer, config_file: Path, *args: str, output: str = "json") -> Any:
    result = CliRunner().invoke(app, ["--config", str(config_file), "--output", output, *args])
    return result


def deploy(app: typer.Typer, config_file: Path, *args: str, sets: tuple[str, ...] = ()) -> Any:
    """deploy-sfn ARGS with --output json and a --set for each KEY=VALUE of ``sets``."""
    options = [f"--set={item}" for item in sets]
    result = run(app, config_file, *options, "deploy-sfn", *args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return dict(json.loads(result.stdout))


def sfn() -> Any:
    return boto3.client("stepfunctions", region_name=REGION)


def scheduler() -> Any:
    return boto3.client("scheduler", region_name=REGION)


def described() -> dict[str, Any]:
    doc = dict(sfn().describe_state_machine(stateMachineArn=SM_ARN))
    doc.pop("ResponseMetadata")
    return doc


def retry_attempts(definition: dict[str, Any]) -> set[int]:
    return {r["MaxAttempts"] for s in definition["States"].values() for r in s.get("Retry", [])}


# ---------------------------------------------------------------------------- create / unchanged


def test_deploy_creates_the_state_machine_with_role_and_logging(
    app: typer.Typer, config_file: Path, moto: None
) -> None:
    from rentalctl import config
    from rentalctl.orchestration import statemachine

    doc = deploy(app, config_file)

    assert doc["dry_run"] is False
    assert doc["state_machine"]["action"] == "create"
    assert doc["state_machine"]["arn"] == SM_ARN
    assert doc["done"] == [f"created state machine {SM_ARN}"]
    assert doc["schedule"]["action"] == "none"

    deployed = described()
    definition = json.loads(deployed["definition"])
    assert definition == statemachine.render(config.load(config=str(config_file)))
    assert definition == doc["definition"]
    # What the definition must hold on AWS, checked without rentalctl's renderer:
    assert definition["States"]["Notify"]["Parameters"]["TopicArn"] == TOPIC
    assert definition["States"]["Publish"]["Resource"] == GLUE_SYNC
    assert definition["States"]["Publish"]["Parameters"]["JobName"] == "rentalctl-publish"
    assert definition["States"]["Plan"]["Parameters"]["defaults"]["tables"] == TABLES
    assert deployed["roleArn"] == ROLE
    assert deployed["type"] == "STANDARD"
    assert deployed["loggingConfiguration"] == {
        "level": "ERROR",
        "includeExecutionData": False,
        "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": LOG_GROUP}}],
    }
    assert deployed["tracingConfiguration"] == {"enabled": False}


def test_a_second_deploy_is_unchanged_and_calls_no_update(
    app: typer.Typer, config_file: Path, moto: None, calls: list[str]
) -> None:
    deploy(app, config_file)
    before = described()
    calls.clear()

    doc = deploy(app, config_file)

    assert doc["state_machine"]["action"] == "unchanged"
    assert doc["state_machine"]["changes"] == []
    assert doc["done"] == []
    assert doc["diff"] == ""
    assert calls, "the plan reads what is deployed"
    assert not MUTATING & set(calls), calls
    assert described() == before


def test_text_output_is_a_short_summary(app: typer.Typer, config_file: Path, moto: None) -> None:
    first = run(app, config_file, "deploy-sfn", output="text")
    assert first.exit_code == 0, first.stderr
    assert re.search(r"state machine\s+rentalctl-pipeline\s+create", first.stdout)
    assert f"Created state machine {SM_ARN}." in first.stdout

    second = run(app, config_file, "deploy-sfn", output="text")
    assert re.search(r"state machine\s+rentalctl-pipeline\s+unchanged", second.stdout)
    assert "Everything is up to date." in second.stdout


# ------------------------------------------------------------------------------ update and diff


def test_a_changed_setting_shows_in_the_dry_run_diff_then_updates(
    app: typer.Typer, config_file: Path, moto: None, calls: list[str]
) -> None:
    deploy(app, config_file)
    assert retry_attempts(json.loads(described()["definition"])) == {1}
    calls.clear()

    dry = deploy(app, config_file, "--dry-run", sets=("retry.max_attempts=3",))

    assert dry["dry_run"] is True
    assert dry["state_machine"]["action"] == "update"
    assert dry["state_machine"]["changes"] == ["definition"]
    assert dry["done"] == []
    removed = [line for line in dry["diff"].splitlines() if line.startswith("-") and "Max" in line]
    added = [line for line in dry["diff"].splitlines() if line.startswith("+") and "Max" in line]
    assert removed and all(re.fullmatch(r'-\s+"MaxAttempts": 1,', line) for line in removed)
    assert added and all(re.fullmatch(r'\+\s+"MaxAttempts": 3,', line) for line in added)
    assert dry["diff"].startswith(f"--- deployed: {SM_ARN}\n+++ rendered: ")
    assert retry_attempts(dry["definition"]) == {3}
    # Nothing changed on AWS.
    assert not MUTATING & set(calls), calls
    assert retry_attempts(json.loads(described()["definition"])) == {1}

    text = run(
        app, config_file, "--set", "retry.max_attempts=3", "deploy-sfn", "--dry-run", output="text"
    )
    assert text.exit_code == 0, text.stderr
    assert "Rendered definition:" in text.stdout
    assert '"StartAt": "Plan"' in text.stdout
    assert "Difference from the deployed definition:" in text.stdout
    assert re.search(r'^\+\s+"MaxAttempts": 3,$', text.stdout, re.M)
    assert "Dry run: nothing was changed" in text.stdout
    assert retry_attempts(json.loads(described()["definition"])) == {1}

    done = deploy(app, config_file, sets=("retry.max_attempts=3",))

    assert done["state_machine"]["action"] == "update"
    assert done["done"] == [f"updated state machine {SM_ARN} (definition)"]
    assert "UpdateStateMachine" in calls and "CreateStateMachine" not in calls
    assert retry_attempts(json.loads(described()["definition"])) == {3}
    assert (
        deploy(app, config_file, sets=("retry.max_attempts=3",))["state_machine"]["action"]
        == "unchanged"
    )


def test_role_and_logging_changes_are_updated(
    app: typer.Typer, config_file: Path, moto: None
) -> None:
    deploy(app, config_file)
    other_role = f"arn:aws:iam::{ACCOUNT}:role/rentalctl-sfn-v2"

    doc = deploy(
        app,
        config_file,
        sets=(f"aws.state_machine_role_arn={other_role}", "aws.state_machine_log_group_arn="),
    )

    assert doc["state_machine"]["changes"] == ["role_arn", "logging"]
    assert doc["diff"] == ""  # the definition itself did not change
    deployed = described()
    assert deployed["roleArn"] == other_role
    assert deployed["loggingConfiguration"]["level"] == "OFF"


# ------------------------------------------------------------------------------------ schedule


def test_schedule_created_updated_and_deleted(
    app: typer.Typer, config_file: Path, moto: None
) -> None:
    doc = deploy(app, config_file, sets=("aws.schedule=cron(0 3 * * ? *)",))

    assert doc["schedule"]["action"] == "create"
    got = scheduler().get_schedule(Name=NAME)
    assert got["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert got["State"] == "ENABLED"
    assert got["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert got["Target"]["Arn"] == SM_ARN
    assert got["Target"]["RoleArn"] == SCHEDULER_ROLE
    assert json.loads(got["Target"]["Input"]) == {"mode": "incremental"}

    same = deploy(app, config_file, sets=("aws.schedule=cron(0 3 * * ? *)",))
    assert same["schedule"]["action"] == "unchanged"
    assert same["done"] == []

    changed = deploy(app, config_file, sets=("aws.schedule=rate(1 day)",))
    assert changed["schedule"]["action"] == "update"
    assert changed["schedule"]["changes"] == ["expression"]
    assert scheduler().get_schedule(Name=NAME)["ScheduleExpression"] == "rate(1 day)"

    removed = run(app, config_file, "deploy-sfn", output="text")
    assert removed.exit_code == 0, removed.stderr
    assert f"Deleted schedule {NAME}: aws.schedule is not set." in removed.stdout
    with pytest.raises(scheduler().exceptions.ResourceNotFoundException):
        scheduler().get_schedule(Name=NAME)
    assert deploy(app, config_file)["schedule"]["action"] == "none"


def test_schedule_needs_the_scheduler_role(app: typer.Typer, config_file: Path, moto: None) -> None:
    result = run(
        app,
        config_file,
        "--set=aws.schedule=rate(1 day)",
        "--set=aws.scheduler_role_arn=",
        "deploy-sfn",
    )
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "aws.scheduler_role_arn" in json.loads(result.stdout)["error"]["message"]
    assert sfn().list_state_machines()["stateMachines"] == []


def test_credentials_that_may_not_read_schedules_do_not_block_a_deploy_without_one(
    app: typer.Typer, config_file: Path, moto: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.awsrequest import AWSResponse

    original = aws.client

    def denied(model: Any, **_: Any) -> Any:
        if model.name != "GetSchedule":
            return None
        error = {"Code": "AccessDeniedException", "Message": "not authorized"}
        return AWSResponse("https://scheduler", 403, {}, None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }

    def client(service: str, boto3_session: Any | None = None) -> Any:
        made = original(service, boto3_session)
        made.meta.events.register("before-call", denied, unique_id="test-denied")
        return made

    monkeypatch.setattr(aws, "client", client)

    doc = deploy(app, config_file)

    assert doc["state_machine"]["action"] == "create"
    assert doc["schedule"]["action"] == "none"
    assert "AccessDeniedException" in doc["schedule"]["note"]
    assert described()["roleArn"] == ROLE
    # With a schedule configured the same refusal is an error (exit 3), before any change.
    result = run(app, config_file, "--set=aws.schedule=rate(1 day)", "deploy-sfn")
    assert result.exit_code == 3, (result.stdout, result.stderr)
    assert "AccessDeniedException" in json.loads(result.stdout)["error"]["message"]


# -------------------------------------------------------------------------------------- errors


def test_missing_role_exits_2_and_deploys_nothing(
    app: typer.Typer, config_file: Path, moto: None
) -> None:
    result = run(app, config_file, "--set=aws.state_machine_role_arn=", "deploy-sfn")

    assert result.exit_code == 2, (result.stdout, result.stderr)
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "config_error"
    assert "aws.state_machine_role_arn" in error["message"]
    assert "Traceback" not in result.stderr
    assert sfn().list_state_machines()["stateMachines"] == []


def test_local_target_is_refused(app: typer.Typer, config_file: Path, moto: None) -> None:
    result = run(
        app,
        config_file,
        "--set=target=local",
        "--set=lake.url=file://lake",
        "--set=state.url=sqlite:///state.db",
        "deploy-sfn",
        "--dry-run",
        output="text",
    )
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "target: aws" in result.stderr


# --------------------------------------------------------------- executing the deployed definition


@pytest.fixture
def executed(app: typer.Typer, config_file: Path, moto: None):
    """Deploy, then run the deployed definition (Glue stood in) once; ``missing`` names jobs
    that do not exist in Glue, which makes their tasks fail."""

    def execute(run_id: str, missing: tuple[str, ...] = ()) -> dict[str, Any]:
        deploy(app, config_file)
        glue = boto3.client("glue", region_name=REGION)
        for job in JOBS:
            if job not in missing:
                glue.create_job(
                    Name=f"rentalctl-{job}",
                    Role=f"arn:aws:iam::{ACCOUNT}:role/rentalctl-glue",
                    Command={"Name": "pythonshell", "ScriptLocation": "s3://test-lake/x.py"},
                    ExecutionProperty={"MaxConcurrentRuns": 4},  # the Map runs 4 extracts
                )
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        assert sns.create_topic(Name="rentalctl-alerts")["TopicArn"] == TOPIC
        queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        sns.subscribe(TopicArn=TOPIC, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])

        definition, replaced = glue_sync_stand_in(json.loads(described()["definition"]))
        assert replaced == len(JOBS)  # one Glue task per job
        arn = sfn().create_state_machine(
            name=f"{NAME}-stand-in", definition=json.dumps(definition), roleArn=ROLE
        )["stateMachineArn"]
        execution = sfn().start_execution(
            stateMachineArn=arn, name=run_id, input=json.dumps({"mode": "incremental"})
        )["executionArn"]
        deadline = time.monotonic() + 120
        while (status := sfn().describe_execution(executionArn=execution))["status"] == "RUNNING":
            assert time.monotonic() < deadline, "the execution did not finish"
            time.sleep(0.1)
        events = sfn().get_execution_history(executionArn=execution, maxResults=1000)["events"]
        entered = [
            e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
        ]
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        runs = {
            job: glue.get_job_runs(JobName=f"rentalctl-{job}")["JobRuns"]
            for job in JOBS
            if job not in missing
        }
        return {
            "status": status,
            "entered": entered,
            "notifications": [json.loads(m["Body"]) for m in messages],
            "runs": runs,
        }

    return execute


def test_the_deployed_definition_runs_to_success(executed) -> None:
    result = executed("run-ok")

    assert result["status"]["status"] == "SUCCEEDED", result["status"]
    assert json.loads(result["status"]["output"])["run_id"] == "run-ok"
    top = [n for n in result["entered"] if n != "ExtractLoad"]
    assert top == [
        "Plan",
        "Resolve",
        "Begin",
        "ExtractAndLoad",
        "Transform",
        "Publish",
        "Succeeded",
    ]
    assert result["entered"].count("ExtractLoad") == 4
    extracted = sorted(r["Arguments"]["--table"] for r in result["runs"]["extract-load"])
    assert extracted == sorted(TABLES)
    assert {r["Arguments"]["--run_id"] for r in result["runs"]["extract-load"]} == {"run-ok"}
    assert {r["Arguments"]["--extract_mode"] for r in result["runs"]["extract-load"]} == {
        "incremental"
    }
    (began,) = result["runs"]["begin"]
    assert began["Arguments"]["--execution_id"].endswith(":run-ok")
    assert json.loads(result["runs"]["publish"][0]["Arguments"]["--tables"]) == TABLES
    assert result["runs"]["record-failure"] == []
    assert result["notifications"] == []


def test_a_failed_step_is_recorded_notified_and_fails_the_run(executed) -> None:
    result = executed("run-bad", missing=("publish",))

    status = result["status"]
    assert status["status"] == "FAILED", status
    assert status["error"] == "Glue.EntityNotFoundException"
    assert "rentalctl-publish" in status["cause"]
    assert result["entered"][-4:] == ["Publish", "RecordFailure", "Notify", "Failed"]

    (recorded,) = result["runs"]["record-failure"]
    assert recorded["Arguments"]["--run_id"] == "run-bad"
    assert json.loads(recorded["Arguments"]["--error"])["Error"] == "Glue.EntityNotFoundException"

    (note,) = result["notifications"]
    assert note["TopicArn"] == TOPIC
    assert note["Subject"] == "rentalctl run failed"
    assert note["Message"].startswith("rentalctl run run-bad failed: ")
    assert "rentalctl-publish" in note["Message"]
