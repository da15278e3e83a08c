"""Paths, payload templates, intrinsic functions and Choice rules, as Amazon States Language
(JSONPath mode) defines them: the data half of the local executor (``executor.py`` is the
control half).

Paths: ``$`` (the state's data) or ``$$`` (the context object), then ``.name``, ``['name']``,
``["name"]``, ``[n]`` (negative counts from the end), ``.*``/``[*]`` and ``[start:stop:step]``.
A path with a wildcard or a slice is *indefinite* and yields a list (possibly empty), as Jayway,
the library AWS uses, does; a definite path that matches nothing raises ``PathNotFound``.
Recursive descent (``..``), filters and unions are rejected when a definition is validated.

Every evaluation failure is an ``EvaluationError``: the executor turns it into a
``States.Runtime`` failure of the execution, which no Retry or Catch handles (as on AWS). That
includes intrinsic functions given arguments they cannot use (a choice: AWS's error list also
names States.IntrinsicFailure, which AWS may report for some of those instead).

Intrinsic functions: all of ``States.*`` (Format, StringToJson, JsonToString, Array,
ArrayPartition, ArrayContains, ArrayRange, ArrayGetItem, ArrayLength, ArrayUnique, Base64Encode,
Base64Decode, Hash, JsonMerge (shallow only, as on AWS), MathRandom, MathAdd, StringSplit, UUID).
Arguments are string literals in single quotes (``\\'``, ``\\{``, ``\\}``, ``\\\\`` escape),
numbers, true/false/null, paths (``$``/``$$``) or nested calls.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
import math
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
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


class _Wild:
    def __repr__(self) -> str:
        return "*"


WILD = _Wild()


@dataclass(frozen=True)
class _Slice:
    start: int | None
    stop: int | None
    step: int | None


Segment = str | int | _Wild | _Slice


@dataclass(frozen=True)
class Path:
    text: str
    context: bool  # rooted at $$ (the context object) rather than $
    segments: tuple[Segment, ...]

    @property
    def definite(self) -> bool:
        return all(isinstance(s, str | int) for s in self.segments)


_NAME = re.compile(r"[^.\[\]()]+")  # no Jayway functions such as length()
_BRACKET = re.compile(
    r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|(\*)|(-?\d+)"""
    r"""|(-?\d*)\s*:\s*(-?\d*)(?:\s*:\s*(-?\d*))?)\s*\]"""
)


def _opt_int(text: str | None) -> int | None:
    return int(text) if text else None


