"""The local Step Functions executor: Amazon States Language semantics (JSONPath mode) as AWS
documents them, checked on literal expectations, then cross-checked against moto's own ASL
interpreter for definitions without Task states.

Everything runs on a fake clock: retry back-off records its delays instead of sleeping.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from rentalctl.orchestration.asl_task import TaskContext, TaskFailed
from rentalctl.orchestration.clock import FakeClock
from rentalctl.orchestration.executor import Execution, Executor

GLUE = "arn:aws:states:::glue:startJobRun.sync"
SNS = "arn:aws:states:::sns:publish"
START = datetime(2025, 1, 1, tzinfo=UTC)


def task(**fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": GLUE, **fields}


def single(state: dict[str, Any]) -> dict[str, Any]:
    """A machine of one state (ending the execution)."""
    if state["Type"] in ("Task", "Pass", "Map", "Parallel", "Wait"):
        state = {**state, "End": True}
    return {"StartAt": "S", "States": {"S": state}}


class Script:
    """A Glue handler that plays a script: each call takes the next step (an exception to
    raise, seconds to "run" on the fake clock, or a result) and records what it was given."""

    def __init__(self, clock: FakeClock, *steps: Any) -> None:
        self.clock, self.steps = clock, list(steps)
        self.calls: list[tuple[Any, TaskContext]] = []

    def __call__(self, params: Any, ctx: TaskContext) -> Any:
        self.calls.append((params, ctx))
        step = self.steps.pop(0) if self.steps else {"JobRunState": "SUCCEEDED"}
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, tuple):  # ("run", seconds, result)
            self.clock.advance(step[1])
            return step[2]
        return step


def run(
    definition: dict[str, Any],
    input: Any = None,
    *steps: Any,
    name: str = "exec-1",
) -> tuple[Execution, FakeClock, Script]:
    clock = FakeClock(START)
    script = Script(clock, *steps)
    executor = Executor(definition, {GLUE: script, SNS: script}, clock=clock)
    return executor.execute(input if input is not None else {}, name), clock, script


# --- Retry --------------------------------------------------------------------------------


def test_retry_waits_interval_times_backoff_rate_and_then_succeeds() -> None:
    retry = [
        {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2, "BackoffRate": 3, "MaxAttempts": 5}
    ]
    fail = TaskFailed("Glue.ConcurrentRunsExceededException", "busy")
    execution, clock, script = run(single(task(Retry=retry)), {}, fail, fail, fail, {"ok": 1})
    assert execution.status == "SUCCEEDED"
    assert execution.output == {"ok": 1}
    assert clock.sleeps == [2.0, 6.0, 18.0]
    assert [ctx.attempt for _, ctx in script.calls] == [1, 2, 3, 4]


def test_retry_defaults_are_one_second_rate_two_three_attempts() -> None:
    retry = [{"ErrorEquals": ["States.TaskFailed"]}]
    errors = [RuntimeError("flaky")] * 5
    execution, clock, script = run(single(task(Retry=retry)), {}, *errors)
    assert clock.sleeps == [1.0, 2.0, 4.0]
    assert len(script.calls) == 4
    assert (execution.status, execution.error, execution.cause) == (
        "FAILED",
        "States.TaskFailed",
        "flaky",
    )


def test_max_delay_seconds_caps_the_backoff() -> None:
    retry = [
        {
            "ErrorEquals": ["Glue.Throttled"],
            "IntervalSeconds": 1,
            "BackoffRate": 2.5,
            "MaxAttempts": 5,
            "MaxDelaySeconds": 10,
        }
    ]
    errors = [TaskFailed("Glue.Throttled", "slow down")] * 6
    execution, clock, script = run(single(task(Retry=retry)), {}, *errors)
    assert clock.sleeps == [1.0, 2.5, 6.25, 10.0, 10.0]
    assert len(script.calls) == 6
    assert (execution.error, execution.cause) == ("Glue.Throttled", "slow down")


def test_max_attempts_zero_never_retries_and_later_retriers_are_not_consulted() -> None:
    retry = [
        {"ErrorEquals": ["Glue.Fatal"], "MaxAttempts": 0},
        {"ErrorEquals": ["States.ALL"], "MaxAttempts": 5},
    ]
    execution, clock, script = run(single(task(Retry=retry)), {}, TaskFailed("Glue.Fatal", "x"))
    assert clock.sleeps == []
    assert len(script.calls) == 1
    assert execution.error == "Glue.Fatal"


def test_each_retrier_counts_its_own_attempts() -> None:
    retry = [
        {"ErrorEquals": ["Custom.Throttled"], "IntervalSeconds": 10, "MaxAttempts": 1},
        {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 3, "MaxAttempts": 2},
    ]
    throttled = TaskFailed("Custom.Throttled", "again")
    steps = [throttled, RuntimeError("boom"), RuntimeError("boom"), throttled]
    execution, clock, script = run(single(task(Retry=retry)), {}, *steps)
    # Throttled: retrier 1 (10 s); then two task failures: retrier 2 (3 s, 6 s); then Throttled
    # again: retrier 1 is used up, so the first matching retrier does not retry: the state fails.
    assert clock.sleeps == [10.0, 3.0, 6.0]
    assert len(script.calls) == 4
    assert (execution.error, execution.cause) == ("Custom.Throttled", "again")


# --- Catch --------------------------------------------------------------------------------


def catching(
    catch: list[dict[str, Any]], retry: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    extra = {"Retry": retry} if retry else {}
    return {
        "StartAt": "Work",
        "States": {
            # A first catcher for another error, which must not be taken.
            "Work": task(
                Catch=[{"ErrorEquals": ["Other.Error"], "Next": "Other"}, *catch],
                Next="Done",
                **extra,
            ),
            "Done": {"Type": "Succeed"},
            "Handle": {"Type": "Pass", "End": True},
            "Other": {"Type": "Pass", "Result": "wrong", "End": True},
        },
    }


def test_catch_merges_error_into_the_input_at_its_result_path() -> None:
    catch = [{"ErrorEquals": ["Glue.JobFailed"], "ResultPath": "$.error", "Next": "Handle"}]
    failure = TaskFailed("Glue.JobFailed", "job crashed")
    execution, _, _ = run(catching(catch), {"run_id": "r1"}, failure)
    assert execution.status == "SUCCEEDED"
    assert execution.output == {
        "run_id": "r1",
        "error": {"Error": "Glue.JobFailed", "Cause": "job crashed"},
    }


def test_catch_result_path_defaults_to_replacing_the_input() -> None:
    catch = [{"ErrorEquals": ["States.ALL"], "Next": "Handle"}]
    execution, _, _ = run(catching(catch), {"run_id": "r1"}, ValueError("bad value"))
    assert execution.output == {"Error": "States.TaskFailed", "Cause": "bad value"}


def test_catch_with_null_result_path_keeps_the_input() -> None:
    catch = [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": None, "Next": "Handle"}]
    execution, _, _ = run(catching(catch), {"run_id": "r1"}, ValueError("bad value"))
    assert execution.output == {"run_id": "r1"}


def test_catch_applies_only_after_retries_are_exhausted() -> None:
    catch = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "Handle"}]
    retry = [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 5}]
    errors = [TaskFailed("E", "one"), TaskFailed("E", "two"), TaskFailed("E", "three")]
    execution, clock, _ = run(catching(catch, retry), {}, *errors)
    assert clock.sleeps == [5.0, 10.0]
    assert execution.output == {"e": {"Error": "E", "Cause": "three"}}
    types = [e["type"] for e in execution.history]
    assert types == [
        "ExecutionStarted",
        "TaskStateEntered",
        *["TaskScheduled", "TaskStarted", "TaskFailed"] * 3,
        "TaskStateExited",
        "PassStateEntered",
        "PassStateExited",
        "ExecutionSucceeded",
    ]


def test_uncaught_error_fails_the_execution_with_its_error_and_cause() -> None:
    catch = [{"ErrorEquals": ["Something.Else"], "Next": "Handle"}]
    execution, _, _ = run(catching(catch), {}, TaskFailed("Glue.JobFailed", "OOM"))
    assert (execution.status, execution.error, execution.cause) == (
        "FAILED",
        "Glue.JobFailed",
        "OOM",
    )
    assert execution.output is None
    assert execution.history[-1]["executionFailedEventDetails"] == {
        "error": "Glue.JobFailed",
        "cause": "OOM",
    }


# --- input and output processing -----------------------------------------------------------


def test_task_input_output_processing_in_order() -> None:
    state = task(
        InputPath="$.job",
        Parameters={
            "JobName.$": "$.name",
            "Arguments": {"--table.$": "$.tables[1]", "--fixed": "x", "--last.$": "$.tables[-1]"},
            "Run.$": "$$.Execution.Name",
        },
        ResultSelector={"state.$": "$.JobRunState", "id.$": "$['Id']"},
        ResultPath="$.job.result",
        OutputPath="$.job",
    )
    job_input = {"job": {"name": "extract", "tables": ["users", "apartments", "bookings"]}, "k": 1}
    result = {"JobRunState": "SUCCEEDED", "Id": "jr_1", "StartedOn": "whenever"}
    execution, _, script = run(single(state), job_input, result)
    assert script.calls[0][0] == {
        "JobName": "extract",
        "Arguments": {"--table": "apartments", "--fixed": "x", "--last": "bookings"},
        "Run": "exec-1",
    }
    assert execution.output == {
        "name": "extract",
        "tables": ["users", "apartments", "bookings"],
        "result": {"state": "SUCCEEDED", "id": "jr_1"},
    }


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, {"r": 1}),  # ResultPath defaults to $: the result replaces the input
        ({"ResultPath": "$"}, {"r": 1}),
        ({"ResultPath": None}, {"a": {"b": 2}, "c": [1]}),
        ({"ResultPath": "$.a.x"}, {"a": {"b": 2, "x": {"r": 1}}, "c": [1]}),
        ({"ResultPath": "$.new.deep"}, {"a": {"b": 2}, "c": [1], "new": {"deep": {"r": 1}}}),
        ({"ResultPath": "$.c[0]"}, {"a": {"b": 2}, "c": [{"r": 1}]}),
        ({"InputPath": None, "Parameters": {"n.$": "States.JsonToString($)"}}, {"n": "{}"}),
        ({"OutputPath": None}, {}),
        ({"ResultPath": "$.a.x", "OutputPath": "$.a"}, {"b": 2, "x": {"r": 1}}),
        ({"InputPath": "$.a", "ResultPath": "$.x"}, {"a": {"b": 2}, "c": [1], "x": {"r": 1}}),
    ],
)
def test_result_path_and_output_path(fields: dict[str, Any], expected: Any) -> None:
    state = {"Type": "Pass", "Result": {"r": 1}, **fields}
    if "Parameters" in fields:
        state.pop("Result")
    execution, _, _ = run(single(state), {"a": {"b": 2}, "c": [1]})
    assert execution.output == expected


def test_pass_parameters_paths_and_context_object() -> None:
    state = {
        "Type": "Pass",
        "Parameters": {
            "quoted.$": "$['odd key']",
            "nested.$": "$.a.b[0]",
            "list": [{"inner.$": "$.a.b[1]"}, "literal"],
            "exec.$": "$$.Execution.Name",
            "execId.$": "$$.Execution.Id",
            "started.$": "$$.Execution.StartTime",
            "input.$": "$$.Execution.Input.a",
            "state.$": "$$.State.Name",
            "entered.$": "$$.State.EnteredTime",
            "retries.$": "$$.State.RetryCount",
            "machine.$": "$$.StateMachine.Name",
        },
    }
    data = {"odd key": 1, "a": {"b": [10, 20, 30]}, "people": [{"name": "x"}, {"name": "y"}]}
    clock = FakeClock(START)
    executor = Executor(single(state), {}, clock=clock, state_machine_name="rentalctl-pipeline")
    execution = executor.execute(data, "run-42")
    assert execution.output == {
        "quoted": 1,
        "nested": 10,
        "list": [{"inner": 20}, "literal"],
        "exec": "run-42",
        "execId": "arn:aws:states:local:000000000000:execution:rentalctl-pipeline:run-42",
        "started": "2025-01-01T00:00:00.000Z",
        "input": {"b": [10, 20, 30]},
        "state": "S",
        "entered": "2025-01-01T00:00:00.000Z",
        "retries": 0,
        "machine": "rentalctl-pipeline",
    }


def test_pass_result_wins_over_parameters_and_input() -> None:
    state = {"Type": "Pass", "Parameters": {"p": 1}, "Result": {"r": 2}, "ResultPath": "$.out"}
    execution, _, _ = run(single(state), {"in": 0})
    assert execution.output == {"in": 0, "out": {"r": 2}}


def test_handler_gets_a_copy_and_the_raw_input_feeds_result_path() -> None:
    def mutating(params: Any, ctx: TaskContext) -> Any:
        params["x"] = "changed"
        return "done"

    definition = single(task(InputPath="$.inner", ResultPath="$.r"))
    execution = Executor(definition, {GLUE: mutating}, clock=FakeClock()).execute(
        {"inner": {"x": 1}, "other": 2}, "e"
    )
    assert execution.output == {"inner": {"x": 1}, "other": 2, "r": "done"}


def test_result_path_into_a_non_object_is_a_result_path_match_failure() -> None:
    execution, _, _ = run(single({"Type": "Pass", "Result": 1, "ResultPath": "$.a.b"}), {"a": "s"})
    assert execution.error == "States.ResultPathMatchFailure"


# --- States.Runtime ------------------------------------------------------------------------


def test_parameters_path_that_does_not_resolve_is_a_runtime_failure_no_catch_sees() -> None:
    definition = catching([{"ErrorEquals": ["States.ALL"], "Next": "Handle"}])
    definition["States"]["Work"]["Parameters"] = {"table.$": "$.missing"}
    execution, _, script = run(definition, {"a": 1})
    assert script.calls == []
    assert execution.status == "FAILED"
    assert execution.error == "States.Runtime"
    assert execution.cause == (
        "An error occurred while executing the state 'Work' (entered at the event id #2). "
        "The JSONPath '$.missing' specified for the field 'table.$' could not be found in the "
        """input '{"a":1}'"""
    )


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (
            {"Type": "Pass", "InputPath": "$.nope"},
            "Invalid path '$.nope' : No results for path: $['nope']",
        ),
        ({"Type": "Pass", "OutputPath": "$.a.zz"}, "No results for path: $['a']['zz']"),
        ({"Type": "Pass", "Parameters": {"x.$": "$.a[5]"}}, "The JSONPath '$.a[5]'"),
        (
            {"Type": "Map", "ItemsPath": "$.a", "ItemProcessor": single({"Type": "Pass"})},
            "must be a JSON array",
        ),
        ({"Type": "Pass", "Parameters": {"x.$": "States.Format('{} {}', 1)"}}, "placeholders"),
        ({"Type": "Fail", "ErrorPath": "$.a"}, "ErrorPath gave"),
    ],
)
def test_runtime_failures(state: dict[str, Any], message: str) -> None:
    execution, _, _ = run(single(state), {"a": {"b": 1}})
    assert execution.status == "FAILED"
    assert execution.error == "States.Runtime"
    assert execution.cause is not None and message in execution.cause


# --- Map, Succeed, Fail ----------------------------------------------------------------------


def test_map_item_selector_context_and_result_path() -> None:
    state = {
        "Type": "Map",
        "ItemsPath": "$.tables",
        "MaxConcurrency": 4,
        "ItemSelector": {
            "table.$": "$$.Map.Item.Value",
            "index.$": "$$.Map.Item.Index",
            "run.$": "$.run_id",
        },
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "INLINE"},
            "StartAt": "Extract",
            "States": {
                "Extract": task(Parameters={"T.$": "$.table"}, ResultPath="$.out", End=True)
            },
        },
        "ResultPath": "$.extracted",
    }
    data = {"run_id": "r1", "tables": ["users", "apartments", "bookings"]}

    def glue(params: Any, ctx: TaskContext) -> Any:  # iterations run at once: answer by input
        return {"n": len(params["T"])}

    execution = Executor(single(state), {GLUE: glue}, clock=FakeClock(START)).execute(data, "e")
    assert execution.output == {
        "run_id": "r1",
        "tables": ["users", "apartments", "bookings"],
        "extracted": [
            {"table": "users", "index": 0, "run": "r1", "out": {"n": 5}},
            {"table": "apartments", "index": 1, "run": "r1", "out": {"n": 10}},
            {"table": "bookings", "index": 2, "run": "r1", "out": {"n": 8}},
        ],
    }


def test_fail_with_error_and_cause() -> None:
    execution, _, _ = run(single({"Type": "Fail", "Error": "Pipeline.Failed", "Cause": "gate"}))
    assert (execution.status, execution.error, execution.cause) == (
        "FAILED",
        "Pipeline.Failed",
        "gate",
    )


def test_fail_with_error_path_and_cause_path() -> None:
    state = {
        "Type": "Fail",
        "ErrorPath": "$.error.Error",
        "CausePath": "$.error.Cause",
    }
    data = {"run_id": "r7", "error": {"Error": "Glue.JobFailed", "Cause": "OOM"}}
    execution, _, _ = run(single(state), data)
    assert (execution.error, execution.cause) == ("Glue.JobFailed", "OOM")


def test_succeed_ends_early_with_output_path() -> None:
    definition = {
        "StartAt": "S",
        "States": {"S": {"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}},
    }
    execution, _, _ = run(definition, {"a": {"b": [1]}})
    assert (execution.status, execution.output) == ("SUCCEEDED", [1])


# --- intrinsic functions -------------------------------------------------------------------

INTRINSIC_INPUT = {
    "name": "Ann",
    "n": 41,
    "obj": {"a": 1, "b": [1, "x"]},
    "obj2": {"b": 2, "c": 3},
}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("States.Format('Hello {}, {}!', $.name, $.n)", "Hello Ann, 41!"),
        ("States.Format('a, (b) {}', $['name'])", "a, (b) Ann"),
        ("States.Format('{} {} {}', $.obj, true, null)", "{a=1, b=[1, x]} true null"),
        ("States.Format('a\\{\\}b it\\'s {}', 'x')", "a{}b it's x"),
        ("States.JsonToString($.obj)", '{"a":1,"b":[1,"x"]}'),
        ("States.JsonMerge($.obj, $.obj2, false)", {"a": 1, "b": 2, "c": 3}),
        ("States.JsonToString(States.JsonMerge($.obj2, $.obj2, false))", '{"b":2,"c":3}'),
        ("States.Format('{}/{}', $$.Execution.Name, $$.State.Name)", "exec-1/S"),
    ],
)
def test_intrinsic_functions(expression: str, expected: Any) -> None:
    state = {"Type": "Pass", "Parameters": {"v.$": expression}}
    execution, _, _ = run(single(state), INTRINSIC_INPUT)
    assert execution.status == "SUCCEEDED", execution.cause
    assert execution.output == {"v": expected}


# --- handlers, history, events ------------------------------------------------------------


def test_task_context_and_handler_log() -> None:
    seen: list[tuple[str, str, int, str]] = []

    def handler(params: Any, ctx: TaskContext) -> Any:
        seen.append((ctx.state_name, ctx.execution_name, ctx.attempt, ctx.resource))
        ctx.log(f"attempt {ctx.attempt}")
        if ctx.attempt == 1:
            raise TaskFailed("Retry.Me", "")
        return {"ok": True}

    retry = [{"ErrorEquals": ["Retry.Me"], "IntervalSeconds": 1}]
    logged: list[tuple[str, str]] = []
    executor = Executor(
        single(task(Retry=retry)),
        {GLUE: handler},
        clock=FakeClock(START),
        on_log=lambda state, msg: logged.append((state, msg)),
    )
    execution = executor.execute({}, "run-9")
    assert seen == [("S", "run-9", 1, GLUE), ("S", "run-9", 2, GLUE)]
    assert logged == [("S", "attempt 1"), ("S", "attempt 2")]
    assert [entry["message"] for entry in execution.logs] == ["attempt 1", "attempt 2"]


def test_history_of_a_small_machine_and_on_event() -> None:
    definition = {
        "StartAt": "Plan",
        "States": {
            "Plan": {"Type": "Pass", "Result": {"go": True}, "Next": "Work"},
            "Work": task(
                Parameters={"JobName": "rc-merge"},
                Retry=[{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 2}],
                ResultPath="$.job",
                Next="Done",
            ),
            "Done": {"Type": "Succeed"},
        },
    }
    events: list[dict[str, Any]] = []
    clock = FakeClock(START)
    script = Script(clock, TaskFailed("Glue.Busy", "try later"), {"JobRunState": "SUCCEEDED"})
    executor = Executor(definition, {GLUE: script}, clock=clock, on_event=events.append)
    execution = executor.execute({"k": 1}, "run-1")
    assert [e["type"] for e in execution.history] == [
        "ExecutionStarted",
        "PassStateEntered",
        "PassStateExited",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskFailed",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
        "SucceedStateEntered",
        "SucceedStateExited",
        "ExecutionSucceeded",
    ]
    assert events == execution.history
    history = execution.history
    assert [e["id"] for e in history] == list(range(1, len(history) + 1))
    assert [e["previousEventId"] for e in history] == list(range(len(history)))
    assert history[0]["executionStartedEventDetails"] == {
        "input": '{"k":1}',
        "inputDetails": {"truncated": False},
    }
    assert history[1]["stateEnteredEventDetails"] == {
        "name": "Plan",
        "input": '{"k":1}',
        "inputDetails": {"truncated": False},
    }
    assert history[2]["stateExitedEventDetails"] == {
        "name": "Plan",
        "output": '{"go":true}',
        "outputDetails": {"truncated": False},
    }
    assert history[4]["taskScheduledEventDetails"] == {
        "resourceType": "glue",
        "resource": "startJobRun.sync",
        "region": "local",
        "parameters": '{"JobName":"rc-merge"}',
    }
    assert history[5]["taskStartedEventDetails"] == {
        "resourceType": "glue",
        "resource": "startJobRun.sync",
    }
    assert history[6]["taskFailedEventDetails"] == {
        "resourceType": "glue",
        "resource": "startJobRun.sync",
        "error": "Glue.Busy",
        "cause": "try later",
    }
    assert history[9]["taskSucceededEventDetails"]["output"] == '{"JobRunState":"SUCCEEDED"}'
    assert history[-1]["executionSucceededEventDetails"]["output"] == (
        '{"go":true,"job":{"JobRunState":"SUCCEEDED"}}'
    )
    # The clock moved by the 2 s retry wait, and nothing else.
    assert history[7]["timestamp"] == datetime(2025, 1, 1, 0, 0, 2, tzinfo=UTC)
    assert execution.start_date == START
    assert execution.stop_date == datetime(2025, 1, 1, 0, 0, 2, tzinfo=UTC)


def test_map_history_events() -> None:
    state = {
        "Type": "Map",
        "MaxConcurrency": 1,
        "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
    }
    execution, _, _ = run(single(state), ["a", "b"])
    assert [e["type"] for e in execution.history] == [
        "ExecutionStarted",
        "MapStateEntered",
        "MapStateStarted",
        "MapIterationStarted",
        "PassStateEntered",
        "PassStateExited",
        "MapIterationSucceeded",
        "MapIterationStarted",
        "PassStateEntered",
        "PassStateExited",
        "MapIterationSucceeded",
        "MapStateSucceeded",
        "MapStateExited",
        "ExecutionSucceeded",
    ]
    assert execution.history[2]["mapStateStartedEventDetails"] == {"length": 2}
    assert execution.history[7]["mapIterationStartedEventDetails"] == {"name": "S", "index": 1}


# --- Map concurrency ------------------------------------------------------------------------
# Overlap is observed, never timed: a barrier of N parties lets its handlers through only when N
# of them wait at once; every wait has a timeout so a broken executor fails instead of hanging.

WAIT = 20  # seconds a test waits for what must happen at once


def map_machine(max_concurrency: int | None, *states: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """A Map over ``$`` whose iterations run ``states`` in sequence (default: one task); each
    iteration's input is ``{"i": its index}``."""
    chain = list(states) or [("Work", task(Parameters={"i.$": "$.i"}))]
    inner: dict[str, Any] = {}
    for (name, state), following in zip(chain, [*chain[1:], None], strict=True):
        inner[name] = {**state, "Next": following[0]} if following else {**state, "End": True}
    m: dict[str, Any] = {
        "Type": "Map",
        "ItemSelector": {"i.$": "$$.Map.Item.Index"},
        "ItemProcessor": {"StartAt": chain[0][0], "States": inner},
    }
    if max_concurrency is not None:
        m["MaxConcurrency"] = max_concurrency
    return single(m)


