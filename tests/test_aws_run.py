"""``rentalctl.orchestration.aws_run`` on moto: the rendered definition deployed and executed by
moto's Step Functions interpreter, run records in DynamoDB, the lake in S3.

moto's ``glue:startJobRun.sync`` is broken (ARCHITECTURE.md), so as in test_deploy_sfn.py each
Glue task is deployed as plain ``startJobRun`` against jobs created in moto's Glue. moto's Glue
runs no script; ``jobs_run_in_process`` runs the ``begin`` and ``record-failure`` jobs of a run
in-process (they need only the state store, the lake and Step Functions). The ``publish`` job
never runs here, so the follow closes a successful run's record, from the execution's outcome.
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

from rentalctl import config
from rentalctl.context import Context
from rentalctl.errors import LockHeld, ResourceUnavailable
from rentalctl.orchestration import aws_run
from rentalctl.orchestration.statemachine import render
from rentalctl.run_lock import describe_self
from tests.support.moto_aws import (
    ACCOUNT,
    NAME,
    REGION,
    ROLE,
    SM_ARN,
    TOPIC,
    glue_sync_stand_in,
    jobs_run_in_process,
    moto_executing_state_machines,
)

JOBS = ["begin", "extract-load", "transform", "publish", "record-failure"]
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
    with moto_executing_state_machines():
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


def deploy(ctx: Context, missing: tuple[str, ...] = (), hold_after_begin: bool = False) -> None:
    """The rendered definition (Glue stood in) as the configured state machine; the Glue jobs
    it names, except ``missing`` ones (their tasks then fail). ``hold_after_begin``: a minute's
    Wait after Begin, so that an execution can be stopped in the middle."""
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
    if hold_after_begin:
        states = definition["States"]
        states["Hold"] = {"Type": "Wait", "Seconds": 60, "Next": states["Begin"]["Next"]}
        states["Begin"]["Next"] = "Hold"
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


def test_start_starts_a_named_execution_whose_begin_opens_the_record(ctx: Context) -> None:
    deploy(ctx)

    with jobs_run_in_process(ctx):
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
        wait_until_ended(arn)

    record = ctx.state.get_run("run-bf")
    assert record is not None
    assert record["target"] == "aws"
    assert record["execution_arn"] == arn
    assert record["status"] == "RUNNING"  # publish, which closes it, does not run on moto
    assert (record["mode"], record["since"], record["until"], record["tables"]) == (
        "backfill",
        "2024-01-01",
        "2024-01-31",
        ["bookings"],
    )


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


def test_a_reused_run_id_fails_the_start_and_changes_nothing(ctx: Context) -> None:
    from rentalctl.errors import ConfigError

    deploy(ctx)
    wait_until_ended(start(ctx, "run-same"))
    before = ctx.state.get_run("run-same")

    with pytest.raises(ConfigError, match="run-same"):
        start(ctx, "run-same")

    assert ctx.state.get_run("run-same") == before


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
    extracts = sorted(n for n in states if n.startswith("ExtractLoad["))
    assert extracts == sorted(f"ExtractLoad[{t}]" for t in TABLES)
    top = [n for n in states if "[" not in n]
    assert top == [
        "Plan",
        "Resolve",
        "Begin",
        "ExtractAndLoad",
        "Transform",
        "Publish",
        "Succeeded",
    ]
    assert all(s["status"] == "SUCCEEDED" for s in record["states"]), record["states"]
    publish = next(s for s in record["states"] if s["name"] == "Publish")
    assert publish["attempts"] == 1
    assert isinstance(publish["started_at"], str)
    assert publish["started_at"] <= publish["ended_at"]
    # Progress as for a local run: every state started and succeeded, each reported once.
    assert ("Publish", "started") in seen and ("Publish", "succeeded") in seen
    assert ("ExtractLoad[bookings]", "succeeded") in seen
    assert len(seen) == len(set(seen)) == 2 * len(states)
    assert all(s == 0.05 for s in sleeps)


def test_follow_a_failed_run(ctx: Context) -> None:
    deploy(ctx, missing=("publish",))
    arn = start(ctx, "run-bad")

    record = aws_run.follow(ctx, arn, TABLES, poll_seconds=0.05)

    assert record["status"] == "FAILED"
    assert record["error"]["Error"] == "Glue.EntityNotFoundException"
    assert "rentalctl-publish" in record["error"]["Cause"]
    assert record == ctx.state.get_run("run-bad")
    by_name = {s["name"]: s for s in record["states"]}
    assert by_name["Publish"]["status"] == "FAILED"
    assert by_name["Publish"]["error"] == "Glue.EntityNotFoundException"
    assert names(record)[-4:] == ["Publish", "RecordFailure", "Notify", "Failed"]


def test_follow_keeps_a_record_its_jobs_closed(ctx: Context) -> None:
    """On AWS the archive job closes the record with its summary: the follow adds the states
    and leaves the outcome alone."""
    deploy(ctx)
    with jobs_run_in_process(ctx):
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
    assert "Publish" in names(record)


# ------------------------------------------------------------------------------------- status


def test_refresh_status_rebuilds_states_from_the_history(ctx: Context) -> None:
    deploy(ctx)
    with jobs_run_in_process(ctx):
        arn = start(ctx, "run-st")
        wait_until_ended(arn)
    record = ctx.state.get_run("run-st")
    assert record is not None and record["status"] == "RUNNING" and not record["states"]

    refreshed = aws_run.refresh_status(ctx, record)

    assert refreshed["status"] == "SUCCEEDED"
    assert sorted(n for n in names(refreshed) if n.startswith("ExtractLoad[")) == sorted(
        f"ExtractLoad[{t}]" for t in TABLES
    )
    assert "Publish" in names(refreshed)
    assert ctx.state.get_run("run-st") == refreshed  # the execution ended: stored


def test_refresh_status_of_a_running_execution_writes_nothing(ctx: Context) -> None:
    deploy_waiting()
    arn = start(ctx, "run-wait")
    ctx.state.put_run(
        {"run_id": "run-wait", "started_at": "2024-01-01T00:00:00+00:00", "status": "RUNNING"}
        | {"execution_arn": arn, "tables": TABLES, "states": []}
    )
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
    deploy(ctx, missing=("extract-load",))
    arn = start(ctx, "run-map")

    record = aws_run.follow(ctx, arn, TABLES, poll_seconds=0.05)

    assert record["status"] == "FAILED"
    assert record["error"]["Error"] == "Glue.EntityNotFoundException"
    by_name = {s["name"]: s for s in record["states"]}
    failed = []
    for table in TABLES:
        extract = by_name[f"ExtractLoad[{table}]"]
        assert extract["status"] == "FAILED", extract
        # The first failure aborts the other iterations: one that had not scheduled its task
        # yet (the machine under load) ends with no attempt and no error of its own, and moto
        # ends a task it aborts while it runs with States.Runtime.
        if extract["error"] == "Glue.EntityNotFoundException":
            failed.append(table)
        elif extract["attempts"]:
            assert extract["error"] == "States.Runtime", extract
        else:
            assert extract["error"] is None, extract
    assert failed, "no extract recorded its failure"
    assert by_name["ExtractAndLoad"]["status"] == "FAILED"
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
    with jobs_run_in_process(ctx):
        ran = runner.invoke(app, ["--config", config_file, "-o", "json", "run", "--run-id", "CLI1"])
    assert ran.exit_code == 0, ran.stderr
    record = json.loads(ran.stdout)
    assert (record["run_id"], record["status"], record["target"]) == ("CLI1", "SUCCEEDED", "aws")
    assert "ExtractLoad[bookings]" in names(record) and "Publish" in names(record)
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
    publish_runs = {r["Id"] for r in glue.get_job_runs(JobName="rentalctl-publish")["JobRuns"]}
    (publish,) = [s for s in record["states"] if s["name"] == "Publish"]
    assert publish["job_run_id"] in publish_runs
    assert all(
        s.get("job_run_id") for s in record["states"] if s["name"].startswith("ExtractLoad[")
    )


# ------------------------------------------------------------- executions started by anything


def assert_lock_free(ctx: Context) -> None:
    assert ctx.state.acquire_lock(describe_self("PROBE"), lambda holder: False) is None
    ctx.state.release_lock("PROBE")


def wait_for_record(run_id: str, ctx: Context, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (record := ctx.state.get_run(run_id)) is None:
        assert time.monotonic() < deadline, f"no record of {run_id}"
        time.sleep(0.05)
    return record


def test_a_scheduled_execution_gets_a_record_and_its_failure_is_settled(ctx: Context) -> None:
    """Started as the schedule starts it: the input holds only the mode."""
    deploy(ctx, missing=("extract-load",))
    with jobs_run_in_process(ctx):
        arn = sfn().start_execution(
            stateMachineArn=SM_ARN, name="sched-1", input=json.dumps({"mode": "incremental"})
        )["executionArn"]
        assert wait_until_ended(arn)["status"] == "FAILED"

    record = ctx.state.get_run("sched-1")
    assert record is not None
    assert (record["status"], record["mode"], record["tables"], record["target"]) == (
        "FAILED",
        "incremental",
        TABLES,
        "aws",
    )
    assert record["execution_arn"] == arn
    assert record["error"]["Error"] == "Glue.EntityNotFoundException"
    # Settled: nothing was committed, so every table's raw rows are to go (the warehouse is
    # out of reach here, so they wait for the next raw load).
    assert record["raw_to_discard"] == TABLES
    assert_lock_free(ctx)


def test_a_stopped_execution_is_settled_by_the_next_runs_begin(ctx: Context) -> None:
    deploy(ctx, hold_after_begin=True)
    with jobs_run_in_process(ctx):
        first = start(ctx, "stop-1")
        assert wait_for_record("stop-1", ctx)["status"] == "RUNNING"
        sfn().stop_execution(executionArn=first)
        assert wait_until_ended(first)["status"] == "ABORTED"
        # Stopped: no RecordFailure ran, the record and the lock are left as they were.
        assert (ctx.state.get_run("stop-1") or {})["status"] == "RUNNING"

        second = start(ctx, "stop-2")
        try:
            assert wait_for_record("stop-2", ctx)["status"] == "RUNNING"
            deadline = time.monotonic() + 30
            while "raw_to_discard" not in (stopped := ctx.state.get_run("stop-1") or {}):
                assert time.monotonic() < deadline, "stop-2's Begin did not settle stop-1"
                time.sleep(0.05)
        finally:
            sfn().stop_execution(executionArn=second)

    assert stopped["status"] == "FAILED"
    assert stopped["error"] == {
        "Error": "Rentalctl.ExecutionAborted",
        "Cause": f"its execution {first} ended ABORTED without closing the run record; "
        "settled by run stop-2",
    }
    assert stopped["raw_to_discard"] == TABLES
    assert stopped["ended_at"]


def test_a_second_execution_is_refused_by_begin_and_touches_nothing_of_the_first(
    ctx: Context,
) -> None:
    """Two executions started in the same instant (the schedule and a user): the second one's
    Begin finds the lock held by a running execution."""
    deploy(ctx, hold_after_begin=True)
    with jobs_run_in_process(ctx):
        first = start(ctx, "hold-1")
        try:
            holding = wait_for_record("hold-1", ctx)
            second = sfn().start_execution(
                stateMachineArn=SM_ARN, name="late-2", input=json.dumps({"mode": "incremental"})
            )["executionArn"]
            assert wait_until_ended(second)["status"] == "FAILED"
            refused = ctx.state.get_run("late-2") or {}
            assert refused["status"] == "FAILED"
            assert refused["error"]["Error"] == "Rentalctl.LockHeld"
            assert "run hold-1" in refused["error"]["Cause"]
            assert ctx.state.get_run("hold-1") == holding  # untouched
            with pytest.raises(LockHeld, match="run hold-1"):
                ctx.state.acquire_lock(describe_self("PROBE"), lambda holder: False)
        finally:
            sfn().stop_execution(executionArn=first)


def test_an_operators_bookmark_change_and_a_run_exclude_each_other(ctx: Context) -> None:
    """On AWS the lock's holder is a running execution (judged by its status) or an operator's
    `bookmarks set` on a machine (judged by its process and heartbeat): each keeps the other
    out while alive, and a dead one is taken over."""
    from rentalctl.pipeline.begin import _holder, holder_is_stale
    from rentalctl.run_lock import PipelineLock

    deploy_waiting()
    first = start(ctx, "run-1")
    execution_holder = {"run_id": "run-1", "host": "aws-step-functions", "execution_arn": first}
    assert ctx.state.acquire_lock(execution_holder, lambda _: False) is None
    try:
        with (
            pytest.raises(LockHeld, match="run run-1 "),
            PipelineLock(ctx.state, "bookmarks-op", holder_is_stale(ctx)),
        ):
            pass  # never reached: the execution is RUNNING
    finally:
        sfn().stop_execution(executionArn=first)
    with PipelineLock(ctx.state, "bookmarks-op", holder_is_stale(ctx)) as lock:
        assert lock.recovered == execution_holder  # ABORTED: no longer holds anything
        # A Begin while the operator's command (this live process) holds the lock is refused,
        # although no execution of that name exists.
        holder, stale = _holder("run-2", first.replace("run-1", "run-2"), lambda arn: None)
        with pytest.raises(LockHeld, match="run bookmarks-op "):
            ctx.state.acquire_lock(holder, stale)
    dead = {**describe_self("bookmarks-old"), "pid": 999_999_999}  # no such process
    assert stale(dead) is True


def test_a_failed_run_is_resumed_as_a_new_execution_of_the_same_run(ctx: Context) -> None:
    from rentalctl.orchestration.resume import check_resumable, reopen

    deploy(ctx, missing=("publish",))
    first = start(ctx, "run-resumed")
    assert aws_run.follow(ctx, first, TABLES, poll_seconds=0.05)["status"] == "FAILED"
    boto3.client("glue", region_name=REGION).create_job(
        Name="rentalctl-publish",
        Role=f"arn:aws:iam::{ACCOUNT}:role/rentalctl-glue",
        Command={"Name": "pythonshell", "ScriptLocation": "s3://test-lake/x.py"},
    )
    record = check_resumable(ctx, "run-resumed")
    arn = aws_run.start(
        ctx,
        run_id="run-resumed",
        mode=record.get("mode") or "incremental",
        since=None,
        until=None,
        tables=record.get("tables") or TABLES,
        name="run-resumed.resume-1",
        before=lambda new_arn: reopen(ctx, "run-resumed", new_arn),
    )
    assert arn == f"{SM_ARN.replace(':stateMachine:', ':execution:')}:run-resumed.resume-1"
    given = json.loads(sfn().describe_execution(executionArn=arn)["input"])
    assert given["run_id"] == "run-resumed"
    done = aws_run.follow(ctx, arn, TABLES, poll_seconds=0.05)
    assert done["status"] == "SUCCEEDED", done.get("error")
    stored = ctx.state.get_run("run-resumed")
    assert stored is not None and stored["execution_arn"] == arn
    (attempt,) = stored["attempts"]
    assert attempt["status"] == "FAILED"
    assert attempt["error"]["Error"] == "Glue.EntityNotFoundException"
    assert_lock_free(ctx)


def test_ctrl_c_while_following_an_aws_run_leaves_the_execution_running(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from rentalctl.cli import app

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    deploy_waiting()  # an execution that stays RUNNING
    monkeypatch.setattr(aws_run, "follow", interrupted)
    config_file = str(tmp_path / "aws.yaml")
    ran = CliRunner().invoke(app, ["--config", config_file, "run", "--run-id", "FOLLOW1"])
    assert ran.exit_code == 130
    assert ran.stderr == (
        "error: stopped following run FOLLOW1; its execution goes on in AWS: `rentalctl cancel "
        "FOLLOW1` stops it, `rentalctl status FOLLOW1 --watch` follows it\n"
    )
    (execution,) = sfn().list_executions(stateMachineArn=SM_ARN)["executions"]
    assert (execution["name"], execution["status"]) == ("FOLLOW1", "RUNNING")
