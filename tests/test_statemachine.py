"""The rendered state machine, checked statically: the step order docs/contract.md §7 prescribes in
four sequential Glue job starts, Retry with backoff on every task (covering a failed Glue run,
``States.TaskFailed``), Catch that records, notifies and fails, Glue tasks that wait (.sync),
only rentalctl's own jobs, no job argument Glue reserves, and no problem the AWS States Language
linter (statelint) finds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rentalctl import config
from rentalctl.orchestration import statemachine as sm

# The Step Functions resource of a Glue job start that waits for the run (AWS Step Functions
# developer guide, "Run a job (.sync)"), and the placeholder topic of a definition rendered without
# aws.sns_topic_arn (a local run logs its notifications).
GLUE_SYNC = "arn:aws:states:::glue:startJobRun.sync"
LOCAL_TOPIC = "arn:aws:sns:local:000000000000:rentalctl-run-log"


def render(**overrides: str) -> dict[str, Any]:
    return sm.render(config.load(overrides=overrides, env={}))


def test_step_order_and_the_map_over_tables() -> None:
    states = render()["States"]
    order, name = [], "Plan"
    while name:
        order.append(name)
        name = states[name].get("Next")
    assert order == [
        "Plan",
        "Resolve",
        "Begin",
        "ExtractAndLoad",
        "Transform",
        "Publish",
        "Succeeded",
    ]
    extract = states["ExtractAndLoad"]
    assert extract["Type"] == "Map" and extract["ItemsPath"] == "$.tables"
    inner = extract["ItemProcessor"]
    assert inner["StartAt"] == "ExtractLoad"
    assert list(inner["States"]) == ["ExtractLoad"]
    assert inner["States"]["ExtractLoad"]["End"] is True


def test_a_run_starts_four_glue_jobs_in_sequence() -> None:
    states = render()["States"]
    sequence, name = [], "Plan"
    while name:
        state = states[name]
        if state["Type"] == "Map":
            inner = state["ItemProcessor"]["States"]
            state = inner[state["ItemProcessor"]["StartAt"]]
            assert "Next" not in state  # one Glue job per table, side by side
        if state.get("Resource") == GLUE_SYNC:
            sequence.append(state["Parameters"]["JobName"])
        name = states[name].get("Next")
    assert sequence == [
        "rentalctl-begin",
        "rentalctl-extract-load",
        "rentalctl-transform",
        "rentalctl-publish",
    ]


@pytest.mark.parametrize(("setting", "expected"), [(None, 4), ("1", 1), ("0", 0)])
def test_the_map_runs_as_many_tables_at_once_as_configured(
    setting: str | None, expected: int
) -> None:
    overrides = {"pipeline.max_concurrency": setting} if setting else {}
    maps = [s for s in render(**overrides)["States"].values() if s["Type"] == "Map"]
    assert [m["MaxConcurrency"] for m in maps] == [expected]


def test_defaults_come_from_config() -> None:
    plan = render(tables="[bookings, apartments]")["States"]["Plan"]["Parameters"]["defaults"]
    assert plan == {
        "mode": "incremental",
        "since": None,
        "until": None,
        "tables": ["apartments", "bookings"],
        "run_id.$": "$$.Execution.Name",
    }


def test_every_task_retries_with_backoff_and_every_step_is_caught() -> None:
    definition = render(**{"retry.interval_seconds": "7", "retry.max_attempts": "4"})
    tasks = []
    for path, state, _ in sm._walk(definition["States"]):
        if state["Type"] == "Task":
            tasks.append(path)
            assert state["Retry"] == [
                {
                    "ErrorEquals": ["States.TaskFailed"],
                    "IntervalSeconds": 7,
                    "MaxAttempts": 4,
                    "BackoffRate": 2.0,
                    "MaxDelaySeconds": 120,
                }
            ], path
        if (
            "/" not in path
            and state["Type"] in ("Task", "Map")
            and path not in ("RecordFailure", "Notify")
        ):
            assert state["Catch"] == [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}
            ], path
    assert tasks == [
        "Begin",
        "ExtractAndLoad/ExtractLoad",
        "Transform",
        "Publish",
        "RecordFailure",
        "Notify",
    ]


def test_failure_path_records_notifies_and_fails() -> None:
    states = render()["States"]
    assert states["RecordFailure"]["Next"] == "Notify"
    assert states["Notify"]["Resource"] == "arn:aws:states:::sns:publish"
    assert states["Notify"]["Parameters"]["TopicArn"] == LOCAL_TOPIC
    assert states["Notify"]["Next"] == "Failed"
    assert states["Failed"] == {
        "Type": "Fail",
        "ErrorPath": "$.error.Error",
        "CausePath": "$.error.Cause",
    }


def test_aws_topic_and_job_prefix_are_rendered() -> None:
    topic = "arn:aws:sns:eu-west-1:123456789012:alerts"
    states = render(**{"target": "aws", "aws.sns_topic_arn": topic, "aws.glue_job_prefix": "mkt"})[
        "States"
    ]
    assert states["Notify"]["Parameters"]["TopicArn"] == topic
    assert states["Publish"]["Parameters"]["JobName"] == "mkt-publish"
    extract = states["ExtractAndLoad"]["ItemProcessor"]["States"]["ExtractLoad"]
    assert extract["Parameters"]["JobName"] == "mkt-extract-load"


def test_without_a_topic_on_aws_the_failure_path_skips_notify() -> None:
    states = render(target="aws")["States"]
    assert "Notify" not in states
    assert states["RecordFailure"]["Next"] == "Failed"


def test_glue_tasks_wait_and_keep_only_the_run_state() -> None:
    for path, state, _ in sm._walk(render()["States"]):
        if state.get("Resource", "").startswith("arn:aws:states:::glue"):
            assert state["Resource"] == "arn:aws:states:::glue:startJobRun.sync", path
            assert state["ResultSelector"] == {"JobRunState.$": "$.JobRunState", "Id.$": "$.Id"}


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (
            lambda d: d["States"]["Publish"].update(Next="Nowhere"),
            "States.Publish.Next: 'Nowhere' is not a state",
        ),
        (lambda d: d["States"]["Publish"].pop("Retry"), "Publish: a task without Retry"),
        (lambda d: d["States"]["Publish"].pop("Catch"), "Publish: a task without Catch"),
        (
            lambda d: d["States"]["Publish"].update(Resource="arn:aws:states:::glue:startJobRun"),
            "States.Publish.Resource: 'arn:aws:states:::glue:startJobRun' not supported "
            "(supported: arn:aws:states:::glue:startJobRun.sync, arn:aws:states:::sns:publish)",
        ),
        (lambda d: d["States"]["Publish"]["Parameters"].update(JobName="x"), "job 'x' is not"),
        (lambda d: d["States"]["ExtractAndLoad"].pop("Catch"), "a Map without Catch"),
        (
            lambda d: d["States"]["Publish"]["Catch"][0].update(ErrorEquals=["States.ALL", "X"]),
            "States.Publish.Catch[0].ErrorEquals: States.ALL must appear alone, in the last entry",
        ),
        (
            lambda d: d["States"]["Publish"]["Retry"][0].update(
                ErrorEquals=["Rentalctl.ResourceUnavailable"]
            ),
            "Publish: its Retry must cover States.TaskFailed",
        ),
        (
            lambda d: d["States"]["Begin"]["Parameters"]["Arguments"].update(
                {"--mode.$": "$.mode"}
            ),
            "Begin: job argument --mode is reserved by AWS Glue",
        ),
        (
            lambda d: d["States"]["Transform"]["Parameters"]["Arguments"].update({"--conf": "x"}),
            "Transform: job argument --conf is reserved by AWS Glue",
        ),
        (lambda d: d.update(StartAt="Nope"), "StartAt: 'Nope' is not a state"),
    ],
)
def test_validation_finds_broken_definitions(mutate: Any, problem: str) -> None:
    settings = config.load(env={})
    definition = sm.render(settings)
    mutate(definition)
    assert any(problem in p for p in sm.validate(definition, settings))


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (
            lambda d: d["States"].update(
                Hold={"Type": "Wait", "Seconds": 1, "Next": "Publish"},
                Transform={**d["States"]["Transform"], "Next": "Hold"},
            ),
            "States.Hold.Type: 'Wait' state not supported (supported: Pass, Task, Succeed, Fail, "
            "Map)",
        ),
        (
            lambda d: d["States"]["Publish"].update(TimeoutSeconds=60),
            "States.Publish.TimeoutSeconds: field not supported in a Task state",
        ),
        (
            lambda d: d["States"]["Publish"]["Retry"][0].update(JitterStrategy="FULL"),
            "States.Publish.Retry[0].JitterStrategy: field not supported in a retrier",
        ),
        (
            lambda d: d["States"]["ExtractAndLoad"].update(ItemsPath="$.tables[*]"),
            "States.ExtractAndLoad.ItemsPath: '$.tables[*]': wildcards (*) not supported: only "
            "definite paths are",
        ),
        (
            lambda d: d["States"]["Transform"]["Parameters"]["Arguments"].update(
                {"--tables.$": "$.tables[0:2]"}
            ),
            "States.Transform.Parameters.Arguments.--tables.$: '$.tables[0:2]': slices "
            "([start:stop]) not supported: only definite paths are",
        ),
        (
            lambda d: d["States"]["Transform"]["Parameters"]["Arguments"].update(
                {"--tables.$": "States.Hash($.tables, 'MD5')"}
            ),
            "States.Transform.Parameters.Arguments.--tables.$: \"States.Hash($.tables, 'MD5')\": "
            "intrinsic function States.Hash not supported (supported: States.Format, "
            "States.JsonToString, States.JsonMerge)",
        ),
    ],
)
def test_validation_refuses_what_the_executor_does_not_implement(mutate: Any, problem: str) -> None:
    """The definition checks that deploy and the local run share: anything beyond what the
    pipeline's definition uses is refused by name instead of running with other semantics."""
    settings = config.load(env={})
    definition = sm.render(settings)
    mutate(definition)
    assert sm.validate(definition, settings) == [problem]