@pytest.mark.parametrize("max_concurrency", [None, 0, 5])
def test_map_iterations_run_at_once_up_to_max_concurrency(max_concurrency: int | None) -> None:
    """Absent or 0: no limit (ASL); 5 of 5 items: all at once."""
    barrier = threading.Barrier(5)

    def glue(params: Any, ctx: TaskContext) -> Any:
        barrier.wait(timeout=WAIT)  # BrokenBarrierError, a task failure, unless 5 wait at once
        return params["i"] * 10

    machine = map_machine(max_concurrency)
    execution = Executor(machine, {GLUE: glue}, clock=FakeClock(START)).execute(list("abcde"))
    assert (execution.status, execution.output) == ("SUCCEEDED", [0, 10, 20, 30, 40])


def test_map_never_runs_more_than_max_concurrency_iterations_at_once() -> None:
    lock = threading.Lock()
    running: list[int] = []
    most: list[int] = []
    pairs = threading.Barrier(2)  # two at once must happen, or the test fails

    def glue(params: Any, ctx: TaskContext) -> Any:
        with lock:
            running.append(params["i"])
            most.append(len(running))
        pairs.wait(timeout=WAIT)
        time.sleep(0.01)  # room for a third iteration to start, were the bound not kept
        with lock:
            running.remove(params["i"])
        return params["i"]

    machine = map_machine(2)
    execution = Executor(machine, {GLUE: glue}, clock=FakeClock(START)).execute([0] * 6)
    assert (execution.status, execution.output) == ("SUCCEEDED", [0, 1, 2, 3, 4, 5])
    assert max(most) == 2


