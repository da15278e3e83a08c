"""The values of the raw files: every source value as the canonical CSV field of its column.

Every value must fit its column's type in the contract (tables.py), whatever the source declares
today. A value that does not (text in a DECIMAL in a loosely typed SQLite file, 30 February
stored by MySQL under ALLOW_INVALID_DATES, a number past the column's range, bytes that are not
UTF-8) raises UnfitValue, and its row is quarantined: it goes to curated.rejected_rows as
``invalid_value`` (``invalid_record``) instead of the raw files, and every other row goes on.

Numbers are kept as MySQL would store them: a decimal with more places than its column's scale
is rounded to the scale, half away from zero (MySQL does so on insert into DECIMAL(p,s), with a
note, not an error); a float (what SQLite may hand back for a NUMERIC column) is read through its
shortest round-trip text, so 46.650362200000004 is 46.6503622; a whole float in an integer
column (5.0) is the whole number. MySQL's zero date ``0000-00-00`` is its "no date" and is
written as NULL.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from rentalctl.curated import RECORD_MARKER_BYTES, REDSHIFT_VARCHAR_MAX
from rentalctl.tables import Column, Kind, TableSpec


def canonical_timestamp(value: Any, micros: bool = True) -> str:
    """A timestamp as text; six fractional digits when ``micros`` (text order = time order).
    Years below 1000 keep four digits (``strftime('%Y')`` would drop the zeros). A time zone
    offset is refused (ValueError): the source holds wall-clock times, and an offset would be
    dropped or would break the text order."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip())
    if moment.tzinfo is not None:
        raise ValueError(f"{value}: a time zone offset cannot be compared with the source's times")
    if micros or moment.microsecond:
        return moment.isoformat(sep=" ", timespec="microseconds")
    return moment.isoformat(sep=" ", timespec="seconds")


class UnfitValue(ValueError):
    """A source value its column's type cannot hold. MySQL enforces its column types, so this
    comes from a loosely typed SQLite source, a MySQL date with zero parts or an impossible day
    (sql_mode ALLOW_INVALID_DATES), or a source column retyped since the contract was written."""

    def __init__(self, column: Column, value: Any, problem: str) -> None:
        super().__init__(problem)
        self.column, self.value, self.problem = column, value, problem


# The only timestamp and date forms a text value may take (docs/contract.md §3: ISO 8601
# ``YYYY-MM-DD[ HH:MM:SS[.ffffff]]``; a ``T`` separator is accepted). No zone: the source's
# timestamps are wall-clock times, and an offset could not be kept.
_TIMESTAMP_TEXT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?"
)
# MySQL's "zero date" (allowed unless the server's sql_mode has NO_ZERO_DATE) is its stand-in
# for "no date"; drivers hand it over as text. It is read as NULL (a NOT NULL column refuses it).
_ZERO_DATE = re.compile(r"0000-00-00(?:[ T]00:00:00(?:\.0{1,6})?)?")
# Bounds of the warehouse's integer types (raw.* and Spark): BIGINT is 64-bit, the INT and
# TINYINT columns are held as 32-bit INTEGER.
_INT64, _INT32 = 1 << 63, 1 << 31


def integer_bound(column: Column) -> int:
    return _INT64 if column.mysql_type.upper() == "BIGINT" else _INT32


