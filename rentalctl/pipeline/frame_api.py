"""The DataFrame API the transform is written against: PySpark's ``functions``, ``types`` and
``Window``, or the same names from SQLFrame's DuckDB engine, which implements the PySpark API
by generating DuckDB SQL.

Which one a call resolves to follows the DataFrame being transformed (``using(engine_of(df))``
around the transform's entry points), never a process-wide switch: SQLFrame's ``activate()``
would replace the ``pyspark`` modules for the whole process, and a process (the parity tests,
a Glue job) must be able to hold a real SparkSession. Outside ``using`` the names are Spark's.

The transform module never asks which engine it is on; the few places where SQLFrame's
rendering of a PySpark function differs from Spark's answer are mended here, once.
"""

from __future__ import annotations

import functools
import importlib
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

SPARK, DUCKDB = "spark", "duckdb"
ENGINES = (DUCKDB, SPARK)

_MODULES = {
    SPARK: {
        "functions": "pyspark.sql.functions",
        "types": "pyspark.sql.types",
        "sql": "pyspark.sql",
    },
    DUCKDB: {
        "functions": "sqlframe.duckdb.functions",
        "types": "sqlframe.duckdb.types",
        "sql": "sqlframe.duckdb",
    },
}

_engine: ContextVar[str] = ContextVar("rentalctl_frame_engine", default=SPARK)


def engine_of(frame: Any) -> str:
    """The engine behind a DataFrame (or a session): SQLFrame's classes live in ``sqlframe``."""
    return DUCKDB if type(frame).__module__.startswith("sqlframe.") else SPARK


@contextmanager
def using(engine: str) -> Iterator[None]:
    """Resolve ``F``, ``T`` and ``Window`` to ``engine``'s API inside the block."""
    if engine not in _MODULES:
        raise ValueError(f"unknown engine {engine!r}")
    token = _engine.set(engine)
    try:
        yield
    finally:
        _engine.reset(token)


def current() -> str:
    return _engine.get()


def follows_frame(parameter: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run the decorated function ``using`` the engine of its DataFrame argument ``parameter``."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            frame = signature.bind(*args, **kwargs).arguments[parameter]
            with using(engine_of(frame)):
                return function(*args, **kwargs)

        return wrapper

    return decorate


def _duckdb_initcap(col: Any) -> Any:
    # SQLFrame 4.10 builds initcap on DuckDB from lambdas its own optimiser then rejects
    # ("Column 'w' could not be resolved"); sqlglot's INITCAP renders a DuckDB expression with
    # Spark's meaning when given Spark's one delimiter, the space (a word starts after a space,
    # the rest of the word is lower-cased: "o'neill city" -> "O'neill City").
    # Imported here: a Spark transform loads neither.
    from sqlframe.duckdb import Column
    from sqlglot import expressions

    space = expressions.Literal.string(" ")
    return Column.invoke_expression_over_column(col, expressions.Initcap, expression=space)


_OVERRIDES: dict[str, dict[str, Callable[..., Any]]] = {DUCKDB: {"initcap": _duckdb_initcap}}


class _Api:
    """A module of the current engine's API (``functions``, ``types`` or ``sql``), by name."""

    def __init__(self, part: str) -> None:
        self._part = part

    def __getattr__(self, name: str) -> Any:
        engine = _engine.get()
        if self._part == "functions" and name in _OVERRIDES.get(engine, {}):
            return _OVERRIDES[engine][name]
        return getattr(importlib.import_module(_MODULES[engine][self._part]), name)


class _WindowApi:
    """``Window`` of the current engine (``Window.partitionBy(...)``)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_sql.Window, name)


F: Any = _Api("functions")
T: Any = _Api("types")
_sql: Any = _Api("sql")
Window: Any = _WindowApi()
