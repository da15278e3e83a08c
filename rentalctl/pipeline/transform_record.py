"""A rejected row's ``record``: the raw row as JSON text, built with DataFrame string functions
that Spark and DuckDB (through SQLFrame) answer alike, and cut to fit
curated.rejected_rows.record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rentalctl.curated import RECORD_MARKER_BYTES, REDSHIFT_VARCHAR_MAX
from rentalctl.pipeline.frame_api import F
from rentalctl.tables import Column as SpecColumn
from rentalctl.tables import Kind

if TYPE_CHECKING:
    from pyspark.sql import Column

#: how timestamps appear in a rejected row's JSON (DATETIME(6) keeps its microseconds)
RECORD_TIMESTAMP_FORMAT = "yyyy-MM-dd HH:mm:ss.SSSSSS"

_JSON_ESCAPES = [("\\", "\\\\"), ('"', '\\"')] + [
    (chr(code), {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}.get(code, f"\\u{code:04x}"))
    for code in range(32)
]


def _json_value(column: SpecColumn, value: Column) -> Column:
    """One raw value as JSON text, as Spark's ``to_json`` writes it (``null`` for NULL), except
    decimals, always in plain notation (``0.0000000``, where ``to_json`` writes ``0E-7``).
    Built from string functions, the same on both engines: SQLFrame's ``to_json`` ignores its
    options and writes decimals as floating-point numbers."""
    if column.kind is Kind.TEXT:
        for raw, escaped in _JSON_ESCAPES:  # backslash first: the escapes add backslashes
            value = F.replace(value, F.lit(raw), F.lit(escaped))
        text = F.concat(F.lit('"'), value, F.lit('"'))
    elif column.kind is Kind.DATETIME:
        text = F.concat(F.lit('"'), F.date_format(value, RECORD_TIMESTAMP_FORMAT), F.lit('"'))
    elif column.kind is Kind.DATE:
        text = F.concat(F.lit('"'), F.date_format(value, "yyyy-MM-dd"), F.lit('"'))
    elif column.kind is Kind.DECIMAL:
        text = _plain_decimal(value, column)
    else:  # integers: their text is their JSON
        text = value.cast("string")
    return F.coalesce(text, F.lit("null"))


def _plain_decimal(value: Column, column: SpecColumn) -> Column:
    """A decimal as text in plain notation on both engines. Spark's text of a decimal is Java's
    BigDecimal.toString, which turns to scientific notation below 1E-6 (0E-7 for a zero of
    scale 7, 1E-7): below 1 in magnitude the digits are spelt out from the unscaled value."""
    precision_scale = column.precision_scale
    assert precision_scale is not None, column
    scale = precision_scale[1]
    digits = (F.abs(value) * F.lit(10**scale)).cast("bigint").cast("string")
    small = F.concat(
        F.when(value < 0, F.lit("-")).otherwise(F.lit("")), F.lit("0."), F.lpad(digits, scale, "0")
    )
    return F.when(F.abs(value) < 1, small).otherwise(value.cast("string"))


def json_record(spec_columns: tuple[SpecColumn, ...], raw_names: list[str]) -> Column:
    """``{"col": value, ...}`` over the raw columns, every column present, in spec order."""
    parts: list[Column] = []
    for i, (column, name) in enumerate(zip(spec_columns, raw_names)):
        prefix = ("{" if i == 0 else ",") + f'"{column.name}":'
        parts += [F.lit(prefix), _json_value(column, F.col(name))]
    return F.concat(*parts, F.lit("}"))


def bounded_record(record: Column) -> Column:
    """``record`` (a rejected row's JSON) cut to fit curated.rejected_rows.record, which holds
    REDSHIFT_VARCHAR_MAX bytes on Redshift (a long TEXT column, or accents in a long title, can
    make the JSON longer). A record that fits is kept whole. A longer one keeps its beginning,
    cut between two characters, and ends with a marker giving the whole record's size and
    SHA-256: the record is then no longer JSON, but two long records that differ only after the
    cut stay different (rejected rows are deduplicated on the record).

    Spark cuts strings in characters and a UTF-8 character takes 1 to 4 bytes, so the beginning
    kept is the longest of a few prefixes (room / w characters, w from 1 to 4 in steps of 1/4)
    that fits the room in bytes: at least 80% of the room is used, all of it for text of one
    width. Sizes are measured in bits (``bit_length``, which both engines have; SQLFrame has no
    ``octet_length``)."""
    bits = F.bit_length(record)
    room = REDSHIFT_VARCHAR_MAX - RECORD_MARKER_BYTES
    prefixes = [F.substring(record, 1, room * 4 // quarters) for quarters in range(4, 17)]
    head = F.coalesce(*[F.when(F.bit_length(p) <= room * 8, p) for p in prefixes])
    marker = F.concat(
        F.lit(" ...[truncated from "),
        (bits / 8).cast("bigint").cast("string"),
        F.lit(" bytes, sha256 "),
        F.sha2(record, 256),
        F.lit("]"),
    )
    return F.when(bits <= REDSHIFT_VARCHAR_MAX * 8, record).otherwise(F.concat(head, marker))
