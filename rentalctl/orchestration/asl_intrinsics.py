"""Intrinsic functions of Amazon States Language: ``States.Format``, ``States.JsonToString``
and ``States.JsonMerge`` (shallow only, as on AWS), the ones the pipeline's definition uses; any
other is refused by name when a definition is checked.

Arguments are string literals in single quotes (``\\'``, ``\\{``, ``\\}``, ``\\\\`` escape),
numbers, true/false/null, paths (``$``/``$$``) or nested calls.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rentalctl.orchestration.jsonpath import EvaluationError, Path, dumps, parse_path, resolve


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
class Call:
    name: str
    args: tuple[_Str | _Lit | Path | Call, ...]


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

    def call(self) -> Call:
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
        args: list[_Str | _Lit | Path | Call] = []
        self.skip_ws()
        if self.text.startswith(")", self.i):
            self.i += 1
            return Call(m.group(), ())
        while True:
            args.append(self.arg())
            self.skip_ws()
            if self.text.startswith(",", self.i):
                self.i += 1
            elif self.text.startswith(")", self.i):
                self.i += 1
                return Call(m.group(), tuple(args))
            else:
                raise self.fail("expected ',' or ')'")

    def arg(self) -> _Str | _Lit | Path | Call:
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
def parse_intrinsic(text: str) -> Call:
    parser = _Parser(text)
    call = parser.call()
    parser.skip_ws()
    if parser.i != len(text):
        raise parser.fail("unexpected text after the function call")
    return call


def evaluate(call: Call, data: Any, context: Any) -> Any:
    args: list[Any] = []
    for arg in call.args:
        if isinstance(arg, _Str):
            args.append(arg if call.name == "States.Format" and not args else arg.value)
        elif isinstance(arg, _Lit):
            args.append(arg.value)
        elif isinstance(arg, Path):
            args.append(resolve(arg.text, data, context))
        else:
            args.append(evaluate(arg, data, context))
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