def test_no_glue_task_passes_an_argument_glue_reserves() -> None:
    """Glue documents --mode, --conf, --debug and --JOB_NAME as "Internal to AWS Glue. Do not
    set."; the others configure the job run (AWS Glue developer guide, job parameters)."""
    arguments = set()
    for _, state, _ in sm._walk(render()["States"]):
        if state.get("Resource") == GLUE_SYNC:
            arguments |= {k.removesuffix(".$") for k in state["Parameters"]["Arguments"]}
    assert arguments == {
        "--run_id",
        "--execution_id",
        "--extract_mode",
        "--since",
        "--until",
        "--table",
        "--tables",
        "--error",
    }
    assert not arguments & {"--mode", "--conf", "--debug", "--JOB_NAME", "--TempDir"}


@pytest.mark.parametrize("target", ["local", "aws"])
def test_statelint_finds_no_problem(target: str, tmp_path: Path) -> None:
    overrides = {
        "target": target,
        "tables": "[apartments, apartment_attributes, user_viewing, bookings]",
    }
    if target == "aws":
        overrides["aws.sns_topic_arn"] = "arn:aws:sns:eu-west-1:123456789012:rentalctl-alerts"
    path = tmp_path / "pipeline.asl.json"
    path.write_text(json.dumps(render(**overrides)))
    linter = Path(sys.executable).parent / "statelint"
    done = subprocess.run([str(linter), str(path)], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_statelint_reports_what_it_is_run_on(tmp_path: Path) -> None:
    """The linter really lints: a definition naming a missing state fails it."""
    broken = render()
    broken["States"]["Publish"]["Next"] = "Nowhere"
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps(broken))
    linter = Path(sys.executable).parent / "statelint"
    done = subprocess.run([str(linter), str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "Nowhere" in done.stdout
