"""Where the shipped artefacts (glue/, step-functions/, redshift/, mysql/, config/) are.

In a wheel they travel inside the package under ``_shipped/``; in a source checkout (including an
editable install) they are the folders at the top of the repository.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent
_ROOTS = (_PACKAGE / "_shipped", _PACKAGE.parent)


def shipped(relative: str) -> Path:
    """The path of a shipped artefact, e.g. ``shipped("mysql/schema.sql")``."""
    for root in _ROOTS:
        candidate = root / relative
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"shipped artefact not found: {relative}")


_PLACEHOLDER = re.compile(r"\$\{([a-z_]+)\}")


def fill(node: Any, values: dict[str, Any]) -> Any:
    """Fill a shipped JSON template (the state machine, the IAM policies): ``${name}`` alone in
    a string becomes the value itself (a list stays a list); inside a longer string it is
    replaced by the value's text."""
    if isinstance(node, dict):
        return {k: fill(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [fill(v, values) for v in node]
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        if whole:
            return copy.deepcopy(values[whole.group(1)])
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), node)
    return node