@functools.lru_cache(maxsize=1024)
def parse_path(text: str) -> Path:
    """Parse a JSONPath; ValueError says what is wrong with it."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise ValueError(f"{text!r} is not a JSONPath (it must start with $)")
    context = text.startswith("$$")
    i = 2 if context else 1
    segments: list[Segment] = []
    while i < len(text):
        if text.startswith("..", i):
            raise ValueError(f"{text!r}: recursive descent (..) is not supported")
        if text[i] == ".":
            if text.startswith(".*", i):
                segments.append(WILD)
                i += 2
                continue
            name = _NAME.match(text, i + 1)
            if not name:
                raise ValueError(f"{text!r}: expected a name after '.' at position {i}")
            segments.append(name.group())
            i = name.end()
        elif text[i] == "[":
            m = _BRACKET.match(text, i)
            if not m:
                raise ValueError(f"{text!r}: unsupported or malformed [...] at position {i}")
            single, double, star, index, start, stop, step = m.groups()
            if single is not None or double is not None:
                segments.append(re.sub(r"\\(.)", r"\1", single if single is not None else double))
            elif star:
                segments.append(WILD)
            elif index is not None:
                segments.append(int(index))
            else:
                segments.append(_Slice(_opt_int(start), _opt_int(stop), _opt_int(step)))
            i = m.end()
        else:
            raise ValueError(f"{text!r}: unexpected {text[i]!r} at position {i}")
    return Path(text, context, tuple(segments))


def _normalized(root: str, segments: tuple[Segment, ...]) -> str:
    parts = [f"['{s}']" if isinstance(s, str) else f"[{s}]" for s in segments]
    return root + "".join(parts)


def resolve(path: str, data: Any, context: Any = None) -> Any:
    """The value at ``path``: rooted at ``context`` for ``$$...``, at ``data`` otherwise."""
    p = parse_path(path)
    nodes = [context if p.context else data]
    definite = True
    for seg in p.segments:
        found: list[Any] = []
        for node in nodes:
            if isinstance(seg, str):
                if isinstance(node, dict) and seg in node:
                    found.append(node[seg])
            elif isinstance(seg, int):
                if isinstance(node, list) and -len(node) <= seg < len(node):
                    found.append(node[seg])
            elif isinstance(seg, _Wild):
                if isinstance(node, dict):
                    found.extend(node.values())
                elif isinstance(node, list):
                    found.extend(node)
            elif isinstance(node, list):
                found.extend(node[seg.start : seg.stop : seg.step])
        if definite and not found:
            raise PathNotFound(path, _normalized(p.text[: 2 if p.context else 1], p.segments))
        definite = definite and isinstance(seg, str | int)
        nodes = found
    return nodes[0] if definite else nodes


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
    """Why ``text`` is not a usable ResultPath (a definite path on the state data), or None."""
    try:
        p = parse_path(text)
    except ValueError as exc:
        return str(exc)
    if p.context or not p.definite:
        return f"{text!r} must be a definite path into the state data ($..., no wildcards)"
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
        return copy.deepcopy(evaluate_intrinsic(value, data, context))
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
        if not m or m.group() not in FUNCTIONS:
            raise self.fail("unknown intrinsic function")
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


def evaluate_intrinsic(text: str, data: Any, context: Any) -> Any:
    return _evaluate_call(parse_intrinsic(text), data, context)


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


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values (true is not 1, 1 is 1.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) and is_number(b):
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


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


def _string_to_json(text: Any) -> Any:
    try:
        return json.loads(_need(text, str, "a string"))
    except json.JSONDecodeError as exc:
        raise EvaluationError(f"not valid JSON: {exc}") from None


def _json_merge(first: Any, second: Any, deep: Any) -> dict[str, Any]:
    if deep is not False:
        raise EvaluationError("only shallow merging is supported: the third argument is false")
    merged = dict(_need(first, dict, "an object"))
    merged.update(_need(second, dict, "an object"))
    return merged


def _array_partition(array: Any, size: Any) -> list[Any]:
    _need(array, list, "an array")
    if _need(size, int, "an integer") <= 0:
        raise EvaluationError("the chunk size must be positive")
    return [array[i : i + size] for i in range(0, len(array), size)]


def _array_range(start: Any, end: Any, step: Any) -> list[int]:
    for v in (start, end, step):
        _need(v, int, "an integer")
    if step == 0:
        raise EvaluationError("the step must not be 0")
    values = list(range(start, end + (1 if step > 0 else -1), step))
    if len(values) > 1000:
        raise EvaluationError("the range has more than 1000 items")
    return values


def _array_get_item(array: Any, index: Any) -> Any:
    _need(array, list, "an array")
    if not 0 <= _need(index, int, "an integer") < len(array):
        raise EvaluationError(f"index {index} is out of range")
    return array[index]


def _array_unique(array: Any) -> list[Any]:
    out: list[Any] = []
    for v in _need(array, list, "an array"):
        if not any(json_equal(v, seen) for seen in out):
            out.append(v)
    return out


def _base64_decode(text: Any) -> str:
    try:
        return base64.b64decode(_need(text, str, "a string"), validate=True).decode()
    except ValueError as exc:
        raise EvaluationError(f"not valid base64: {exc}") from None


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384"}
_HASHES["SHA-512"] = "sha512"


def _hash(text: Any, algorithm: Any) -> str:
    if algorithm not in _HASHES:
        raise EvaluationError(f"unknown algorithm {algorithm!r}; one of {sorted(_HASHES)}")
    return hashlib.new(_HASHES[algorithm], _need(text, str, "a string").encode()).hexdigest()


def _to_int(value: Any) -> int:
    # Step Functions rounds non-integer arguments of the math functions half up.
    return math.floor(_need(value, int | float, "a number") + 0.5)


def _math_random(start: Any, end: Any, seed: Any = None) -> int:
    rng = random.Random(_to_int(seed)) if seed is not None else random.Random()
    return rng.randrange(_to_int(start), _to_int(end))


def _string_split(text: Any, delimiters: Any) -> list[str]:
    _need(text, str, "a string")
    chars = _need(delimiters, str, "a string of delimiter characters")
    if not chars:
        return [text]
    return [p for p in re.split("|".join(re.escape(c) for c in chars), text) if p]


# --- Choice rules ------------------------------------------------------------------------

_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (``2025-01-01T00:00:00Z``), or None when ``value`` is not one."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


_NO = object()  # a value of the wrong type for a comparison: the comparison is false
_FAMILIES: dict[str, Callable[[Any], Any]] = {
    "String": lambda v: v if isinstance(v, str) else _NO,
    "Numeric": lambda v: v if is_number(v) else _NO,
    "Boolean": lambda v: v if isinstance(v, bool) else _NO,
    "Timestamp": lambda v: parse_timestamp(v) or _NO,
}
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: bool(a == b),
    "LessThan": lambda a, b: bool(a < b),
    "GreaterThan": lambda a, b: bool(a > b),
    "LessThanEquals": lambda a, b: bool(a <= b),
    "GreaterThanEquals": lambda a, b: bool(a >= b),
}
TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda v: v is None,
    "IsPresent": lambda v: True,  # evaluated specially: the path may not resolve
    "IsNumeric": is_number,
    "IsString": lambda v: isinstance(v, str),
    "IsBoolean": lambda v: isinstance(v, bool),
    "IsTimestamp": lambda v: parse_timestamp(v) is not None,
}
# Comparison operator -> the type of its literal operand; each also has a ...Path form.
COMPARISONS: dict[str, type | tuple[type, ...]] = {
    **{f"{f}{op}": str for f in ("String", "Timestamp") for op in _OPS},
    **{f"Numeric{op}": (int, float) for op in _OPS},
    "BooleanEquals": bool,
    "StringMatches": str,
}


def _string_matches(value: str, pattern: str) -> bool:
    # `*` matches any run of characters; `\*` and `\\` are a literal star and backslash.
    regex = "".join(
        ".*" if tok == "*" else re.escape(tok[-1]) for tok in re.findall(r"\\.|.", pattern)
    )
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _invalid_condition_path(path: str) -> EvaluationError:
    return EvaluationError(
        f"Invalid path '{path}': The choice state's condition path references an invalid value."
    )


def evaluate_rule(rule: dict[str, Any], data: Any, context: Any) -> bool:
    """A Choice rule (validated beforehand): comparisons of the wrong type are false."""
    if "And" in rule:
        return all(evaluate_rule(r, data, context) for r in rule["And"])
    if "Or" in rule:
        return any(evaluate_rule(r, data, context) for r in rule["Or"])
    if "Not" in rule:
        return not evaluate_rule(rule["Not"], data, context)
    op = next(k for k in rule if k not in ("Variable", "Next", "Comment"))
    expected = rule[op]
    try:
        value = resolve(rule["Variable"], data, context)
    except PathNotFound:
        if op == "IsPresent":
            return expected is False
        raise _invalid_condition_path(rule["Variable"]) from None
    if op in TYPE_TESTS:
        return TYPE_TESTS[op](value) is expected
    if op.endswith("Path"):
        try:
            op, expected = op[: -len("Path")], resolve(expected, data, context)
        except PathNotFound:
            raise _invalid_condition_path(expected) from None
    if op == "StringMatches":
        return isinstance(value, str) and _string_matches(value, expected)
    family = next(f for f in _FAMILIES if op.startswith(f))
    a, b = _FAMILIES[family](value), _FAMILIES[family](expected)
    return a is not _NO and b is not _NO and _OPS[op[len(family) :]](a, b)


FUNCTIONS: dict[str, tuple[Callable[..., Any], tuple[int, float]]] = {
    "States.Format": (_format, (1, math.inf)),
    "States.StringToJson": (_string_to_json, (1, 1)),
    "States.JsonToString": (dumps, (1, 1)),
    "States.JsonMerge": (_json_merge, (3, 3)),
    "States.Array": (lambda *values: list(values), (0, math.inf)),
    "States.ArrayPartition": (_array_partition, (2, 2)),
    "States.ArrayContains": (
        lambda a, v: any(json_equal(x, v) for x in _need(a, list, "an array")),
        (2, 2),
    ),
    "States.ArrayRange": (_array_range, (3, 3)),
    "States.ArrayGetItem": (_array_get_item, (2, 2)),
    "States.ArrayLength": (lambda a: len(_need(a, list, "an array")), (1, 1)),
    "States.ArrayUnique": (_array_unique, (1, 1)),
    "States.Base64Encode": (
        lambda s: base64.b64encode(_need(s, str, "a string").encode()).decode(),
        (1, 1),
    ),
    "States.Base64Decode": (_base64_decode, (1, 1)),
    "States.Hash": (_hash, (2, 2)),
    "States.MathAdd": (lambda a, b: _to_int(a) + _to_int(b), (2, 2)),
    "States.MathRandom": (_math_random, (2, 3)),
    "States.StringSplit": (_string_split, (2, 2)),
    "States.UUID": (lambda: str(uuid.uuid4()), (0, 0)),
}
