"""Paths of Amazon States Language (JSONPath mode), as far as the pipeline's definition uses
them: the data half of the local executor (``executor.py`` is the control half; payload
templates are in ``asl_templates.py``, intrinsic functions in ``asl_intrinsics.py``).

Paths are definite: ``$`` (the state's data) or ``$$`` (the context object), then ``.name``,
``['name']``, ``["name"]`` or ``[n]`` (negative counts from the end). A path that matches
nothing raises ``PathNotFound``. Wildcards, slices, recursive descent, filters and unions are
refused when a definition is checked, each by name.

Every evaluation failure is an ``EvaluationError``: the executor turns it into a
``States.Runtime`` failure of the execution, which no Retry or Catch handles (as on AWS).
"""

from __future__ import annotations

import copy
import functools
import json
import re
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