def _parse_timestamp(column: Column, value: Any) -> datetime | None:
    """A DATETIME or DATE value as a naive datetime; None for the zero date."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise UnfitValue(column, value, "it carries a time zone")
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    text = text.strip()
    if _ZERO_DATE.fullmatch(text):
        if column.nullable:
            return None
        raise UnfitValue(column, value, "the zero date, and the column is NOT NULL")
    match = _TIMESTAMP_TEXT.fullmatch(text)
    if not match:
        raise UnfitValue(column, value, "expected YYYY-MM-DD[ HH:MM:SS[.ffffff]]")
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
        )
    except ValueError as exc:  # a day, month or time that does not exist
        raise UnfitValue(column, value, f"no such date or time ({exc})") from None


def _text_of(column: Column, value: Any) -> str | None:
    """The canonical text of one source value, or None for NULL. Raises UnfitValue for a value
    its column's type cannot hold: writing it would only fail the load further on, with a
    message that names neither the table nor the row."""
    if value is None:
        return None
    kind = column.kind
    if kind is Kind.TEXT:
        if isinstance(value, (bytes, bytearray, memoryview)):
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise UnfitValue(column, value, "bytes that are not UTF-8 text") from None
        return value if isinstance(value, str) else str(value)
    if kind is Kind.DATETIME or kind is Kind.DATE:
        moment = _parse_timestamp(column, value)
        if moment is None:
            return None
        if kind is Kind.DATE:
            if moment.time() != datetime.min.time():
                raise UnfitValue(column, value, "a time of day in a DATE column")
            return moment.date().isoformat()
        return canonical_timestamp(moment, micros=column.mysql_type.upper() == "DATETIME(6)")
    if isinstance(value, bool):
        raise UnfitValue(column, value, "a boolean, not a number")
    try:
        number = (
            Decimal(value) if isinstance(value, (int, Decimal)) else Decimal(str(value).strip())
        )
    except (ValueError, InvalidOperation):
        raise UnfitValue(column, value, "not a number") from None
    if not number.is_finite():
        raise UnfitValue(column, value, "not a finite number")
    if kind is Kind.INTEGER:
        if number != number.to_integral_value():
            raise UnfitValue(column, value, "not a whole number")
        whole = int(number)
        bound = integer_bound(column)
        if not -bound <= whole < bound:
            raise UnfitValue(column, value, f"out of range ({-bound} to {bound - 1})")
        return str(whole)
    precision, scale = column.precision_scale or (18, 2)
    try:
        # Half away from zero, as MySQL rounds a value stored into DECIMAL(p,s).
        exact = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than any decimal context holds
        raise UnfitValue(column, value, "too large") from None
    if abs(exact) >= Decimal(10) ** (precision - scale):
        raise UnfitValue(column, value, f"more than {precision - scale} digits before the point")
    return format(exact, "f")


# The canonical text forms the fast paths pass through unchanged (after a check that the day and
# time exist): ASCII digits only, no zone. Python's fromisoformat alone would also take a zone, a
# "T" or other digits.
DAY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
SECOND = DAY + r" [0-9]{2}:[0-9]{2}:[0-9]{2}"
FRACTION = r"\.[0-9]{6}"
MICROSECOND = SECOND + FRACTION
_DATE_FORM = re.compile(DAY)
_TIMESTAMP_FORM = re.compile(f"{SECOND}(?:{FRACTION})?")


def decimal_form(column: Column) -> str:
    """The canonical text of a DECIMAL(p,s) column's values: what MySQL would store."""
    precision, scale = column.precision_scale or (18, 2)
    return rf"-?[0-9]{{1,{precision - scale}}}(?:\.[0-9]{{1,{scale}}})?"


def quoted(text: str) -> str:
    """A text field of the raw CSV dialect."""
    return '"' + text.replace('"', '""') + '"'


