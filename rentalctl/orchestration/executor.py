"""Run the pipeline's Amazon States Language state machine (JSONPath mode) in process, with
Step Functions' semantics: the same definition that runs on AWS runs locally, Retry/Catch
included. It implements what that definition uses (Pass, Task, Map, Succeed and Fail; definite
paths; Parameters, ItemSelector, ResultSelector, ResultPath; three intrinsic functions, see
``asl_intrinsics.py``) and nothing more: ``asl_checks.validate`` refuses the rest by name.

``Executor(definition, handlers).execute(input, name)`` returns an ``Execution`` whose
``history`` is shaped like ``GetExecutionHistory``. Task states call ``handlers[Resource]``
(keyed by the exact ARN) with the effective parameters and a ``TaskContext``; a handler raises
``TaskFailed(error, cause)`` for a named failure, anything else becomes ``States.TaskFailed``.
Definitions are checked up front: a problem, including a Task whose resource has no handler,
raises ``ValueError`` listing every problem, before anything runs.

Choices made where AWS's behaviour cannot be copied in process (see the module tests):
- Map iterations run on threads, at most ``MaxConcurrency`` at once (0 or absent: all of them,
  as the ASL says), started in item order; results keep item order. When an iteration fails,
  iterations not yet started never start and running ones stop at their next state boundary
  (AWS stops them at once; a handler here cannot be interrupted, so a running task finishes and
  its iteration is aborted before its next state or retry); once they have stopped, the Map
  fails with the first failure. Only INLINE Map is supported.
- Retry back-off goes through the injectable clock, so tests never sleep.
- ``execute(..., stop=event)``: setting the event stops the execution as StopExecution does,
  at the next state boundary or retry (a running handler finishes or fails first; the caller
  interrupts its work if it can): no more states run, Catch and Retry included, and the
  execution ends ABORTED. A Succeed state still runs: the work before it is done.
- Path, template and intrinsic failures are ``States.Runtime``, which no Retry or Catch sees
  (AWS: "A retry or catch on States.ALL won't catch States.Runtime errors").
- Events' ``previousEventId`` is the event before it in its own thread of execution, as on
  AWS: an iteration's first event names MapIterationStarted, which names MapStateStarted; the
  Map's closing events name the last event of the history. Events are numbered, recorded and
  passed to ``on_event`` one at a time, whichever thread emits them.
  Event types and detail fields are AWS's (TaskScheduled/Started/Succeeded/Failed,
  {Pass,Task,Map,Succeed}StateEntered/Exited, FailStateEntered, MapStateStarted/Succeeded/
  Failed, MapIteration*, Execution*); a caught failure exits its state (StateExited carries the
  catcher's output), as on AWS.
- A Task resource without a handler is a definition error (ValueError), not a run-time
  States.TaskFailed: a missing handler is a wiring bug no Retry should paper over.
- ``States.TaskFailed`` in ErrorEquals matches every error but ``States.Timeout``, as AWS
  documents; ``States.ALL`` matches every error (but never ``States.Runtime``).
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from rentalctl.orchestration import jsonpath as jp
from rentalctl.orchestration.asl_checks import validate
from rentalctl.orchestration.asl_templates import apply_template

__all__ = [
    "Clock",
    "Execution",
    "Executor",
    "FakeClock",
    "RealClock",
    "TaskContext",
    "TaskFailed",
    "validate",
]

log = logging.getLogger(__name__)

RUNTIME = "States.Runtime"
TIMEOUT = "States.Timeout"


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class FakeClock:
    """A clock that never sleeps: ``sleep`` records the delay and moves time forward."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2025, 1, 1, tzinfo=UTC)
        self.sleeps: list[float] = []
        self._lock = threading.Lock()  # Map iterations share the clock

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.current += timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        """Time passing without a sleep (a handler pretending to work long)."""
        with self._lock:
            self.current += timedelta(seconds=seconds)


