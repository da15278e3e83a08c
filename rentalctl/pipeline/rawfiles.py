"""The raw file format of the lake: gzip CSV part files plus one manifest per table and run.

The dialect is chosen to be read identically by Redshift COPY (``FORMAT CSV``) and DuckDB
(``read_csv``):

- comma-delimited, ``"`` quotes doubled inside values, ``\\n`` line ends, one header row;
- every text value is quoted, so quotes, commas, newlines and tabs inside text survive, and the
  empty string is ``""``; NULL is an empty *unquoted* field. Readers must not treat quoted empty
  values as NULL (DuckDB: ``allow_quoted_nulls=false``), which is the PostgreSQL/Redshift CSV
  rule;
- numbers are written exactly as the source holds them (decimals in plain notation, never via a
  float); timestamps as ``YYYY-MM-DD HH:MM:SS[.ffffff]`` (DATETIME(6) always with six digits),
  dates as ``YYYY-MM-DD``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rentalctl.adapters.lake import Lake
from rentalctl.tables import Column, Kind, TableSpec

MANIFEST = "_manifest.json"


def run_prefix(table: str, run_id: str, area: str = "raw") -> str:
    """Where a run's files of a table live: ``raw/<table>/run_id=<id>/``."""
    return f"{area}/{table}/run_id={run_id}/"


# --- values ---------------------------------------------------------------------------------


def canonical_timestamp(value: Any, micros: bool = True) -> str:
    """A timestamp as text; six fractional digits when ``micros`` (text order = time order)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip())
    if micros:
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{moment.microsecond:06d}" if moment.microsecond else text


def _text_of(column: Column, value: Any) -> str | None:
    """The canonical text of one source value. A value that does not parse as its column's type
    (possible only in a loosely typed SQLite source) is written as it is, so the load names it."""
    if value is None:
        return None
    kind = column.kind
    try:
        if kind is Kind.INTEGER:
            if isinstance(value, int):
                return str(value)
            number = Decimal(str(value).strip())
            return str(int(number)) if number == number.to_integral_value() else str(value)
        if kind is Kind.DECIMAL:
            number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
            return format(number, "f") if number.is_finite() else str(value)
        if kind is Kind.DATETIME:
            return canonical_timestamp(value, micros=column.mysql_type.upper() == "DATETIME(6)")
        if kind is Kind.DATE:
            if isinstance(value, datetime):
                return value.date().isoformat()
            if isinstance(value, date):
                return value.isoformat()
            return date.fromisoformat(str(value).strip()).isoformat()
    except (ValueError, InvalidOperation):
        return str(value)
    return value if isinstance(value, str) else str(value)


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _field(text: str | None) -> str:
    """A non-text value as a CSV field: NULL is empty; a malformed value that holds a delimiter,
    a quote or a line end is quoted like text."""
    if text is None:
        return ""
    return _quoted(text) if any(c in text for c in ',"\n\r') else text


_DECIMAL_TEXT = re.compile(r"-?\d+(\.\d+)?")
_INTEGER_TEXT = re.compile(r"-?\d+")


def _converter(column: Column) -> Callable[[Any], str]:
    """The CSV field for one column's values. Values already in canonical form (what MySQL's
    driver returns, what a well-kept SQLite file holds) take a fast path; anything else goes
    through ``_text_of``. Built once per column: extraction calls it for every value."""
    kind = column.kind
    slow: Callable[[Any], str] = lambda value: _field(_text_of(column, value))  # noqa: E731
    if kind is Kind.TEXT:
        return lambda v: "" if v is None else _quoted(v if isinstance(v, str) else str(v))
    if kind is Kind.INTEGER:

        def integer(v: Any) -> str:
            if type(v) is int:
                return str(v)
            if isinstance(v, str) and _INTEGER_TEXT.fullmatch(v):
                return v
            return slow(v)

        return integer
    if kind is Kind.DECIMAL:

        def decimal(v: Any) -> str:
            if isinstance(v, str) and _DECIMAL_TEXT.fullmatch(v):
                return v
            if isinstance(v, Decimal) and v.is_finite():
                return format(v, "f")
            return slow(v)

        return decimal
    if kind is Kind.DATE:

        def day(v: Any) -> str:
            if isinstance(v, str) and len(v) == 10 and v[4] == "-" and v[7] == "-":
                return v
            if type(v) is date:
                return v.isoformat()
            return slow(v)

        return day
    micros = column.mysql_type.upper() == "DATETIME(6)"

    def timestamp(v: Any) -> str:
        if isinstance(v, str) and len(v) >= 19 and v[10] == " " and v[4] == "-":
            if len(v) == 26 and v[19] == ".":
                return v if micros or not v.endswith(".000000") else v[:19]
            if len(v) == 19:
                return v + ".000000" if micros else v
        if isinstance(v, datetime):
            if micros or v.microsecond:
                return v.isoformat(sep=" ", timespec="microseconds")
            return v.isoformat(sep=" ", timespec="seconds")
        return slow(v)

    return timestamp


def row_formatter(spec: TableSpec) -> Callable[[Sequence[Any]], str]:
    """One CSV line (with its line end) per source row, in the spec's column order."""
    converters = [_converter(c) for c in spec.columns]

    def line(row: Sequence[Any]) -> str:
        # No strict=: this runs on Python 3.9 in Glue Python shell jobs; rows come from a
        # SELECT of exactly these columns.
        return ",".join([f(v) for f, v in zip(converters, row)]) + "\n"

    return line