def test_map_results_keep_item_order_when_iterations_end_in_reverse() -> None:
    done = [threading.Event() for _ in range(3)]
    ended: list[int] = []

    def glue(params: Any, ctx: TaskContext) -> Any:
        i = params["i"]
        if i < 2:  # item i ends only after item i + 1 has ended
            assert done[i + 1].wait(timeout=WAIT)
        ended.append(i)
        done[i].set()
        return {"item": i}

    machine = map_machine(3)
    execution = Executor(machine, {GLUE: glue}, clock=FakeClock(START)).execute(["x", "y", "z"])
    assert ended == [2, 1, 0]
    assert execution.output == [{"item": 0}, {"item": 1}, {"item": 2}]


def test_a_failed_iteration_stops_the_others_and_then_fails_the_map() -> None:
    """Item 1 fails while item 0 runs its first task: item 0 finishes that task and stops before
    its next state; items 2 and 3 never start; the Map fails with item 1's error once item 0
    has stopped, and its Catch sees that error."""
    failed = threading.Event()
    calls: list[tuple[str, int]] = []

    def glue(params: Any, ctx: TaskContext) -> Any:
        calls.append((ctx.state_name, params["i"]))
        if params["i"] == 1:
            raise TaskFailed("Bad.Item", "item 1")
        assert failed.wait(timeout=WAIT)  # item 0 is still running when item 1 fails
        return {}

    def on_event(event: dict[str, Any]) -> None:
        if event["type"] == "MapIterationFailed":
            failed.set()

    work = ("Work", task(Parameters={"i.$": "$.i"}, ResultPath=None))
    machine = map_machine(2, work, ("Second", task(Parameters={"i.$": "$.i"})))
    machine["States"]["S"]["Catch"] = [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]
    machine["States"]["Caught"] = {"Type": "Fail", "Error": "Map.Failed", "CausePath": "$.Cause"}
    executor = Executor(machine, {GLUE: glue}, clock=FakeClock(START), on_event=on_event)
    execution = executor.execute([10, 11, 12, 13])

    assert (execution.error, execution.cause) == ("Map.Failed", "item 1")
    assert sorted(calls) == [("Work", 0), ("Work", 1)]
    iterations = [
        (e["type"], e["mapIterationStartedEventDetails"]["index"])
        if e["type"] == "MapIterationStarted"
        else (e["type"],)
        for e in execution.history
        if e["type"].startswith("Map") and e["type"] not in ("MapStateEntered", "MapStateExited")
    ]
    assert sorted(iterations[1:3]) == [("MapIterationStarted", 0), ("MapIterationStarted", 1)]
    assert [i[0] for i in iterations] == [
        "MapStateStarted",
        "MapIterationStarted",
        "MapIterationStarted",
        "MapIterationFailed",
        "MapIterationAborted",
        "MapStateFailed",
    ]


