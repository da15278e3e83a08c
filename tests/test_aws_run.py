"""``rentalctl.orchestration.aws_run`` on moto: the rendered definition deployed and executed by
moto's Step Functions interpreter, run records in DynamoDB, the lake in S3.

moto's ``glue:startJobRun.sync`` is broken (ARCHITECTURE.md), so as in test_deploy_sfn.py each
Glue task is deployed as plain ``startJobRun`` against jobs created in moto's Glue. moto's Glue
runs no script, so the record-failure and archive jobs never close the run record here: the
follow does, from the execution's outcome.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rentalctl import config
from rentalctl.context import Context
from rentalctl.errors import LockHeld, ResourceUnavailable
from rentalctl.orchestration import aws_run
from rentalctl.orchestration.statemachine import render
from tests.support.moto_aws import (
    ACCOUNT,
    NAME,
    REGION,
    ROLE,
    SM_ARN,
    TOPIC,
    glue_sync_stand_in,
)

JOBS = [
    "extract",
    "load-raw",
    "transform",
    "merge",
    "presentation",
    "commit-bookmarks",
    "archive",
    "record-failure",
]
TABLES = ["apartments", "apartment_attributes", "user_viewing", "bookings"]

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
  sns_topic_arn: {TOPIC}
"""


@pytest.fixture
def ctx(aws_credentials: str, tmp_path: Path) -> Iterator[Context]:
    """A Context on moto: the state store created in DynamoDB, the lake bucket, the topic."""
    path = tmp_path / "aws.yaml"
    path.write_text(CONFIG)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket="test-lake", CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        assert boto3.client("sns", region_name=REGION).create_topic(Name="rentalctl-alerts")[
            "TopicArn"
        ] == (TOPIC)
        context = Context(config.load(config=str(path)))
        context.state.ensure()
        yield context


def sfn() -> Any:
    return boto3.client("stepfunctions", region_name=REGION)


def deploy(ctx: Context, missing: tuple[str, ...] = ()) -> None:
    """The rendered definition (Glue stood in) as the configured state machine; the Glue jobs
    it names, except ``missing`` ones (their tasks then fail)."""
    glue = boto3.client("glue", region_name=REGION)
    for job in JOBS:
        if job not in missing:
            glue.create_job(
                Name=f"rentalctl-{job}",
                Role=f"arn:aws:iam::{ACCOUNT}:role/rentalctl-glue",
                Command={"Name": "pythonshell", "ScriptLocation": "s3://test-lake/x.py"},
                ExecutionProperty={"MaxConcurrentRuns": 4},  # the Map runs 4 extracts
            )
    definition, _ = glue_sync_stand_in(render(ctx.settings))
    created = sfn().create_state_machine(name=NAME, definition=json.dumps(definition), roleArn=ROLE)
    assert created["stateMachineArn"] == SM_ARN


def deploy_waiting() -> None:
    """A state machine whose executions stay RUNNING for a minute."""
    definition = {
        "StartAt": "Hold",
        "States": {"Hold": {"Type": "Wait", "Seconds": 60, "End": True}},
    }
    sfn().create_state_machine(name=NAME, definition=json.dumps(definition), roleArn=ROLE)


def start(ctx: Context, run_id: str) -> str:
    return aws_run.start(
        ctx, run_id=run_id, mode="incremental", since=None, until=None, tables=TABLES
    )