# --- files and manifest ---------------------------------------------------------------------


@dataclass
class PartFile:
    key: str
    rows: int
    bytes: int
    sha256: str


@dataclass
class Manifest:
    table: str
    run_id: str
    mode: str  # full | incremental | backfill
    watermark_column: str
    bookmark: str | int | None  # the bookmark the run started from
    lower: str | int | None  # exclusive lower bound of the window (None: no lower bound)
    high: str | int | None  # inclusive upper bound = the table's max watermark in the snapshot
    since: str | None  # backfill window, inclusive, on backfill_column
    until: str | None
    extracted_at: str  # UTC, ISO 8601
    columns: list[str]
    rows: int = 0
    files: list[PartFile] = field(default_factory=list)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        doc = json.loads(data)
        doc["files"] = [PartFile(**f) for f in doc["files"]]
        return cls(**doc)


def read_manifest(lake: Lake, table: str, run_id: str) -> Manifest:
    return Manifest.from_json(lake.get_bytes(run_prefix(table, run_id) + MANIFEST))


class PartWriter:
    """Writes rows into gzip CSV part files of at most ``part_rows`` rows each, each put into
    the lake atomically as soon as it is complete; memory holds one batch, never a file."""

    def __init__(self, lake: Lake, spec: TableSpec, prefix: str, part_rows: int) -> None:
        self.lake, self.spec, self.prefix, self.part_rows = lake, spec, prefix, part_rows
        self.files: list[PartFile] = []
        self._line = row_formatter(spec)
        self._tmpdir = tempfile.TemporaryDirectory(prefix="rentalctl-extract-")
        self._open: tuple[Path, Any, Any, int] | None = None  # path, gzip, hasher, rows

    def write(self, rows: Iterable[Sequence[Any]]) -> None:
        for row in rows:
            if self._open is None:
                self._start()
            assert self._open is not None
            path, stream, line, count = self._open
            stream.write(line(row))
            self._open = (path, stream, line, count + 1)
            if count + 1 >= self.part_rows:
                self._finish()

    def close(self) -> list[PartFile]:
        if self._open is not None:
            self._finish()
        self._tmpdir.cleanup()
        return self.files

    def _start(self) -> None:
        path = Path(self._tmpdir.name) / f"part-{len(self.files):05d}.csv.gz"
        # mtime=0 keeps the bytes a pure function of the rows (same data, same checksum).
        raw = open(path, "wb")  # noqa: SIM115 - closed in _finish
        stream = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=5, mtime=0)
        text = _TextSink(stream, raw)
        text.write(",".join(self.spec.column_names) + "\n")
        self._open = (path, text, self._line, 0)

    def _finish(self) -> None:
        assert self._open is not None
        path, text, _, count = self._open
        text.close()
        self._open = None
        if count == 0:
            path.unlink()
            return
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        size = path.stat().st_size
        key = self.prefix + path.name
        self.lake.put_file(path, key)
        self.files.append(PartFile(key, count, size, digest))


class _TextSink:
    """A UTF-8 text stream over a gzip stream, closing both."""

    def __init__(self, gz: gzip.GzipFile, raw: Any) -> None:
        self._gz, self._raw = gz, raw
        self._buffer: list[str] = []
        self._size = 0

    def write(self, text: str) -> None:
        self._buffer.append(text)
        self._size += len(text)
        if self._size > 1 << 20:
            self._flush()

    def _flush(self) -> None:
        self._gz.write("".join(self._buffer).encode("utf-8"))
        self._buffer, self._size = [], 0

    def close(self) -> None:
        self._flush()
        self._gz.close()
        self._raw.close()
