"""Paths, payload templates and intrinsic functions of Amazon States Language (JSONPath mode),
as far as the pipeline's definition uses them: the data half of the local executor
(``executor.py`` is the control half).

Paths are definite: ``$`` (the state's data) or ``$$`` (the context object), then ``.name``,
``['name']``, ``["name"]`` or ``[n]`` (negative counts from the end). A path that matches
nothing raises ``PathNotFound``. Wildcards, slices, recursive descent, filters and unions are
refused when a definition is checked, each by name.

Intrinsic functions: ``States.Format``, ``States.JsonToString`` and ``States.JsonMerge``
(shallow only, as on AWS); any other is refused by name when a definition is checked.
Arguments are string literals in single quotes (``\\'``, ``\\{``, ``\\}``, ``\\\\`` escape),
numbers, true/false/null, paths (``$``/``$$``) or nested calls.

Every evaluation failure is an ``EvaluationError``: the executor turns it into a
``States.Runtime`` failure of the execution, which no Retry or Catch handles (as on AWS).
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class EvaluationError(Exception):
    """A path, payload template or intrinsic function could not be evaluated."""


class PathNotFound(EvaluationError):
    def __init__(self, path: str, normalized: str) -> None:
        super().__init__(f"Invalid path '{path}' : No results for path: {normalized}")
        self.path = path


class ResultPathMismatch(Exception):
    """ResultPath cannot be applied to the state input (States.ResultPathMatchFailure)."""


def dumps(value: Any) -> str:
    """JSON text as Step Functions writes it: compact, UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- paths ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Path:
    text: str
    context: bool  # rooted at $$ (the context object) rather than $
    segments: tuple[str | int, ...]


_NAME = re.compile(r"[^.\[\]()*]+")  # no Jayway functions such as length(), no wildcard
_BRACKET = re.compile(r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|(-?\d+))\s*\]""")
# What a path may not hold, named so that the refusal says which feature it is.
_UNSUPPORTED = (
    ("..", "recursive descent (..)"),
    ("*", "wildcards (*)"),
    ("?(", "filters ([?(...)])"),
    (":", "slices ([start:stop])"),
    (",", "unions ([a,b])"),
)


@functools.lru_cache(maxsize=1024)
def parse_path(text: str) -> Path:
    """Parse a definite JSONPath; ValueError says what is wrong with it."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise ValueError(f"{text!r} is not a JSONPath (it must start with $)")
    context = text.startswith("$$")
    i = 2 if context else 1
    segments: list[str | int] = []
    while i < len(text):
        if text[i] == "." and not text.startswith("..", i):
            name = _NAME.match(text, i + 1)
            if name:
                segments.append(name.group())
                i = name.end()
                continue
        elif text[i] == "[":
            m = _BRACKET.match(text, i)
            if m:
                single, double, index = m.groups()
                if index is not None:
                    segments.append(int(index))
                else:
                    quoted = single if single is not None else double
                    segments.append(re.sub(r"\\(.)", r"\1", quoted))
                i = m.end()
                continue
        rest = text[i:]
        feature = next((name for mark, name in _UNSUPPORTED if mark in rest), None)
        if feature:
            raise ValueError(f"{text!r}: {feature} not supported: only definite paths are")
        raise ValueError(f"{text!r}: unexpected {text[i]!r} at position {i}")
    return Path(text, context, tuple(segments))


def _normalized(root: str, segments: tuple[str | int, ...]) -> str:
    parts = [f"['{s}']" if isinstance(s, str) else f"[{s}]" for s in segments]
    return root + "".join(parts)


def resolve(path: str, data: Any, context: Any = None) -> Any:
    """The value at ``path``: rooted at ``context`` for ``$$...``, at ``data`` otherwise."""
    p = parse_path(path)
    node = context if p.context else data
    for seg in p.segments:
        in_object = isinstance(seg, str) and isinstance(node, dict) and seg in node
        in_array = isinstance(seg, int) and isinstance(node, list) and -len(node) <= seg < len(node)
        if in_object or in_array:
            node = node[seg]
        else:
            raise PathNotFound(path, _normalized(p.text[: 2 if p.context else 1], p.segments))
    return node


