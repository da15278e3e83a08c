"""Run the pipeline's Amazon States Language state machine (JSONPath mode) in process, with
Step Functions' semantics: the same definition that runs on AWS runs locally, Retry/Catch
included. It implements what that definition uses (Pass, Task, Map, Succeed and Fail; definite
paths; Parameters, ItemSelector, ResultSelector, ResultPath; three intrinsic functions, see
``asl_intrinsics.py``) and nothing more: ``asl_checks.validate`` refuses the rest by name.

``Executor(definition, handlers).execute(input, name)`` returns an ``Execution`` whose
``history`` is shaped like ``GetExecutionHistory`` (``asl_history.py``). Task states call
``handlers[Resource]`` (keyed by the exact ARN) with the effective parameters and a
``TaskContext``; a handler raises ``TaskFailed(error, cause)`` for a named failure, anything
else becomes ``States.TaskFailed`` (``asl_task.py``). Definitions are checked up front: a
problem, including a Task whose resource has no handler, raises ``ValueError`` listing every
problem, before anything runs.

Choices made where AWS's behaviour cannot be copied in process (see the module tests; Map
iterations in ``asl_map.py``, errors Retry and Catch see in ``asl_failures.py``):
- ``execute(..., stop=event)``: setting the event stops the execution as StopExecution does,
  at the next state boundary or retry (a running handler finishes or fails first; the caller
  interrupts its work if it can): no more states run, Catch and Retry included, and the
  execution ends ABORTED. A Succeed state still runs: the work before it is done.
- A Task resource without a handler is a definition error (ValueError), not a run-time
  States.TaskFailed: a missing handler is a wiring bug no Retry should paper over.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rentalctl.orchestration import jsonpath as jp
from rentalctl.orchestration.asl_checks import validate
from rentalctl.orchestration.asl_failures import RUNTIME, Failure, backoff, matches
from rentalctl.orchestration.asl_history import (
    NOT_TRUNCATED,
    History,
    Stopped,
    Strand,
    iso,
    resource_parts,
)
from rentalctl.orchestration.asl_map import run_map
from rentalctl.orchestration.asl_task import Handler, TaskContext, TaskFailed
from rentalctl.orchestration.asl_templates import apply_template
from rentalctl.orchestration.clock import Clock, RealClock

log = logging.getLogger(__name__)


@dataclass
class Execution:
    name: str
    execution_arn: str
    input: Any
    status: str = "RUNNING"  # then SUCCEEDED, FAILED or ABORTED
    output: Any = None
    error: str | None = None
    cause: str | None = None
    start_date: datetime | None = None
    stop_date: datetime | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)  # what handlers logged


@dataclass
class _StateRun:
    name: str
    entered_id: int
    entered: datetime
    retry_count: int = 0


class Executor:
    def __init__(
        self,
        definition: dict[str, Any] | str,
        handlers: Mapping[str, Handler],
        clock: Clock | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        *,
        state_machine_name: str = "local",
        region: str = "local",
        account: str = "000000000000",
        on_log: Callable[[str, str], None] | None = None,
    ) -> None:
        if isinstance(definition, str):
            try:
                definition = json.loads(definition)
            except json.JSONDecodeError as exc:
                raise ValueError(f"invalid state machine definition: not JSON: {exc}") from None
        problems = validate(definition, set(handlers))
        if problems:
            listing = "\n".join(f"  - {p}" for p in problems)
            raise ValueError(f"invalid state machine definition:\n{listing}")
        assert isinstance(definition, dict)
        self.definition: dict[str, Any] = definition
        self.handlers = dict(handlers)
        self.clock: Clock = clock or RealClock()
        self.on_event = on_event
        self.on_log = on_log
        self.region = region
        self.state_machine_name = state_machine_name
        self.state_machine_arn = (
            f"arn:aws:states:{region}:{account}:stateMachine:{state_machine_name}"
        )

    def execute(
        self, input: Any = None, name: str | None = None, stop: threading.Event | None = None
    ) -> Execution:
        """Run to the end, or until ``stop`` is set. ``input`` is the parsed JSON input
        (default ``{}``)."""
        name = name or str(uuid.uuid4())
        data = json.loads(jp.dumps({} if input is None else input))
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{name}"
        return _Run(self, Execution(name=name, execution_arn=arn, input=data), stop).run()


class _Run:
    """One execution: the interpreter loop, its states and the context object."""

    def __init__(
        self, executor: Executor, execution: Execution, stop: threading.Event | None = None
    ) -> None:
        self.x = executor
        self.stop = stop
        self.clock = executor.clock
        self.execution = execution
        self.started = self.clock.now()
        self.history = History(execution.history, self.clock, executor.on_event)

    def run(self) -> Execution:
        ex = self.execution
        ex.start_date = self.started
        # The stop signal is the top strand's: every Map iteration inherits it.
        self.history.enter(Strand(stops=(self.stop,) if self.stop else ()))
        self.history.emit(
            "ExecutionStarted", {"input": jp.dumps(ex.input), "inputDetails": NOT_TRUNCATED}
        )
        try:
            output = self.run_machine(self.x.definition, copy.deepcopy(ex.input))
        except Stopped:
            ex.status, ex.error, ex.cause = "ABORTED", "States.Aborted", "the execution was stopped"
            self.history.emit("ExecutionAborted", None)
        except Failure as failure:
            ex.status, ex.error, ex.cause = "FAILED", failure.error, failure.cause
            details = {"error": failure.error, "cause": failure.cause}
            self.history.emit(
                "ExecutionFailed", {k: v for k, v in details.items() if v is not None}
            )
        else:
            ex.status, ex.output = "SUCCEEDED", output
            self.history.emit(
                "ExecutionSucceeded", {"output": jp.dumps(output), "outputDetails": NOT_TRUNCATED}
            )
        ex.stop_date = self.clock.now()
        return ex

    def run_machine(self, machine: Mapping[str, Any], data: Any) -> Any:
        name: str | None = machine["StartAt"]
        while name is not None:
            if machine["States"][name]["Type"] != "Succeed":  # a stop after the work is too late
                self.history.strand.check()
            data, name = self.run_state(name, machine["States"][name], data)
        return data

    def run_state(self, name: str, state: Mapping[str, Any], raw: Any) -> tuple[Any, str | None]:
        typ = state["Type"]
        entered = {"name": name, "input": jp.dumps(raw), "inputDetails": NOT_TRUNCATED}
        entered_id = self.history.emit(f"{typ}StateEntered", entered, "stateEnteredEventDetails")
        sc = _StateRun(name, entered_id, self.clock.now())
        try:
            if typ in ("Task", "Map"):
                output, next_name = self.execution_state(sc, state, raw)
            else:
                output, next_name = getattr(self, f"state_{typ.lower()}")(sc, state, raw)
        except (jp.EvaluationError, jp.ResultPathMismatch) as exc:
            raise self.failure(sc, exc) from None
        exited = {"name": name, "output": jp.dumps(output), "outputDetails": NOT_TRUNCATED}
        self.history.emit(f"{typ}StateExited", exited, "stateExitedEventDetails")
        return output, next_name

    def failure(self, sc: _StateRun, exc: Exception) -> Failure:
        if isinstance(exc, Failure):
            return exc
        if isinstance(exc, jp.ResultPathMismatch):
            return Failure("States.ResultPathMatchFailure", str(exc))
        return Failure(
            RUNTIME,
            f"An error occurred while executing the state '{sc.name}' "
            f"(entered at the event id #{sc.entered_id}). {exc}",
        )

    def context(self, sc: _StateRun, item: tuple[int, Any] | None = None) -> dict[str, Any]:
        ex = self.execution
        ctx: dict[str, Any] = {
            "Execution": {
                "Id": ex.execution_arn,
                "Input": ex.input,
                "Name": ex.name,
                "StartTime": iso(self.started),
                "RedriveCount": 0,
            },
            "State": {
                "EnteredTime": iso(sc.entered),
                "Name": sc.name,
                "RetryCount": sc.retry_count,
            },
            "StateMachine": {"Id": self.x.state_machine_arn, "Name": self.x.state_machine_name},
        }
        if item is not None:
            ctx["Map"] = {"Item": {"Index": item[0], "Value": item[1]}}
        return ctx

    # --- input and output processing ---

    def path(self, sc: _StateRun, state: Mapping[str, Any], name: str, data: Any) -> Any:
        """InputPath/OutputPath: absent means `$`, null means `{}`."""
        if name in state and state[name] is None:
            return {}
        return jp.resolve(state.get(name, "$"), data, self.context(sc))

    def output(self, sc: _StateRun, state: Mapping[str, Any], raw: Any, result: Any) -> Any:
        """ResultPath (into the state's raw input), then OutputPath."""
        if "ResultPath" in state and state["ResultPath"] is None:
            combined = raw
        else:
            combined = jp.set_path(state.get("ResultPath", "$"), raw, result)
        return self.path(sc, state, "OutputPath", combined)

    # --- states with Retry and Catch ---

    def execution_state(
        self, sc: _StateRun, state: Mapping[str, Any], raw: Any
    ) -> tuple[Any, str | None]:
        retriers = state.get("Retry", [])
        attempts = [0] * len(retriers)  # each retrier counts its own attempts
        while True:
            try:
                effective = self.path(sc, state, "InputPath", raw)
                result = getattr(self, f"work_{state['Type'].lower()}")(sc, state, effective)
                if "ResultSelector" in state:
                    result = apply_template(state["ResultSelector"], result, self.context(sc))
                return self.output(sc, state, raw, result), state.get("Next")
            except (Failure, jp.EvaluationError, jp.ResultPathMismatch) as exc:
                failure = self.failure(sc, exc)
            if failure.error == RUNTIME:
                raise failure
            match = next(
                (i for i, r in enumerate(retriers) if matches(r["ErrorEquals"], failure.error)),
                None,
            )
            if match is not None and attempts[match] < retriers[match].get("MaxAttempts", 3):
                attempts[match] += 1
                sc.retry_count += 1
                delay = backoff(retriers[match], attempts[match])
                self.history.strand.check()
                if delay > 0:
                    self.sleep(delay)
                    self.history.strand.check()
                continue
            for catcher in state.get("Catch", []):
                if matches(catcher["ErrorEquals"], failure.error):
                    error_output = {"Error": failure.error or "", "Cause": failure.cause or ""}
                    try:
                        caught = self.output(sc, {"ResultPath": "$", **catcher}, raw, error_output)
                    except jp.ResultPathMismatch as exc:
                        raise self.failure(sc, jp.EvaluationError(str(exc))) from None
                    return caught, catcher["Next"]
            raise failure

    def sleep(self, seconds: float) -> None:
        """The clock's sleep; on the real clock cut short when the execution is stopped."""
        if self.stop is not None and isinstance(self.clock, RealClock):
            self.stop.wait(seconds)
        else:
            self.clock.sleep(seconds)

    def work_task(self, sc: _StateRun, state: Mapping[str, Any], effective: Any) -> Any:
        if "Parameters" in state:
            params = apply_template(state["Parameters"], effective, self.context(sc))
        else:
            params = copy.deepcopy(effective)
        resource = state["Resource"]
        rtype, rname, region = resource_parts(resource, self.x.region)
        base = {"resourceType": rtype, "resource": rname}
        scheduled = {**base, "region": region, "parameters": jp.dumps(params)}
        self.history.emit("TaskScheduled", scheduled)
        self.history.emit("TaskStarted", base)

        def task_log(message: str) -> None:
            with self.history.lock:
                self.execution.logs.append(
                    {"timestamp": self.clock.now(), "state": sc.name, "message": message}
                )
                if self.x.on_log is not None:
                    self.x.on_log(sc.name, message)
                else:
                    log.info("%s: %s", sc.name, message)

        ctx = TaskContext(sc.name, self.execution.name, sc.retry_count + 1, resource, task_log)
        error: str | None = None
        try:
            result = json.loads(jp.dumps(self.x.handlers[resource](params, ctx)))
        except TaskFailed as exc:
            error, cause = exc.error, exc.cause
        except Exception as exc:  # a handler's bug or unexpected error is a task failure
            error, cause = "States.TaskFailed", str(exc) or type(exc).__name__
        if error is not None:
            self.history.emit("TaskFailed", {**base, "error": error, "cause": cause})
            raise Failure(error, cause)
        self.history.emit(
            "TaskSucceeded", {**base, "output": jp.dumps(result), "outputDetails": NOT_TRUNCATED}
        )
        return result

    def work_map(self, sc: _StateRun, state: Mapping[str, Any], effective: Any) -> list[Any]:
        items_path = state.get("ItemsPath", "$")
        items = jp.resolve(items_path, effective, self.context(sc))
        if not isinstance(items, list):
            raise jp.EvaluationError(
                f"Invalid path '{items_path}': the Map state's items must be a JSON array, "
                f"not '{jp.dumps(items)}'"
            )
        processor = state["ItemProcessor"]
        selector = state.get("ItemSelector")

        def item_input(index: int, item: Any) -> Any:
            if selector is None:
                return copy.deepcopy(item)
            return apply_template(selector, effective, self.context(sc, (index, item)))

        def run_iteration(data: Any) -> Any:
            return self.run_machine(processor, data)

        concurrency = state.get("MaxConcurrency")
        return run_map(self.history, sc.name, items, concurrency, item_input, run_iteration)

    # --- the other states ---

    def state_pass(
        self, sc: _StateRun, state: Mapping[str, Any], raw: Any
    ) -> tuple[Any, str | None]:
        effective = self.path(sc, state, "InputPath", raw)
        if "Parameters" in state:
            effective = apply_template(state["Parameters"], effective, self.context(sc))
        result = copy.deepcopy(state["Result"]) if "Result" in state else effective
        return self.output(sc, state, raw, result), state.get("Next")

    def state_succeed(
        self, sc: _StateRun, state: Mapping[str, Any], raw: Any
    ) -> tuple[Any, str | None]:
        effective = self.path(sc, state, "InputPath", raw)
        return self.path(sc, state, "OutputPath", effective), None

    def state_fail(
        self, sc: _StateRun, state: Mapping[str, Any], raw: Any
    ) -> tuple[Any, str | None]:
        found: dict[str, str | None] = {}
        for name in ("Error", "Cause"):
            value = state.get(name)
            if f"{name}Path" in state:
                value = jp.resolve(state[f"{name}Path"], raw, self.context(sc))
                if not isinstance(value, str):
                    raise jp.EvaluationError(f"{name}Path gave {jp.dumps(value)}, not a string")
            found[name] = value
        raise Failure(found["Error"], found["Cause"])
