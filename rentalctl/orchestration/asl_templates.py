"""Payload templates of Amazon States Language (Parameters, ItemSelector, ResultSelector): a
key ending in ``.$`` takes its value from a path or an intrinsic function, any other key is
copied as it is."""

from __future__ import annotations

import copy
from typing import Any

from rentalctl.orchestration.asl_intrinsics import Call, evaluate, parse_intrinsic
from rentalctl.orchestration.jsonpath import (
    EvaluationError,
    Path,
    PathNotFound,
    dumps,
    parse_path,
    resolve,
)


def template_problems(template: Any, where: str) -> list[str]:
    """Static check of a payload template: every ``key.$`` holds a path or an intrinsic."""
    problems: list[str] = []
    if isinstance(template, dict):
        for key, value in template.items():
            if key.endswith(".$"):
                try:
                    parse_dynamic(value)
                except ValueError as exc:
                    problems.append(f"{where}.{key}: {exc}")
            else:
                problems.extend(template_problems(value, f"{where}.{key}"))
    elif isinstance(template, list):
        for i, value in enumerate(template):
            problems.extend(template_problems(value, f"{where}[{i}]"))
    return problems


def parse_dynamic(value: Any) -> Path | Call:
    if isinstance(value, str) and value.startswith("$"):
        return parse_path(value)
    if isinstance(value, str) and value.startswith("States."):
        return parse_intrinsic(value)
    raise ValueError(f"{value!r} is neither a JSONPath nor an intrinsic function")


def apply_template(template: Any, data: Any, context: Any) -> Any:
    """Evaluate a payload template against the state data and the context object."""
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = _evaluate_field(key, value, data, context)
            else:
                out[key] = apply_template(value, data, context)
        return out
    if isinstance(template, list):
        return [apply_template(v, data, context) for v in template]
    return copy.deepcopy(template)


def _evaluate_field(key: str, value: str, data: Any, context: Any) -> Any:
    if value.startswith("States."):
        return copy.deepcopy(evaluate(parse_intrinsic(value), data, context))
    try:
        return copy.deepcopy(resolve(value, data, context))
    except PathNotFound:
        source = context if value.startswith("$$") else data
        raise EvaluationError(
            f"The JSONPath '{value}' specified for the field '{key}' could not be found "
            f"in the input '{dumps(source)}'"
        ) from None