def set_path(path: str, data: Any, value: Any) -> Any:
    """ResultPath: a copy of ``data`` with ``value`` placed at ``path`` (created as needed)."""
    p = parse_path(path)
    if not p.segments:
        return value
    out = copy.deepcopy(data)
    node = out
    for i, seg in enumerate(p.segments):
        last = i == len(p.segments) - 1
        if isinstance(seg, str) and isinstance(node, dict):
            if last:
                node[seg] = value
            else:
                node = node.setdefault(seg, {})
        elif isinstance(seg, int) and isinstance(node, list) and -len(node) <= seg < len(node):
            if last:
                node[seg] = value
            else:
                node = node[seg]
        else:
            raise ResultPathMismatch(
                f'Unable to apply ResultPath "{path}" to input "{dumps(data)}"'
            )
    return out


def reference_path_problem(text: Any) -> str | None:
    """Why ``text`` is not a usable ResultPath (a path into the state data), or None."""
    try:
        p = parse_path(text)
    except ValueError as exc:
        return str(exc)
    if p.context:
        return f"{text!r} must be a path into the state data ($...), not the context object"
    return None


# --- payload templates (Parameters, ItemSelector, ResultSelector) --------------------------


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


def parse_dynamic(value: Any) -> Path | _Call:
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
        return copy.deepcopy(_evaluate_call(parse_intrinsic(value), data, context))
    try:
        return copy.deepcopy(resolve(value, data, context))
    except PathNotFound:
        source = context if value.startswith("$$") else data
        raise EvaluationError(
            f"The JSONPath '{value}' specified for the field '{key}' could not be found "
            f"in the input '{dumps(source)}'"
        ) from None


# --- intrinsic functions -------------------------------------------------------------------


@dataclass(frozen=True)
class _Str:
    raw: str  # escapes other than \' are kept: States.Format needs \{ and \} as they were

    @property
    def value(self) -> str:
        return re.sub(r"\\(.)", r"\1", self.raw)


@dataclass(frozen=True)
class _Lit:
    value: Any


@dataclass(frozen=True)
class _Call:
    name: str
    args: tuple[_Str | _Lit | Path | _Call, ...]