class TaskFailed(Exception):
    """Raised by a task handler: the task fails with this error name and cause."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


@dataclass(frozen=True)
class TaskContext:
    state_name: str
    execution_name: str
    attempt: int  # 1 for the first try, 2 for the first retry, ...
    resource: str
    log: Callable[[str], None]


Handler = Callable[[Any, TaskContext], Any]


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


class _Failure(Exception):
    """A state failed with a Step Functions error name (and a cause)."""

    def __init__(self, error: str | None, cause: str | None) -> None:
        super().__init__(error, cause)
        self.error = error
        self.cause = cause


class _Stopped(Exception):
    """An iteration stopped because another iteration of its Map (or of an enclosing one)
    failed. Not a failure: no Retry or Catch sees it."""


@dataclass
class _Strand:
    """One thread of execution: the top level, or one Map iteration. Its next event names
    ``last_event`` as its previous one; ``stops`` are the stop signals of the Maps it runs in."""

    last_event: int = 0
    stops: tuple[threading.Event, ...] = ()

    def check(self) -> None:
        if any(stop.is_set() for stop in self.stops):
            raise _Stopped()


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


def _iso(moment: datetime) -> str:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _resource_parts(arn: str, region: str) -> tuple[str, str, str]:
    """(resourceType, resource, region) as TaskScheduled shows them."""
    parts = arn.split(":")
    if len(parts) >= 7 and parts[2] == "states":  # arn:aws:states:::glue:startJobRun.sync
        return parts[5], ":".join(parts[6:]), parts[3] or region
    if len(parts) >= 4:
        return parts[2], arn, parts[3] or region
    return "unknown", arn, region


def _matches(error_equals: list[str], error: str | None) -> bool:
    for name in error_equals:
        if name == "States.ALL" or name == error:
            return True
        # AWS: "States.TaskFailed acts as a wildcard that matches any known error name except
        # for States.Timeout".
        if name == "States.TaskFailed" and error != TIMEOUT:
            return True
    return False


class _Run:
    """One execution: the interpreter loop, the history and the context object."""

    def __init__(
        self, executor: Executor, execution: Execution, stop: threading.Event | None = None
    ) -> None:
        self.x = executor
        self.stop = stop
        self.clock = executor.clock
        self.execution = execution
        self.started = self.clock.now()
        # One lock over the history, the logs and the callbacks: events get their ids in the
        # order they are recorded and reach on_event one at a time.
        self.lock = threading.RLock()
        self.local = threading.local()  # .strand: the strand the current thread runs

    @property
    def strand(self) -> _Strand:
        strand: _Strand = self.local.strand
        return strand

    def emit(self, type_: str, details: dict[str, Any] | None, key: str = "") -> int:
        event: dict[str, Any] = {"timestamp": self.clock.now(), "type": type_}
        if details is not None:  # a copy each: consumers may keep or change events
            event[key or type_[0].lower() + type_[1:] + "EventDetails"] = copy.deepcopy(details)
        with self.lock:
            history = self.execution.history
            event = {"id": len(history) + 1, "previousEventId": self.strand.last_event, **event}
            history.append(event)
            self.strand.last_event = event["id"]
            if self.x.on_event is not None:
                self.x.on_event(event)
        return int(event["id"])

    def run(self) -> Execution:
        ex = self.execution
        ex.start_date = self.started
        # The stop signal is the top strand's: every Map iteration inherits it.
        self.local.strand = _Strand(stops=(self.stop,) if self.stop else ())
        self.emit("ExecutionStarted", {"input": jp.dumps(ex.input), "inputDetails": _NT})
        try:
            output = self.run_machine(self.x.definition, copy.deepcopy(ex.input))
        except _Stopped:
            ex.status, ex.error, ex.cause = "ABORTED", "States.Aborted", "the execution was stopped"
            self.emit("ExecutionAborted", None)
        except _Failure as failure:
            ex.status, ex.error, ex.cause = "FAILED", failure.error, failure.cause
            details = {"error": failure.error, "cause": failure.cause}
            self.emit("ExecutionFailed", {k: v for k, v in details.items() if v is not None})
        else:
            ex.status, ex.output = "SUCCEEDED", output
            self.emit("ExecutionSucceeded", {"output": jp.dumps(output), "outputDetails": _NT})
        ex.stop_date = self.clock.now()
        return ex

    def run_machine(self, machine: Mapping[str, Any], data: Any) -> Any:
        name: str | None = machine["StartAt"]
        while name is not None:
            if machine["States"][name]["Type"] != "Succeed":  # a stop after the work is too late
                self.strand.check()
            data, name = self.run_state(name, machine["States"][name], data)
        return data

    def run_state(self, name: str, state: Mapping[str, Any], raw: Any) -> tuple[Any, str | None]:
        typ = state["Type"]
        entered = {"name": name, "input": jp.dumps(raw), "inputDetails": _NT}
        entered_id = self.emit(f"{typ}StateEntered", entered, "stateEnteredEventDetails")
        sc = _StateRun(name, entered_id, self.clock.now())
        try:
            if typ in ("Task", "Map"):
                output, next_name = self.execution_state(sc, state, raw)
            else:
                output, next_name = getattr(self, f"state_{typ.lower()}")(sc, state, raw)
        except (jp.EvaluationError, jp.ResultPathMismatch) as exc:
            raise self.failure(sc, exc) from None
        exited = {"name": name, "output": jp.dumps(output), "outputDetails": _NT}
        self.emit(f"{typ}StateExited", exited, "stateExitedEventDetails")
        return output, next_name

    def failure(self, sc: _StateRun, exc: Exception) -> _Failure:
        if isinstance(exc, _Failure):
            return exc
        if isinstance(exc, jp.ResultPathMismatch):
            return _Failure("States.ResultPathMatchFailure", str(exc))
        return _Failure(
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
                "StartTime": _iso(self.started),
                "RedriveCount": 0,
            },
            "State": {
                "EnteredTime": _iso(sc.entered),
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
            except (_Failure, jp.EvaluationError, jp.ResultPathMismatch) as exc:
                failure = self.failure(sc, exc)
            if failure.error == RUNTIME:
                raise failure
            match = next(
                (i for i, r in enumerate(retriers) if _matches(r["ErrorEquals"], failure.error)),
                None,
            )
            if match is not None and attempts[match] < retriers[match].get("MaxAttempts", 3):
                attempts[match] += 1
                sc.retry_count += 1
                delay = self.backoff(retriers[match], attempts[match])
                self.strand.check()
                if delay > 0:
                    self.sleep(delay)
                    self.strand.check()
                continue
            for catcher in state.get("Catch", []):
                if _matches(catcher["ErrorEquals"], failure.error):
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

    def backoff(self, retrier: Mapping[str, Any], attempt: int) -> float:
        delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** (attempt - 1)
        if "MaxDelaySeconds" in retrier:
            delay = min(delay, retrier["MaxDelaySeconds"])
        return float(delay)

    def work_task(self, sc: _StateRun, state: Mapping[str, Any], effective: Any) -> Any:
        if "Parameters" in state:
            params = apply_template(state["Parameters"], effective, self.context(sc))
        else:
            params = copy.deepcopy(effective)
        resource = state["Resource"]
        rtype, rname, region = _resource_parts(resource, self.x.region)
        base = {"resourceType": rtype, "resource": rname}
        scheduled = {**base, "region": region, "parameters": jp.dumps(params)}
        self.emit("TaskScheduled", scheduled)
        self.emit("TaskStarted", base)

        def task_log(message: str) -> None:
            with self.lock:
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
            self.emit("TaskFailed", {**base, "error": error, "cause": cause})
            raise _Failure(error, cause)
        self.emit("TaskSucceeded", {**base, "output": jp.dumps(result), "outputDetails": _NT})
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
        started = self.emit("MapStateStarted", {"length": len(items)})
        outer = self.strand
        stop = threading.Event()
        failures: list[BaseException] = []  # in the order they happened; the first one counts

        def iterate(index: int, item: Any) -> Any:
            self.local.strand = _Strand(started, (*outer.stops, stop))
            self.strand.check()  # a sibling failed before this one started: it never starts
            detail = {"name": sc.name, "index": index}
            begun = False
            try:
                if selector is None:
                    item_input = copy.deepcopy(item)
                else:
                    context = self.context(sc, (index, item))
                    item_input = apply_template(selector, effective, context)
                self.emit("MapIterationStarted", detail)
                begun = True
                result = self.run_machine(processor, item_input)
            except _Stopped:
                self.emit("MapIterationAborted", detail)
                raise
            except BaseException as exc:
                with self.lock:
                    failures.append(exc)
                    stop.set()
                if begun and isinstance(exc, _Failure):
                    self.emit("MapIterationFailed", detail)
                raise
            self.emit("MapIterationSucceeded", detail)
            return result

        limit = min(state.get("MaxConcurrency") or len(items), len(items))
        with ThreadPoolExecutor(max(limit, 1), thread_name_prefix=f"map-{sc.name}") as pool:
            futures = [pool.submit(iterate, index, item) for index, item in enumerate(items)]
            try:
                wait(futures)
            except BaseException:  # interrupted: the iterations stop, the pool waits for them
                stop.set()
                raise
        with self.lock:  # the Map's own events follow its iterations'
            outer.last_event = len(self.execution.history)
        if failures:
            if isinstance(failures[0], _Failure):
                self.emit("MapStateFailed", None)
            raise failures[0]
        outer.check()  # an enclosing Map is stopping: so is this one
        self.emit("MapStateSucceeded", None)
        return [future.result() for future in futures]

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
        raise _Failure(found["Error"], found["Cause"])


_NT = {"truncated": False}
