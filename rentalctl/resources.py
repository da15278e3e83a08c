"""Where the shipped artefacts (glue/, step-functions/, redshift/, mysql/, config/) are.

In a wheel they travel inside the package under ``_shipped/``; in a source checkout (including an
editable install) they are the folders at the top of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_ROOTS = (_PACKAGE / "_shipped", _PACKAGE.parent)


def shipped(relative: str) -> Path:
    """The path of a shipped artefact, e.g. ``shipped("mysql/schema.sql")``."""
    for root in _ROOTS:
        candidate = root / relative
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"shipped artefact not found: {relative}")
