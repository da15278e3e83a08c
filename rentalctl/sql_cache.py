"""SQL written for DuckDB once per machine, not once per run.

Two kinds of DuckDB SQL cost the same Python work in every run. The warehouse statements are
written in the Redshift dialect and transpiled by sqlglot: importing sqlglot, parsing and writing
the statements of one merge costs about half a second, a quarter of a run that finds nothing
new. The transform's classification of a table is planned by SQLFrame from the PySpark code in
``transform.py``: one to three seconds per table. So the DuckDB text is kept in the user's cache
folder (``$XDG_CACHE_HOME/rentalctl``, by default ``~/.cache/rentalctl``), in one file per
*stamp*: the versions of the libraries that write the SQL (sqlglot; SQLFrame too for the
classification) and the source of the modules that do. A new version or new code starts a new
file, so a cached text is always the one this code would write. A cache folder that cannot be
read or written is simply not used. The files hold SQL text derived from the shipped code and
the settings the key names (the fx rates are in the classification's SQL as literals), never
data or secrets.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

_lock = threading.Lock()  # the executor's threads merge and refresh side by side
_stores: dict[str, dict[str, Any]] = {}


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rentalctl"


def transpiled(text: str, transpile: Callable[[str], Any], sources: tuple[str, ...]) -> Any:
    """``transpile(text)`` (a JSON value), from the cache when this machine computed it before
    with the same libraries and the same source of the modules named in ``sources``."""
    return cached(text, lambda: transpile(text), sources, ("sqlglot",))


def cached(
    key: str, compute: Callable[[], Any], sources: tuple[str, ...], libraries: tuple[str, ...]
) -> Any:
    """``compute()`` (a JSON value), which depends only on ``key``, the code of the modules
    named in ``sources`` and the versions of the installed ``libraries``, from the cache when
    this machine computed it before. (The Glue jobs transpile too, and have no SQLFrame: only
    the libraries named are asked for their version.)"""
    path = cache_folder() / f"duckdb-sql-{_stamp(sources, libraries)}.json"
    digest = hashlib.sha256(key.encode()).hexdigest()
    with _lock:
        entries = _stores.get(str(path))
        if entries is None:
            entries = _stores[str(path)] = _read(path)
        if digest in entries:
            return entries[digest]
    result = compute()
    with _lock:
        # Read again first: the transform's child processes add entries to one file side by
        # side, and an entry lost to that race is only computed again in a later run.
        entries.update({**_read(path), digest: result})
        _write(path, entries)
    return result


@cache
def _stamp(sources: tuple[str, ...], libraries: tuple[str, ...]) -> str:
    digest = hashlib.sha256(" ".join(map(version, libraries)).encode())
    for name in sources:
        digest.update(Path(str(sys.modules[name].__file__)).read_bytes())
    return digest.hexdigest()[:20]


def _read(path: Path) -> dict[str, Any]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, unreadable, or cut short: transpile again
        return {}
    return entries if isinstance(entries, dict) else {}


def _write(path: Path, entries: dict[str, Any]) -> None:
    """Replace the file whole (a reader sees the old file or the new one), or not at all."""
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(entries, out)
        os.replace(temporary, path)
    except OSError:  # a read-only home or a full disk: the run goes on, transpiling each time
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
