"""The raw files' lines of a batch of source rows, written column by column.

``row_formatter`` (rawvalues.py) calls one Python function per value, which is most of an
extract's time. A batch is written here column by column instead: a column whose values are all
in the canonical form the source usually hands over (an SQLite file's text, whole numbers from
any driver) is checked and written in a few calls into C for the whole column (one regular
expression over the column's values joined, ``map`` over built-ins), and any other column value
by value with rawvalues' converters. The lines are exactly ``row_formatter``'s; a value that
does not fit raises UnfitValue for the batch, which the caller then writes row by row,
quarantining only the rows that hold such a value.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from rentalctl.pipeline.rawvalues import (
    DAY,
    MICROSECOND,
    SECOND,
    converter,
    decimal_form,
    integer_bound,
)
from rentalctl.tables import Column, Kind, TableSpec


def batch_formatter(spec: TableSpec) -> Callable[[Sequence[Sequence[Any]]], list[str]]:
    """The CSV lines (with their line ends) of a batch of source rows, exactly as
    ``row_formatter`` writes them one by one, computed column by column: a column whose values
    are all in the canonical form the source usually hands over (an SQLite file's text, whole
    numbers) is checked and written in a few calls into C for the whole column, where one call
    per value costs most of an extract's time. A value that does not fit raises UnfitValue for
    the batch: the caller then writes it row by row, quarantining only that value's row."""
    columns = [_column_formatter(c) for c in spec.columns]

    def lines(rows: Sequence[Sequence[Any]]) -> list[str]:
        if not rows:
            return []
        fields = [format_column(values) for format_column, values in zip(columns, zip(*rows))]
        return list(map("{}\n".format, map(",".join, zip(*fields))))

    return lines


def _column_formatter(column: Column) -> Callable[[Sequence[Any]], list[str]]:
    """The CSV fields of one column's values in a batch: whole-column fast paths where every
    value is of one canonical kind, else ``converter`` value by value."""
    one = converter(column)
    kind = column.kind

    def each(values: Sequence[Any]) -> list[str]:
        return [one(v) for v in values]

    if kind is Kind.TEXT:

        def text(values: Sequence[Any]) -> list[str]:
            if set(map(type, values)) <= {str, type(None)}:
                return ["" if v is None else '"' + v.replace('"', '""') + '"' for v in values]
            return each(values)

        return text
    if kind is Kind.INTEGER:
        bound = integer_bound(column)

        def integer(values: Sequence[Any]) -> list[str]:
            present = _present(values, int)
            if present is None or (present and not -bound <= min(present) <= max(present) < bound):
                return each(values)
            if present is values:
                return list(map(str, values))
            return ["" if v is None else str(v) for v in values]

        return integer
    if kind is Kind.DECIMAL:
        form = decimal_form(column)
    elif kind is Kind.DATE:
        form = DAY
    else:  # the forms a timestamp column writes unchanged
        form = MICROSECOND if column.mysql_type.upper() == "DATETIME(6)" else SECOND
    # Every value of the batch in the form, as one text: one line per value. A value holding a
    # line end could pass as two lines, so the lines are counted too.
    every = re.compile(f"(?:{form}\n)*")
    exists = {Kind.DATE: date.fromisoformat, Kind.DATETIME: datetime.fromisoformat}.get(kind)

    def canonical(values: Sequence[Any]) -> list[str]:
        present = _present(values, str)
        if present is None or not _fits(present, every, exists):
            return each(values)
        return list(values) if present is values else ["" if v is None else v for v in values]

    return canonical


def _fits(
    values: Sequence[str], every: re.Pattern[str], exists: Callable[[str], Any] | None
) -> bool:
    """Whether each of ``values`` is one line of ``every`` and, if ``exists`` is given, is
    taken by it (a day and time that exist)."""
    joined = "\n".join(values) + "\n"
    if values and (joined.count("\n") != len(values) or not every.fullmatch(joined)):
        return False
    try:
        deque(map(exists, values) if exists else (), maxlen=0)
    except ValueError:
        return False
    return True


def _present(values: Sequence[Any], kind: type) -> Sequence[Any] | None:
    """The values other than NULL (``values`` itself when there is none), if all are exactly of
    type ``kind``; else None."""
    types = set(map(type, values))
    if types == {kind}:
        return values
    if types == {kind, type(None)}:
        return [v for v in values if v is not None]
    return None