def test_each_iteration_chains_its_own_events() -> None:
    """previousEventId follows each iteration's own thread of execution, as on AWS, although
    the iterations' events interleave in the history."""
    barrier = threading.Barrier(2)

    def glue(params: Any, ctx: TaskContext) -> Any:
        barrier.wait(timeout=WAIT)
        return {}

    execution = Executor(map_machine(2), {GLUE: glue}, clock=FakeClock(START)).execute([1, 2])
    history = {e["id"]: e for e in execution.history}
    started = next(e["id"] for e in history.values() if e["type"] == "MapStateStarted")
    chains = []
    for event in history.values():
        if event["type"] == "MapIterationStarted":
            assert event["previousEventId"] == started
            chain, current = [event["type"]], event["id"]
            while True:
                following = [e for e in history.values() if e["previousEventId"] == current]
                inside = [e for e in following if e["type"] != "MapStateSucceeded"]
                if not inside or chain[-1] == "MapIterationSucceeded":
                    break
                (nxt,) = inside
                chain.append(nxt["type"])
                current = nxt["id"]
            chains.append(chain)
    one = [
        "MapIterationStarted",
        "TaskStateEntered",
        "TaskScheduled",
        "TaskStarted",
        "TaskSucceeded",
        "TaskStateExited",
        "MapIterationSucceeded",
    ]
    assert chains == [one, one]
    closing = [e for e in execution.history if e["type"] == "MapStateSucceeded"]
    assert closing[0]["previousEventId"] == closing[0]["id"] - 1