_FN_NAME = re.compile(r"States\.[A-Za-z0-9]+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_KEYWORDS = {"true": True, "false": False, "null": None}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def fail(self, what: str) -> ValueError:
        return ValueError(f"{self.text!r}: {what} at position {self.i}")

    def skip_ws(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def call(self) -> _Call:
        m = _FN_NAME.match(self.text, self.i)
        if not m:
            raise self.fail("expected an intrinsic function")
        if m.group() not in FUNCTIONS:
            raise ValueError(
                f"{self.text!r}: intrinsic function {m.group()} not supported "
                f"(supported: {', '.join(FUNCTIONS)})"
            )
        self.i = m.end()
        self.skip_ws()
        if not self.text.startswith("(", self.i):
            raise self.fail("expected '('")
        self.i += 1
        args: list[_Str | _Lit | Path | _Call] = []
        self.skip_ws()
        if self.text.startswith(")", self.i):
            self.i += 1
            return _Call(m.group(), ())
        while True:
            args.append(self.arg())
            self.skip_ws()
            if self.text.startswith(",", self.i):
                self.i += 1
            elif self.text.startswith(")", self.i):
                self.i += 1
                return _Call(m.group(), tuple(args))
            else:
                raise self.fail("expected ',' or ')'")

    def arg(self) -> _Str | _Lit | Path | _Call:
        self.skip_ws()
        rest = self.text[self.i :]
        if rest.startswith("'"):
            return self.string()
        if rest.startswith("States."):
            return self.call()
        if rest.startswith("$"):
            return self.path()
        for word, value in _KEYWORDS.items():
            if rest.startswith(word):
                self.i += len(word)
                return _Lit(value)
        m = _NUMBER.match(self.text, self.i)
        if not m:
            raise self.fail("expected an argument")
        self.i = m.end()
        return _Lit(json.loads(m.group()))

    def string(self) -> _Str:
        out, i = [], self.i + 1
        while i < len(self.text):
            c = self.text[i]
            if c == "\\" and i + 1 < len(self.text):
                nxt = self.text[i + 1]
                out.append(nxt if nxt == "'" else c + nxt)
                i += 2
            elif c == "'":
                self.i = i + 1
                return _Str("".join(out))
            else:
                out.append(c)
                i += 1
        raise self.fail("unterminated string")

    def path(self) -> Path:
        start, depth, quote = self.i, 0, ""
        while self.i < len(self.text):
            c = self.text[self.i]
            if quote:
                if c == "\\":
                    self.i += 1
                elif c == quote:
                    quote = ""
            elif c in "'\"" and depth:
                quote = c
            elif c == "[":
                depth += 1
            elif c == "]":
                depth -= 1
            elif c in ",)" and not depth:
                break
            self.i += 1
        return parse_path(self.text[start : self.i].strip())


@functools.lru_cache(maxsize=512)
def parse_intrinsic(text: str) -> _Call:
    parser = _Parser(text)
    call = parser.call()
    parser.skip_ws()
    if parser.i != len(text):
        raise parser.fail("unexpected text after the function call")
    return call


def _evaluate_call(call: _Call, data: Any, context: Any) -> Any:
    args: list[Any] = []
    for arg in call.args:
        if isinstance(arg, _Str):
            args.append(arg if call.name == "States.Format" and not args else arg.value)
        elif isinstance(arg, _Lit):
            args.append(arg.value)
        elif isinstance(arg, Path):
            args.append(resolve(arg.text, data, context))
        else:
            args.append(_evaluate_call(arg, data, context))
    fn, arity = FUNCTIONS[call.name]
    if not arity[0] <= len(args) <= arity[1]:
        raise EvaluationError(f"{call.name} takes {_arity(arity)} arguments, got {len(args)}")
    try:
        return fn(*args)
    except EvaluationError as exc:
        raise EvaluationError(f"{call.name}: {exc}") from None


def _arity(arity: tuple[int, float]) -> str:
    low, high = arity
    return f"{low}" if low == high else f"at least {low}" if high == math.inf else f"{low}-{high}"


def _need(value: Any, kind: Any, what: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise EvaluationError(f"expected {what}, got {dumps(value)}")
    return value


def _format_value(value: Any) -> str:
    # Step Functions renders objects and arrays Java-style: {a=1, b=[x, y]}.
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_format_value(v)}" for k, v in value.items()) + "}"
    return dumps(value)


def _format(template: Any, *values: Any) -> str:
    raw = template.raw if isinstance(template, _Str) else _need(template, str, "a string")
    pieces = re.split(r"(\\.|\{\})", raw)
    if sum(p == "{}" for p in pieces) != len(values):
        raise EvaluationError("the number of {} placeholders does not match the arguments")
    rendered = iter(_format_value(v) for v in values)
    return "".join(
        next(rendered) if p == "{}" else p[1] if p.startswith("\\") and len(p) == 2 else p
        for p in pieces
    )


def _json_merge(first: Any, second: Any, deep: Any) -> dict[str, Any]:
    if deep is not False:
        raise EvaluationError("only shallow merging is supported: the third argument is false")
    merged = dict(_need(first, dict, "an object"))
    merged.update(_need(second, dict, "an object"))
    return merged


FUNCTIONS: dict[str, tuple[Callable[..., Any], tuple[int, float]]] = {
    "States.Format": (_format, (1, math.inf)),
    "States.JsonToString": (dumps, (1, 1)),
    "States.JsonMerge": (_json_merge, (3, 3)),
}