def converter(column: Column) -> Callable[[Any], str]:
    """The CSV field for one column's values. Values already in canonical form and range (what
    MySQL's driver returns, what a well-kept SQLite file holds) take a fast path; anything else
    goes through ``_text_of``, which canonicalises it or raises UnfitValue. Built once per
    column: extraction calls it for every value."""
    kind = column.kind

    def slow(value: Any) -> str:
        text = _text_of(column, value)
        if text is None:
            return ""
        return quoted(text) if kind is Kind.TEXT else text

    if kind is Kind.TEXT:
        return lambda v: "" if v is None else quoted(v) if isinstance(v, str) else slow(v)
    if kind is Kind.INTEGER:
        bound = integer_bound(column)

        def integer(v: Any) -> str:
            if type(v) is int and -bound <= v < bound:
                return str(v)
            return slow(v)

        return integer
    if kind is Kind.DECIMAL:
        precision, scale = column.precision_scale or (18, 2)
        digits = precision - scale
        canonical = re.compile(decimal_form(column))

        def decimal(v: Any) -> str:
            if isinstance(v, str) and canonical.fullmatch(v):
                return v
            if isinstance(v, Decimal) and v.is_finite():
                _, places, exponent = v.as_tuple()
                if (
                    isinstance(exponent, int)
                    and -scale <= exponent
                    and len(places) + exponent <= digits
                ):
                    return format(v, "f")
            return slow(v)

        return decimal
    if kind is Kind.DATE:

        def day(v: Any) -> str:
            if type(v) is date:
                return v.isoformat()
            if isinstance(v, str) and _DATE_FORM.fullmatch(v):
                try:
                    date.fromisoformat(v)  # a day that exists
                    return v
                except ValueError:
                    pass
            return slow(v)

        return day
    micros = column.mysql_type.upper() == "DATETIME(6)"

    def timestamp(v: Any) -> str:
        if isinstance(v, str) and _TIMESTAMP_FORM.fullmatch(v):
            try:
                datetime.fromisoformat(v)  # a day and time that exist
            except ValueError:
                return slow(v)
            if len(v) == 26:
                return v if micros or not v.endswith(".000000") else v[:19]
            return v + ".000000" if micros else v
        if type(v) is datetime and v.tzinfo is None:
            if micros or v.microsecond:
                return v.isoformat(sep=" ", timespec="microseconds")
            return v.isoformat(sep=" ", timespec="seconds")
        return slow(v)

    return timestamp


def row_formatter(spec: TableSpec) -> Callable[[Sequence[Any]], str]:
    """One CSV line (with its line end) per source row, in the spec's column order. A value its
    column cannot hold raises UnfitValue: nothing is written for a value the warehouse would
    refuse (the row is quarantined instead: ``invalid_record``)."""
    converters = [converter(c) for c in spec.columns]

    def line(row: Sequence[Any]) -> str:
        # No strict=: this runs on Python 3.9 in Glue Python shell jobs; rows come from a
        # SELECT of exactly these columns.
        return ",".join([f(v) for f, v in zip(converters, row)]) + "\n"

    return line


def shown(value: Any) -> str:
    """A source value as an error or a rejected record shows it (at most 80 characters)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def describe(exc: UnfitValue) -> str:
    """What is wrong with a value, in words: ``price = 'abc' does not fit DECIMAL(12,2): not a
    number``."""
    column = exc.column
    return f"{column.name} = {shown(exc.value)} does not fit {column.mysql_type}: {exc.problem}"


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)  # numbers (a float in its shortest round-trip form), dates


def invalid_record(spec: TableSpec, row: Sequence[Any], exc: UnfitValue) -> tuple[str | None, str]:
    """A quarantined row as curated.rejected_rows records it: its key as text, and the record,
    the row's values as the source gave them, as text, plus ``_invalid`` saying which value
    does not fit and why. The same row version gives the same record, so a row read again by a
    lookback is recorded once."""
    values = dict(zip(spec.column_names, map(_as_text, row)))
    record = json.dumps({**values, "_invalid": describe(exc)}, ensure_ascii=False)
    return values[spec.key], bounded_record(record)


def bounded_record(record: str) -> str:
    """``record`` cut to fit curated.rejected_rows.record (REDSHIFT_VARCHAR_MAX bytes), the way
    the transform cuts its rejected records: the beginning that fits, cut between characters,
    then a marker with the whole record's size and SHA-256."""
    data = record.encode("utf-8")
    if len(data) <= REDSHIFT_VARCHAR_MAX:
        return record
    head = data[: REDSHIFT_VARCHAR_MAX - RECORD_MARKER_BYTES].decode("utf-8", "ignore")
    digest = hashlib.sha256(data).hexdigest()
    return f"{head} ...[truncated from {len(data)} bytes, sha256 {digest}]"