# --- definition checks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        ({"States": {"A": {"Type": "Succeed"}}}, "StartAt: missing"),
        ({"StartAt": "B", "States": {"A": {"Type": "Succeed"}}}, "StartAt: 'B' is not a state"),
        (
            single({"Type": "Bogus"}),
            "States.S.Type: 'Bogus' state not supported (supported: Pass, Task, Succeed, Fail, "
            "Map)",
        ),
        (
            single({"Type": "Choice", "Choices": [], "Default": "S"}),
            "States.S.Type: 'Choice' state not supported (supported: Pass, Task, Succeed, Fail, "
            "Map)",
        ),
        (
            single({"Type": "Parallel", "Branches": []}),
            "States.S.Type: 'Parallel' state not supported (supported: Pass, Task, Succeed, Fail, "
            "Map)",
        ),
        (
            single({"Type": "Wait", "Seconds": 1}),
            "States.S.Type: 'Wait' state not supported (supported: Pass, Task, Succeed, Fail, Map)",
        ),
        (
            single(task(TimeoutSeconds=5)),
            "States.S.TimeoutSeconds: field not supported in a Task state",
        ),
        (
            single(task(Retry=[{"ErrorEquals": ["X"], "JitterStrategy": "FULL"}])),
            "States.S.Retry[0].JitterStrategy: field not supported in a retrier",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Z"}}},
            "States.A.Next: 'Z' is not a state",
        ),
        (single({"Type": "Pass", "Next": "S"}), "needs exactly one of Next and End"),
        ({"StartAt": "A", "States": {"A": {"Type": "Pass"}}}, "needs exactly one of Next and End"),
        (
            single({"Type": "Pass", "Resultpath": "$.x"}),
            "States.S.Resultpath: field not supported in a Pass state",
        ),
        (
            {"StartAt": "A", "States": {"A": {"Type": "Succeed"}, "B": {"Type": "Succeed"}}},
            "States.B: not reachable from StartAt",
        ),
        (
            single(task(Retry=[{"ErrorEquals": ["States.ALL", "Other"]}])),
            "Retry[0].ErrorEquals: States.ALL must appear alone, in the last entry",
        ),
        (
            single(
                task(
                    Catch=[
                        {"ErrorEquals": ["States.ALL"], "Next": "S"},
                        {"ErrorEquals": ["X"], "Next": "S"},
                    ]
                )
            ),
            "Catch[0].ErrorEquals: States.ALL must appear alone, in the last entry",
        ),
        (
            single(task(Catch=[{"ErrorEquals": ["X"], "Next": "Nowhere"}])),
            "Catch[0].Next: 'Nowhere' is not a state",
        ),
        (
            single(task(Retry=[{"ErrorEquals": ["X"], "BackoffRate": 0.5}])),
            "BackoffRate: must be a number >= 1.0",
        ),
        (single(task(Retry=[{"ErrorEquals": []}])), "ErrorEquals: must be a non-empty list"),
        (
            single({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke"}),
            "States.S.Resource: 'arn:aws:states:::lambda:invoke' not supported "
            "(supported: arn:aws:states:::glue:startJobRun.sync)",
        ),
        (
            single({"Type": "Pass", "InputPath": "$..x"}),
            "States.S.InputPath: '$..x': recursive descent (..) not supported: only definite "
            "paths are",
        ),
        (single({"Type": "Pass", "OutputPath": "$.xs.length()"}), "unexpected '('"),
        (
            single({"Type": "Pass", "InputPath": "$.xs[?(@.a)]"}),
            "States.S.InputPath: '$.xs[?(@.a)]': filters ([?(...)]) not supported: only definite "
            "paths are",
        ),
        (
            single({"Type": "Pass", "OutputPath": "$.xs[*]"}),
            "States.S.OutputPath: '$.xs[*]': wildcards (*) not supported: only definite paths are",
        ),
        (
            single({"Type": "Pass", "OutputPath": "$.xs.*"}),
            "States.S.OutputPath: '$.xs.*': wildcards (*) not supported: only definite paths are",
        ),
        (
            single({"Type": "Pass", "Parameters": {"x.$": "$.xs[1:]"}}),
            "States.S.Parameters.x.$: '$.xs[1:]': slices ([start:stop]) not supported: only "
            "definite paths are",
        ),
        (
            single({"Type": "Pass", "Parameters": {"x.$": "$['a','b']"}}),
            "States.S.Parameters.x.$: \"$['a','b']\": unions ([a,b]) not supported: only "
            "definite paths are",
        ),
        (
            single({"Type": "Pass", "ResultPath": "$$.Execution"}),
            "States.S.ResultPath: '$$.Execution' must be a path into the state data ($...), not "
            "the context object",
        ),
        (
            single({"Type": "Pass", "Parameters": {"x.$": "States.Nope(1)"}}),
            "States.S.Parameters.x.$: 'States.Nope(1)': intrinsic function States.Nope not "
            "supported (supported: States.Format, States.JsonToString, States.JsonMerge)",
        ),
        (
            single({"Type": "Pass", "Parameters": {"x.$": "States.Format('{}', States.UUID())"}}),
            "States.S.Parameters.x.$: \"States.Format('{}', States.UUID())\": intrinsic "
            "function States.UUID not supported (supported: States.Format, States.JsonToString, "
            "States.JsonMerge)",
        ),
        (
            single({"Type": "Fail", "CausePath": "States.Format('{}', $.c)"}),
            "States.S.CausePath: \"States.Format('{}', $.c)\" is not a JSONPath (it must start "
            "with $)",
        ),
        (single({"Type": "Pass", "Parameters": {"x.$": "no path"}}), "neither a JSONPath nor"),
        (
            single({"Type": "Map", "ItemProcessor": {"StartAt": "X", "States": {}}}),
            "ItemProcessor.States: missing or empty",
        ),
        (
            single({"Type": "Map", "Iterator": single({"Type": "Pass"})}),
            "States.S.Iterator: field not supported in a Map state",
        ),
        (
            single({"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}),
            "Error and ErrorPath are exclusive",
        ),
    ],
)
def test_definition_problems_are_reported(definition: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match="invalid state machine definition") as raised:
        Executor(definition, {GLUE: lambda p, c: p})
    assert problem in str(raised.value)


def test_all_problems_are_listed_at_once() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "Missing"},
            "B": {"Type": "Task", "Resource": SNS, "End": True},
        },
    }
    with pytest.raises(ValueError) as raised:
        Executor(definition, {})
    message = str(raised.value)
    assert "States.A.Next: 'Missing' is not a state" in message
    assert "States.B.Resource: 'arn:aws:states:::sns:publish' not supported (supported: none)" in (
        message
    )
    assert "States.B: not reachable from StartAt" in message


