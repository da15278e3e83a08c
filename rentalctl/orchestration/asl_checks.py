"""Static checks of a state machine definition before the executor runs it or it is deployed:
every problem AWS would refuse, and every state, field, path or intrinsic function beyond what
the pipeline's definition uses (the subset the local executor implements), is listed at once,
so one ValueError tells the whole story."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from rentalctl.orchestration import jsonpath as jp
from rentalctl.orchestration.asl_templates import template_problems

_IO = {"Type", "Comment", "InputPath", "OutputPath"}
_FLOW = {"Next", "End"}
_RESULT = {"ResultPath", "ResultSelector", "Retry", "Catch"}
# The states and fields the pipeline's definition uses: anything else is refused by name, so a
# template change that needs more fails its checks instead of running with other semantics.
_FIELDS: dict[str, set[str]] = {
    "Pass": _IO | _FLOW | {"Parameters", "ResultPath", "Result"},  # Result: tests' fixtures
    "Task": _IO | _FLOW | _RESULT | {"Parameters", "Resource"},
    "Succeed": _IO,
    "Fail": {"Type", "Comment", "Error", "ErrorPath", "Cause", "CausePath"},
    "Map": _IO | _FLOW | _RESULT | {"ItemsPath", "ItemSelector", "ItemProcessor", "MaxConcurrency"},
}
_RETRIER = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds"}
_PATH_FIELDS = ("InputPath", "OutputPath", "ItemsPath", "ErrorPath", "CausePath")


def _positive_int(value: Any, minimum: int = 1) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def validate(definition: Any, handlers: Collection[str]) -> list[str]:
    """Every problem that keeps ``definition`` from running here (empty when it can run);
    ``handlers`` are the Task resources that can run."""
    problems: list[str] = []
    if not isinstance(definition, dict):
        return ["the definition must be a JSON object"]
    if definition.get("QueryLanguage", "JSONPath") != "JSONPath":
        problems.append("QueryLanguage: only JSONPath is supported")
    _check_machine(definition, "", handlers, problems)
    return problems


def _check_machine(machine: Any, where: str, handlers: Collection[str], out: list[str]) -> None:
    if not isinstance(machine, dict):
        out.append(f"{where or 'definition'}: must be an object with StartAt and States")
        return
    states = machine.get("States")
    if not isinstance(states, dict) or not states:
        out.append(f"{where}States: missing or empty")
        states = {}
    start = machine.get("StartAt")
    if not isinstance(start, str):
        out.append(f"{where}StartAt: missing")
    elif states and start not in states:
        out.append(f"{where}StartAt: {start!r} is not a state")
    for name, state in states.items():
        _check_state(state, states, f"{where}States.{name}", handlers, out)
    # AWS rejects states that no path from StartAt reaches.
    seen, todo = set(), [start] if start in states else []
    while todo:
        name = todo.pop()
        if name in seen or name not in states or not isinstance(states[name], dict):
            continue
        seen.add(name)
        state = states[name]
        todo.append(state.get("Next"))
        todo += [c.get("Next") for c in state.get("Catch") or [] if isinstance(c, dict)]
    for name in states:
        if start in states and name not in seen:
            out.append(f"{where}States.{name}: not reachable from StartAt")


def _check_state(
    state: Any,
    states: dict[str, Any],
    where: str,
    handlers: Collection[str],
    out: list[str],
) -> None:
    def need_state(target: Any, field_where: str) -> None:
        if not isinstance(target, str) or target not in states:
            out.append(f"{field_where}: {target!r} is not a state")

    if not isinstance(state, dict):
        out.append(f"{where}: must be an object")
        return
    typ = state.get("Type")
    if typ not in _FIELDS:
        out.append(f"{where}.Type: {typ!r} state not supported (supported: {', '.join(_FIELDS)})")
        return
    for key in sorted(set(state) - _FIELDS[typ]):
        out.append(f"{where}.{key}: field not supported in a {typ} state")
    if _FLOW & _FIELDS[typ]:
        if ("Next" in state) == (state.get("End") is True):
            out.append(f"{where}: needs exactly one of Next and End: true")
        elif "Next" in state:
            need_state(state["Next"], f"{where}.Next")
    for key in _PATH_FIELDS:
        if state.get(key) is not None:
            _check(jp.parse_path, state[key], f"{where}.{key}", out)
    if state.get("ResultPath") is not None:
        problem = jp.reference_path_problem(state["ResultPath"])
        if problem:
            out.append(f"{where}.ResultPath: {problem}")
    for key in ("Parameters", "ItemSelector", "ResultSelector"):
        if key in state:
            out += template_problems(state[key], f"{where}.{key}")
    _check_retry_catch(state, where, need_state, out)
    if typ == "Task":
        resource = state.get("Resource")
        if not isinstance(resource, str):
            out.append(f"{where}.Resource: missing")
        elif resource not in handlers:
            out.append(
                f"{where}.Resource: {resource!r} not supported "
                f"(supported: {', '.join(sorted(handlers)) or 'none'})"
            )
    elif typ == "Fail":
        for key in ("Error", "Cause"):
            if key in state and f"{key}Path" in state:
                out.append(f"{where}: {key} and {key}Path are exclusive")
            if key in state and not isinstance(state[key], str):
                out.append(f"{where}.{key}: must be a string")
    elif typ == "Map":
        if "MaxConcurrency" in state and not _positive_int(state["MaxConcurrency"], 0):
            out.append(f"{where}.MaxConcurrency: must be a non-negative integer")
        processor = state.get("ItemProcessor")
        if isinstance(processor, dict):
            for key in sorted(set(processor) - {"StartAt", "States", "ProcessorConfig"}):
                out.append(f"{where}.ItemProcessor.{key}: field not supported")
            mode = (processor.get("ProcessorConfig") or {}).get("Mode", "INLINE")
            if mode != "INLINE":
                out.append(f"{where}.ItemProcessor.ProcessorConfig.Mode: only INLINE is supported")
        _check_machine(processor, f"{where}.ItemProcessor.", handlers, out)


def _check(parse: Callable[[Any], Any], value: Any, where: str, out: list[str]) -> None:
    try:
        parse(value)
    except ValueError as exc:
        out.append(f"{where}: {exc}")


def _check_error_equals(entries: Any, where: str, out: list[str]) -> None:
    if not isinstance(entries, list):
        out.append(f"{where}: must be a list")
        return
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            out.append(f"{where}[{i}]: must be an object")
            continue
        names = entry.get("ErrorEquals")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            out.append(f"{where}[{i}].ErrorEquals: must be a non-empty list of error names")
        elif "States.ALL" in names and (len(names) > 1 or i != len(entries) - 1):
            out.append(f"{where}[{i}].ErrorEquals: States.ALL must appear alone, in the last entry")


def _check_retry_catch(
    state: dict[str, Any], where: str, need_state: Callable[[Any, str], None], out: list[str]
) -> None:
    if "Retry" in state:
        _check_error_equals(state["Retry"], f"{where}.Retry", out)
        for i, retrier in enumerate(state["Retry"] if isinstance(state["Retry"], list) else []):
            if not isinstance(retrier, dict):
                continue
            here = f"{where}.Retry[{i}]"
            for key, minimum in (
                ("IntervalSeconds", 1),
                ("MaxAttempts", 0),
                ("MaxDelaySeconds", 1),
            ):
                if key in retrier and not _positive_int(retrier[key], minimum):
                    out.append(f"{here}.{key}: must be an integer >= {minimum}")
            rate = retrier.get("BackoffRate", 2.0)
            if not isinstance(rate, int | float) or isinstance(rate, bool) or rate < 1.0:
                out.append(f"{here}.BackoffRate: must be a number >= 1.0")
            for key in sorted(set(retrier) - _RETRIER - {"Comment"}):
                out.append(f"{here}.{key}: field not supported in a retrier")
    if "Catch" in state:
        _check_error_equals(state["Catch"], f"{where}.Catch", out)
        for i, catcher in enumerate(state["Catch"] if isinstance(state["Catch"], list) else []):
            if not isinstance(catcher, dict):
                continue
            need_state(catcher.get("Next"), f"{where}.Catch[{i}].Next")
            for key in sorted(set(catcher) - {"ErrorEquals", "Next", "ResultPath", "Comment"}):
                out.append(f"{where}.Catch[{i}].{key}: field not supported in a catcher")
            if catcher.get("ResultPath") is not None:
                problem = jp.reference_path_problem(catcher["ResultPath"])
                if problem:
                    out.append(f"{where}.Catch[{i}].ResultPath: {problem}")


# Job arguments AWS Glue keeps for itself ("Using job parameters in AWS Glue jobs", AWS Glue
# developer guide): those documented as "Internal to AWS Glue. Do not set." (--conf, --debug,
# --mode, --JOB_NAME), those Glue sets on every run (--JOB_ID, --JOB_RUN_ID), and the special
# parameters that configure the job's environment. A task's argument of one of these names
# would change or break the job run instead of reaching rentalctl.
GLUE_RESERVED_ARGUMENTS = frozenset(
    {
        *("--conf", "--debug", "--mode", "--JOB_NAME", "--JOB_ID", "--JOB_RUN_ID"),
        *("--additional-python-modules", "--python-modules-installer-option"),
        *("--auto-scale-within-microbatch", "--class", "--datalake-formats"),
        *("--continuous-log-conversionPattern", "--continuous-log-logGroup"),
        *("--continuous-log-logStreamPrefix", "--customer-driver-env-vars"),
        *("--customer-executor-env-vars", "--disable-proxy-v2", "--enable-auto-scaling"),
        *("--enable-continuous-cloudwatch-log", "--enable-continuous-log-filter"),
        *("--enable-glue-datacatalog", "--enable-job-insights", "--enable-metrics"),
        *("--enable-lakeformation-fine-grained-access", "--enable-observability-metrics"),
        *("--enable-rename-algorithm-v2", "--enable-s3-parquet-optimized-committer"),
        *("--enable-spark-ui", "--executor-cores", "--extra-files", "--extra-jars"),
        *("--extra-py-files", "--job-bookmark-option", "--job-language", "--scriptLocation"),
        *("--spark-event-logs-path", "--TempDir", "--use-postgres-driver", "--user-jars-first"),
    }
)


def reserved_glue_arguments(path: str, state: Mapping[str, Any]) -> list[str]:
    """A Glue task's job arguments that Glue reserves (a ``.$`` suffix names a dynamic one)."""
    arguments = (state.get("Parameters") or {}).get("Arguments") or {}
    return [
        f"{path}: job argument {name} is reserved by AWS Glue: choose another name"
        for name in (key.removesuffix(".$") for key in arguments)
        if name in GLUE_RESERVED_ARGUMENTS
    ]