def wait_until_ended(arn: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while (status := sfn().describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not finish"
        time.sleep(0.05)
    return dict(status)


def names(record: dict[str, Any]) -> list[str]:
    return [s["name"] for s in record["states"]]


# -------------------------------------------------------------------------------------- start


def test_start_writes_the_record_and_starts_a_named_execution(ctx: Context) -> None:
    deploy(ctx)

    arn = aws_run.start(
        ctx,
        run_id="run-bf",
        mode="backfill",
        since="2024-01-01",
        until="2024-01-31",
        tables=["bookings"],
    )

    assert arn == f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{NAME}:run-bf"
    execution = sfn().describe_execution(executionArn=arn)
    assert execution["name"] == "run-bf"
    assert json.loads(execution["input"]) == {
        "run_id": "run-bf",
        "mode": "backfill",
        "since": "2024-01-01",
        "until": "2024-01-31",
        "tables": ["bookings"],
    }
    record = ctx.state.get_run("run-bf")
    assert record is not None
    assert record["target"] == "aws"
    assert record["execution_arn"] == arn
    assert record["status"] == "RUNNING"
    assert (record["mode"], record["since"], record["until"], record["tables"]) == (
        "backfill",
        "2024-01-01",
        "2024-01-31",
        ["bookings"],
    )
    wait_until_ended(arn)


def test_missing_state_machine_is_unavailable_and_records_nothing(ctx: Context) -> None:
    with pytest.raises(ResourceUnavailable) as caught:
        start(ctx, "run-x")

    assert SM_ARN in str(caught.value)
    assert "run `rentalctl deploy-sfn`" in str(caught.value)
    assert caught.value.exit_code == 3
    assert ctx.state.get_run("run-x") is None


def test_a_second_start_while_one_runs_is_refused(ctx: Context) -> None:
    deploy_waiting()
    first = start(ctx, "run-1")
    started = sfn().describe_execution(executionArn=first)["startDate"]
    try:
        with pytest.raises(LockHeld) as caught:
            start(ctx, "run-2")

        assert caught.value.exit_code == 4
        assert "run-1" in str(caught.value)
        assert started.isoformat() in str(caught.value)
        assert ctx.state.get_run("run-2") is None
        running = sfn().list_executions(stateMachineArn=SM_ARN, statusFilter="RUNNING")
        assert [e["name"] for e in running["executions"]] == ["run-1"]
    finally:
        sfn().stop_execution(executionArn=first)


def test_a_reused_run_id_fails_the_start_and_closes_its_record(ctx: Context) -> None:
    from rentalctl.errors import ConfigError

    deploy(ctx)
    wait_until_ended(start(ctx, "run-same"))
    ctx.state.put_run({**(ctx.state.get_run("run-same") or {}), "run_id": "run-same"})

    with pytest.raises(ConfigError, match="run-same"):
        start(ctx, "run-same")

    record = ctx.state.get_run("run-same")
    assert record is not None
    assert record["status"] == "FAILED"
    assert "did not start" in record["error"]["Cause"]


# ------------------------------------------------------------------------------------- follow


def test_follow_a_successful_run(ctx: Context) -> None:
    deploy(ctx)
    arn = start(ctx, "run-ok")
    seen: list[tuple[str, str]] = []
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    record = aws_run.follow(
        ctx,
        arn,
        TABLES,
        progress=lambda name, what, states: seen.append((name, what)),
        poll_seconds=0.05,
        sleep=sleep,
    )

    assert record["status"] == "SUCCEEDED", record
    assert record["error"] is None
    assert record["ended_at"] is not None
    assert record == ctx.state.get_run("run-ok")  # stored as returned
    states = names(record)
    extracts = [n for n in states if n.startswith("Extract[")]
    assert extracts == [f"Extract[{t}]" for t in TABLES]
    assert [n for n in states if n.startswith("LoadRaw[")] == [f"LoadRaw[{t}]" for t in TABLES]
    top = [n for n in states if "[" not in n]
    assert top == [
        "Plan",
        "Resolve",
        "ExtractAndLoad",
        "Transform",
        "Merge",
        "Presentation",
        "CommitBookmarks",
        "Archive",
        "Succeeded",
    ]
    assert all(s["status"] == "SUCCEEDED" for s in record["states"]), record["states"]
    merge = next(s for s in record["states"] if s["name"] == "Merge")
    assert merge["attempts"] == 1
    assert isinstance(merge["started_at"], str)
    assert merge["started_at"] <= merge["ended_at"]
    # Progress as for a local run: every state started and succeeded, each reported once.
    assert ("Merge", "started") in seen and ("Merge", "succeeded") in seen
    assert ("Extract[bookings]", "succeeded") in seen
    assert len(seen) == len(set(seen)) == 2 * len(states)
    assert all(s == 0.05 for s in sleeps)


def test_follow_a_failed_run(ctx: Context) -> None:
    deploy(ctx, missing=("merge",))
    arn = start(ctx, "run-bad")

    record = aws_run.follow(ctx, arn, TABLES, poll_seconds=0.05)

    assert record["status"] == "FAILED"
    assert record["error"]["Error"] == "Glue.EntityNotFoundException"
    assert "rentalctl-merge" in record["error"]["Cause"]
    assert record == ctx.state.get_run("run-bad")
    by_name = {s["name"]: s for s in record["states"]}
    assert by_name["Merge"]["status"] == "FAILED"
    assert by_name["Merge"]["error"] == "Glue.EntityNotFoundException"
    assert names(record)[-4:] == ["Merge", "RecordFailure", "Notify", "Failed"]
    assert "Presentation" not in by_name and "CommitBookmarks" not in by_name


def test_follow_keeps_a_record_its_jobs_closed(ctx: Context) -> None:
    """On AWS the archive job closes the record with its summary: the follow adds the states
    and leaves the outcome alone."""
    deploy(ctx)
    arn = start(ctx, "run-closed")
    wait_until_ended(arn)
    closed = {"Error": "x", "Cause": "closed by the job"}
    ctx.state.put_run(
        {
            **(ctx.state.get_run("run-closed") or {}),
            "status": "FAILED",
            "ended_at": "2024-01-01T00:00:00+00:00",
            "error": closed,
            "summary": {"bookings": {"extracted": 3}},
        }
    )

    record = aws_run.follow(ctx, arn, TABLES, poll_seconds=0.05)

    assert (record["status"], record["error"], record["summary"]) == (
        "FAILED",
        closed,
        {"bookings": {"extracted": 3}},
    )
    assert "Merge" in names(record)


# ------------------------------------------------------------------------------------- status


def test_refresh_status_rebuilds_states_from_the_history(ctx: Context) -> None:
    deploy(ctx)
    arn = start(ctx, "run-st")
    wait_until_ended(arn)
    record = ctx.state.get_run("run-st")
    assert record is not None and record["status"] == "RUNNING" and not record["states"]

    refreshed = aws_run.refresh_status(ctx, record)

    assert refreshed["status"] == "SUCCEEDED"
    assert [n for n in names(refreshed) if n.startswith("Extract[")] == [
        f"Extract[{t}]" for t in TABLES
    ]
    assert "Merge" in names(refreshed)
    assert ctx.state.get_run("run-st") == refreshed  # the execution ended: stored


def test_refresh_status_of_a_running_execution_writes_nothing(ctx: Context) -> None:
    deploy_waiting()
    arn = start(ctx, "run-wait")
    try:
        deadline = time.monotonic() + 10
        while True:  # until the execution has entered its Wait state
            record = ctx.state.get_run("run-wait") or {}
            refreshed = aws_run.refresh_status(ctx, record)
            if refreshed["states"] or time.monotonic() > deadline:
                break
            time.sleep(0.05)

        assert refreshed["status"] == "RUNNING"
        assert [(s["name"], s["status"]) for s in refreshed["states"]] == [("Hold", "RUNNING")]
        assert ctx.state.get_run("run-wait") == record
    finally:
        sfn().stop_execution(executionArn=arn)


def test_refresh_status_leaves_local_and_finished_records_alone(ctx: Context) -> None:
    local = {"run_id": "r", "target": "local", "status": "RUNNING", "states": []}
    done = {"run_id": "r", "execution_arn": "arn:x", "status": "SUCCEEDED", "states": [{}]}

    assert aws_run.refresh_status(ctx, local) is local
    assert aws_run.refresh_status(ctx, done) is done


def test_follow_a_run_failing_inside_the_map(ctx: Context) -> None:
    """The four extracts run at once on AWS and their events interleave: each failure is still
    put on its own table's state."""
    deploy(ctx, missing=("extract",))
    arn = start(ctx, "run-map")

    record = aws_run.follow(ctx, arn, TABLES, poll_seconds=0.05)

    assert record["status"] == "FAILED"
    assert record["error"]["Error"] == "Glue.EntityNotFoundException"
    by_name = {s["name"]: s for s in record["states"]}
    failed = []
    for table in TABLES:
        extract = by_name[f"Extract[{table}]"]
        assert extract["status"] == "FAILED", extract
        # The first failure aborts the other iterations: one that had not scheduled its task
        # yet (the machine under load) ends with no attempt and no error of its own.
        if extract["attempts"]:
            assert (extract["attempts"], extract["error"]) == (1, "Glue.EntityNotFoundException")
            failed.append(table)
        else:
            assert extract["error"] is None, extract
    assert failed, "no extract recorded its failure"
    assert by_name["ExtractAndLoad"]["status"] == "FAILED"
    assert not any(n.startswith("LoadRaw[") for n in by_name)
    assert "Transform" not in by_name
    assert names(record)[-3:] == ["RecordFailure", "Notify", "Failed"]


class _PagedHistory:
    """A Step Functions client whose history comes in pages of two events."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.calls: list[dict[str, Any]] = []

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        first = int(kwargs.get("nextToken", "0"))
        ids = range(first + 1, min(first + 2, self.count) + 1)
        page: dict[str, Any] = {
            "events": [
                {"id": i, "type": "PassStateEntered", "timestamp": datetime(2024, 1, 1, 0, 0, i)}
                for i in ids
            ]
        }
        if first + 2 < self.count:
            page["nextToken"] = str(first + 2)
        return page


def test_history_pages_and_hands_out_each_event_once() -> None:
    client = _PagedHistory(5)
    history = aws_run._History(client, "arn:x")

    first = history.new_events()
    assert [e["id"] for e in first] == [1, 2, 3, 4, 5]
    assert first[0]["timestamp"] == "2024-01-01T00:00:01"  # JSON-ready for the record
    assert [c.get("nextToken") for c in client.calls] == [None, "2", "4"]

    client.count = 6
    assert [e["id"] for e in history.new_events()] == [6]
    assert history.new_events() == []


def test_the_cli_runs_follows_and_reports_an_aws_run(ctx: Context, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rentalctl.cli import app

    deploy(ctx)
    config_file = str(tmp_path / "aws.yaml")
    runner = CliRunner()
    ran = runner.invoke(app, ["--config", config_file, "-o", "json", "run", "--run-id", "CLI1"])
    assert ran.exit_code == 0, ran.stderr
    record = json.loads(ran.stdout)
    assert (record["run_id"], record["status"], record["target"]) == ("CLI1", "SUCCEEDED", "aws")
    assert "Extract[bookings]" in names(record) and "Archive" in names(record)
    shown = json.loads(
        runner.invoke(app, ["--config", config_file, "-o", "json", "status", "CLI1"]).stdout
    )
    assert names(shown) == names(record)

    started = runner.invoke(
        app,
        [
            "--config",
            config_file,
            "-o",
            "json",
            "backfill",
            "--since",
            "2025-01-01",
            "--no-wait",
            "--run-id",
            "CLI2",
        ],
    )
    assert started.exit_code == 0, started.stderr
    doc = json.loads(started.stdout)
    assert (doc["status"], doc["mode"]) == ("STARTED", "backfill")
    assert doc["execution_arn"].endswith(":CLI2")
    assert wait_until_ended(doc["execution_arn"])["status"] == "SUCCEEDED"


def test_status_names_each_glue_job_run(ctx: Context) -> None:
    deploy(ctx)
    record = aws_run.follow(ctx, start(ctx, "JOBRUNS"), TABLES, poll_seconds=0.05)
    glue = boto3.client("glue", region_name=REGION)
    merge_runs = {r["Id"] for r in glue.get_job_runs(JobName="rentalctl-merge")["JobRuns"]}
    (merge,) = [s for s in record["states"] if s["name"] == "Merge"]
    assert merge["job_run_id"] in merge_runs
    assert all(s.get("job_run_id") for s in record["states"] if s["name"].startswith("Extract["))