def test_definition_as_json_text() -> None:
    text = json.dumps(single({"Type": "Pass", "Result": 1}))
    assert Executor(text, {}, clock=FakeClock()).execute({}, "e").output == 1
    with pytest.raises(ValueError, match="not JSON"):
        Executor("{nope", {})


# --- cross-check against moto --------------------------------------------------------------
#
# moto (5.2.x) runs ASL through its own interpreter (ported from LocalStack). The definitions
# below have no Task states; each runs on moto and locally, and status, output, error and
# cause must agree. Constructs where moto deviates from AWS's documented behaviour are left
# out (the local executor follows AWS; the tests above pin that behaviour):
# - a path with an index followed by more steps in Parameters/ResultSelector ("$.items[0].sku",
#   "$[0].v"): AWS yields the value, moto a one-element list.
# - $$.State.RetryCount in a Pass state: moto has it only in Task/Map/Parallel states.
# - escapes in intrinsic string literals (\' \{ \}): moto's parser rejects them.
# - an execution whose output is a bare JSON string: moto returns it unquoted (A, not "A").
# - States.Runtime causes quoting the input: moto prints the JSON with spaces ({"a": 1}),
#   the local executor compactly ({"a":1}); only the error name is compared for those.
# Not a deviation but worth knowing: moto runs Map iterations concurrently (as AWS does), so
# its history interleaves them and which failing item wins is a race; the local executor runs
# items in order. Cases here have at most one distinct failure.


