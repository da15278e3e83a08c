"""Engine-neutral helpers for the transform tests: DataFrames made from rows and a DDL schema
written by hand, on either engine, and exact comparisons of whole frames.

Values are compared as text, never as floats: a DECIMAL keeps every digit of its scale
(SQLFrame's own assertDataFrameEqual compares decimals as floats with a tolerance, which would
call 12699999999.99 equal to 12699999999.98)."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from rentalctl.pipeline.frame_api import F, T, engine_of, using

_DECIMAL = re.compile(r"DECIMAL\((\d+),(\d+)\)")


def ddl_fields(ddl: str) -> list[tuple[str, str]]:
    """``name TYPE, ...`` -> [(name, TYPE)]; a DECIMAL(p,s) has no space after its comma."""
    return [(part.split()[0], part.split()[1].upper()) for part in ddl.split(", ")]


def _type(name: str) -> Any:
    decimal = _DECIMAL.fullmatch(name)
    if decimal:
        return T.DecimalType(int(decimal[1]), int(decimal[2]))
    simple = {
        "BIGINT": "LongType",
        "INT": "IntegerType",
        "STRING": "StringType",
        "BOOLEAN": "BooleanType",
        "DATE": "DateType",
        "TIMESTAMP_NTZ": "TimestampNTZType",
    }
    return getattr(T, simple[name])()


def schema(session: Any, ddl: str) -> Any:
    """The StructType of ``ddl`` in the engine of ``session``."""
    with using(engine_of(session)):
        return T.StructType([T.StructField(n, _type(t), True) for n, t in ddl_fields(ddl)])


def frame(session: Any, rows: list[tuple], ddl: str) -> Any:
    return session.createDataFrame(rows, schema(session, ddl))


def type_names(df: Any) -> list[tuple[str, str]]:
    """(name, type) of a frame's columns as Spark spells them, spaces dropped."""
    return [(f.name, f.dataType.simpleString().replace(" ", "")) for f in df.schema.fields]


def _text(value: Any, sql_type: str) -> str | None:
    if value is None:
        return None
    decimal = _DECIMAL.fullmatch(sql_type)
    if decimal:
        assert isinstance(value, (str, Decimal)), f"{value!r}: a decimal is compared as text"
        exact = Decimal(value).quantize(Decimal(1).scaleb(-int(decimal[2])))
        assert exact == Decimal(value), f"{value} has more digits than {sql_type}"
        return str(exact)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, (date, bool, int, str)):
        return f"{type(value).__name__}:{value}"
    raise TypeError(f"unexpected value {value!r} for {sql_type}")


def as_text(rows: list[Any], ddl: str) -> list[tuple[str | None, ...]]:
    """Rows as sorted tuples of text, each value spelt exactly (its type included)."""
    types = [t for _, t in ddl_fields(ddl)]
    return sorted(
        (tuple(_text(v, t) for v, t in zip(tuple(row), types, strict=True)) for row in rows),
        key=repr,
    )


def assert_frame(got: Any, expected_rows: list[tuple], ddl: str) -> None:
    """``got`` has exactly the columns and types of ``ddl`` and exactly ``expected_rows`` (in
    any order, duplicates counted)."""
    assert type_names(got) == [(n, t.lower()) for n, t in ddl_fields(ddl)]
    assert as_text(collect_exactly(got, ddl), ddl) == as_text(expected_rows, ddl)


def collect_exactly(df: Any, ddl: str) -> list[tuple]:
    """The rows of ``df``, decimals as their text: SQLFrame hands DECIMAL values to Python as
    floats, so they are cast to text by the engine (plain notation, every digit of the scale)."""
    with using(engine_of(df)):
        columns = [
            F.col(n).cast("string") if _DECIMAL.fullmatch(t) else F.col(n)
            for n, t in ddl_fields(ddl)
        ]
        return [tuple(row) for row in df.select(*columns).collect()]
