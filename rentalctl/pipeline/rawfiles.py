"""The raw file format of the lake: gzip CSV part files, listed by one manifest per table and
run (``rentalctl.run.manifest``).

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

The values in those files are canonicalised by ``rawvalues``.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rentalctl.adapters.lake import Lake
from rentalctl.curated import INVALID_VALUE, REJECTED_ROWS_COLUMNS
from rentalctl.pipeline.rawcolumns import batch_formatter
from rentalctl.pipeline.rawvalues import UnfitValue, describe, invalid_record, quoted, row_formatter
from rentalctl.run.manifest import PartFile
from rentalctl.tables import TableSpec

log = logging.getLogger(__name__)

INVALID_FILE = "invalid_values.csv.gz"


class PartWriter:
    """Writes rows into gzip CSV part files of at most ``part_rows`` rows each, each put into
    the lake atomically as soon as it is complete; memory holds one batch, never a file. A row
    with a value its column cannot hold goes to ``INVALID_FILE`` instead, as a rejected row of
    ``run_id`` (see ``rawvalues``)."""

    def __init__(
        self, lake: Lake, spec: TableSpec, run_id: str, prefix: str, part_rows: int
    ) -> None:
        self.lake, self.spec, self.run_id = lake, spec, run_id
        self.prefix, self.part_rows = prefix, part_rows
        self.files: list[PartFile] = []
        self.invalid_file: PartFile | None = None
        self.invalid_rows = 0
        self._line, self._lines = row_formatter(spec), batch_formatter(spec)
        self._tmpdir = tempfile.TemporaryDirectory(prefix="rentalctl-extract-")
        self._open: tuple[Path, Any, int] | None = None  # path, text stream, rows
        self._invalid: tuple[Path, _TextSink] | None = None

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        """Write one batch of rows."""
        try:
            lines = self._lines(rows)
        except UnfitValue:  # row by row, to quarantine the rows that hold such a value
            lines = []
            for row in rows:
                try:
                    lines.append(self._line(row))
                except UnfitValue as exc:
                    self._quarantine(row, exc)
        while lines:
            if self._open is None:
                self._start()
            assert self._open is not None
            path, stream, count = self._open
            taken, lines = lines[: self.part_rows - count], lines[self.part_rows - count :]
            stream.write("".join(taken))
            self._open = (path, stream, count + len(taken))
            if count + len(taken) >= self.part_rows:
                self._finish()

    def close(self) -> list[PartFile]:
        if self._open is not None:
            self._finish()
        if self._invalid is not None:
            path, sink = self._invalid
            sink.close()
            self.invalid_file = self._put(path, INVALID_FILE, self.invalid_rows)
        self._tmpdir.cleanup()
        return self.files

    def abort(self) -> None:
        """Drop the files being written (nothing more reaches the lake); the parts already put
        are the caller's to remove."""
        if self._open is not None:
            self._open[1].close()
        if self._invalid is not None:
            self._invalid[1].close()
        self._open = self._invalid = None
        self._tmpdir.cleanup()

    def _quarantine(self, row: Sequence[Any], exc: UnfitValue) -> None:
        if self._invalid is None:
            path = Path(self._tmpdir.name) / INVALID_FILE
            sink = _gzip_text(path)
            sink.write(",".join(name for name, _ in REJECTED_ROWS_COLUMNS) + "\n")
            self._invalid = (path, sink)
        key, record = invalid_record(self.spec, row, exc)
        fields = (self.spec.name, key, INVALID_VALUE, record, self.run_id)
        self._invalid[1].write(",".join("" if f is None else quoted(f) for f in fields) + "\n")
        if not self.invalid_rows:
            log.warning(
                "%s: quarantined a row (%s %s): %s",
                self.spec.name,
                self.spec.key,
                key,
                describe(exc),
            )
        self.invalid_rows += 1

    def _start(self) -> None:
        path = Path(self._tmpdir.name) / f"part-{len(self.files):05d}.csv.gz"
        text = _gzip_text(path)
        text.write(",".join(self.spec.column_names) + "\n")
        self._open = (path, text, 0)

    def _finish(self) -> None:
        assert self._open is not None
        path, text, count = self._open
        text.close()
        self._open = None
        if count == 0:
            path.unlink()
            return
        self.files.append(self._put(path, path.name, count))

    def _put(self, path: Path, name: str, rows: int) -> PartFile:
        return put_part(self.lake, path, self.prefix + name, rows)


def put_part(lake: Lake, path: Path, key: str, rows: int) -> PartFile:
    """Put the finished file at ``path`` into the lake at ``key``; its listing for a manifest."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    size = path.stat().st_size
    lake.put_file(path, key)
    return PartFile(key, rows, size, digest)


def _gzip_text(path: Path) -> _TextSink:
    # mtime=0 keeps the bytes a pure function of the rows (same data, same checksum).
    raw = open(path, "wb")  # noqa: SIM115 - closed by the sink
    return _TextSink(gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0), raw)


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
