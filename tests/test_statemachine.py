"""The rendered state machine, checked statically: the step order SPEC section 7 prescribes,
Retry with backoff on every task, Catch that records, notifies and fails, Glue tasks that wait
(.sync), and only rentalctl's own jobs."""

from __future__ import annotations

from typing import Any

import pytest

from rentalctl import config
from rentalctl.orchestration import statemachine as sm


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
        "ExtractAndLoad",
        "Transform",
        "Merge",
        "Presentation",
        "CommitBookmarks",
        "Archive",
        "Succeeded",
    ]
    extract = states["ExtractAndLoad"]
    assert extract["Type"] == "Map" and extract["ItemsPath"] == "$.tables"
    inner = extract["ItemProcessor"]
    assert inner["StartAt"] == "Extract"
    assert inner["States"]["Extract"]["Next"] == "LoadRaw"
    assert inner["States"]["LoadRaw"]["End"] is True


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
                    "ErrorEquals": sm.TRANSIENT_ERRORS,
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
        "ExtractAndLoad/Extract",
        "ExtractAndLoad/LoadRaw",
        "Transform",
        "Merge",
        "Presentation",
        "CommitBookmarks",
        "Archive",
        "RecordFailure",
        "Notify",
    ]


def test_failure_path_records_notifies_and_fails() -> None:
    states = render()["States"]
    assert states["RecordFailure"]["Next"] == "Notify"
    assert states["Notify"]["Resource"] == "arn:aws:states:::sns:publish"
    assert states["Notify"]["Parameters"]["TopicArn"] == sm.LOCAL_TOPIC
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
    assert states["Merge"]["Parameters"]["JobName"] == "mkt-merge"
    extract = states["ExtractAndLoad"]["ItemProcessor"]["States"]["Extract"]
    assert extract["Parameters"]["JobName"] == "mkt-extract"


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
        (lambda d: d["States"]["Merge"].update(Next="Nowhere"), "Merge: Next 'Nowhere'"),
        (lambda d: d["States"]["Merge"].pop("Retry"), "Merge: a task without Retry"),
        (lambda d: d["States"]["Merge"].pop("Catch"), "Merge: a task without Catch"),
        (
            lambda d: d["States"]["Merge"].update(Resource="arn:aws:states:::glue:startJobRun"),
            "Glue tasks must use",
        ),
        (lambda d: d["States"]["Merge"]["Parameters"].update(JobName="x"), "job 'x' is not"),
        (lambda d: d["States"]["ExtractAndLoad"].pop("Catch"), "a Map without Catch"),
        (
            lambda d: d["States"]["Merge"]["Catch"][0].update(ErrorEquals=["States.ALL", "X"]),
            "States.ALL must be alone",
        ),
        (lambda d: d.update(StartAt="Nope"), "StartAt 'Nope'"),
    ],
)
def test_validation_finds_broken_definitions(mutate: Any, problem: str) -> None:
    settings = config.load(env={})
    definition = sm.render(settings)
    mutate(definition)
    assert any(problem in p for p in sm.validate(definition, settings))