def _pass(**fields: Any) -> dict[str, Any]:
    return {"Type": "Pass", **fields}


CROSS_CHECKS: dict[str, tuple[dict[str, Any], Any]] = {
    "pass-parameters": (
        single(
            _pass(
                InputPath="$.order",
                Parameters={
                    "id.$": "$.id",
                    "items.$": "$.items",
                    "first.$": "$.items[0]",
                    "static": {"k": [1, {"n": "x"}]},
                    "exec.$": "$$.Execution.Name",
                    "input.$": "$$.Execution.Input",
                    "state.$": "$$.State.Name",
                    "machine.$": "$$.StateMachine.Name",
                },
                ResultPath="$.r",
                OutputPath="$.r",
            )
        ),
        {"order": {"id": 7, "items": [{"sku": "a"}, {"sku": "b"}]}},
    ),
    "pass-result-path-null": (single(_pass(Result={"x": 1}, ResultPath=None)), {"keep": True}),
    "pass-result-path-nested": (
        single(_pass(Result={"x": 1}, ResultPath="$.a.b.c")),
        {"a": {"z": 0}},
    ),
    "pass-input-path-null": (single(_pass(InputPath=None, ResultPath="$.r")), {"k": 1}),
    "pass-output-path-index": (
        single(_pass(OutputPath="$.items[1]")),
        {"items": [{"a": 1}, {"b": 2}]},
    ),
    "intrinsics": (
        single(
            _pass(
                Parameters={
                    "fmt.$": "States.Format('Hello {}, you are {} ({})', $.name, $.age, $.ok)",
                    "fmtobj.$": "States.Format('{}', $.obj)",
                    "fmtnull.$": "States.Format('{} {}', $.none, $.f)",
                    "j2s.$": "States.JsonToString($.obj)",
                    "merge.$": "States.JsonMerge($.obj, $.obj2, false)",
                    "nested.$": "States.JsonToString(States.JsonMerge($.obj, $.obj2, false))",
                    "ctx.$": "States.Format('{}-{}', $$.Execution.Name, $$.State.Name)",
                }
            )
        ),
        {
            "name": "Ann",
            "age": 41,
            "ok": True,
            "none": None,
            "f": 1.5,
            "obj": {"a": 1, "b": [1, "x"]},
            "obj2": {"b": 2, "c": 3},
        },
    ),
    "map": (
        single(
            {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {
                    "value.$": "$$.Map.Item.Value",
                    "index.$": "$$.Map.Item.Index",
                    "tag.$": "$.tag",
                },
                "ItemProcessor": {
                    "StartAt": "I",
                    "States": {
                        "I": _pass(
                            Parameters={"v.$": "$.value.n", "i.$": "$.index", "t.$": "$.tag"},
                            End=True,
                        )
                    },
                },
                "ResultPath": "$.results",
            }
        ),
        {"tag": "T", "items": [{"n": 1}, {"n": 2}, {"n": 3}]},
    ),
    "map-empty": (single({"Type": "Map", "ItemProcessor": single(_pass())}), []),
    "map-catch": (
        {
            "StartAt": "M",
            "States": {
                "M": {
                    "Type": "Map",
                    "ItemsPath": "$.xs",
                    "ItemProcessor": single({"Type": "Fail", "ErrorPath": "$", "Cause": "c"}),
                    "Retry": [{"ErrorEquals": ["a"], "MaxAttempts": 0}],
                    "Catch": [{"ErrorEquals": ["a"], "ResultPath": "$.e", "Next": "Y"}],
                    "End": True,
                },
                "Y": _pass(End=True),
            },
        },
        {"xs": ["a", "a"]},  # one error name: moto runs iterations concurrently
    ),
    "succeed": (
        {
            "StartAt": "S",
            "States": {"S": {"Type": "Succeed", "InputPath": "$.a", "OutputPath": "$.b"}},
        },
        {"a": {"b": [1]}},
    ),
    "fail": (
        {
            "StartAt": "F",
            "States": {"F": {"Type": "Fail", "Error": "Custom.Error", "Cause": "because"}},
        },
        {},
    ),
    "fail-no-error": ({"StartAt": "F", "States": {"F": {"Type": "Fail"}}}, {}),
    "fail-paths": (
        {
            "StartAt": "F",
            "States": {
                "F": {
                    "Type": "Fail",
                    "ErrorPath": "$.e",
                    "CausePath": "$.c",
                }
            },
        },
        {"e": "E1", "c": "C1"},
    ),
    "runtime-input-path": (single(_pass(InputPath="$.missing")), {"a": 1}),
    "runtime-output-path": (single(_pass(OutputPath="$.missing")), {"a": 1}),
    "runtime-parameters": (single(_pass(Parameters={"x.$": "$.missing"})), {"a": 1}),
}


@pytest.fixture(scope="module")
def moto_sfn() -> Iterator[None]:
    """One moto mock for all cross-checks (starting one costs ~0.3 s); each case creates its
    own state machine in it. Tests also take ``aws_credentials`` for the fake environment."""
    from tests.support.moto_aws import moto_executing_state_machines

    with moto_executing_state_machines():
        yield


def _run_on_moto(definition: dict[str, Any], data: Any, name: str) -> dict[str, Any]:
    import boto3

    client = boto3.client("stepfunctions")
    machine = client.create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/cross-check",
    )["stateMachineArn"]
    arn = client.start_execution(stateMachineArn=machine, name=name, input=json.dumps(data))[
        "executionArn"
    ]
    deadline = time.monotonic() + 30
    while (described := client.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "moto execution did not finish"
        time.sleep(0.005)
    return dict(described)


@pytest.mark.parametrize("case", sorted(CROSS_CHECKS))
def test_same_result_as_moto(case: str, moto_sfn: None, aws_credentials: str) -> None:
    definition, data = CROSS_CHECKS[case]
    name = f"cc-{case}"
    moto = _run_on_moto(definition, data, name)
    local = Executor(definition, {}, clock=FakeClock(), state_machine_name=name).execute(data, name)
    assert local.status == moto["status"]
    assert local.output == (json.loads(moto["output"]) if "output" in moto else None)
    assert local.error == moto.get("error")
    if local.error == "States.Runtime" and case == "runtime-parameters":
        return  # the cause quotes the input: only its JSON spacing differs (see above)
    assert local.cause == moto.get("cause")
