"""A table's extract as the lake keeps it: the manifest (the window read, the rows, and every
part file with its size and SHA-256) next to the part files it lists, in the run's raw folder
(``layout.run_prefix``). The extract writes it; the raw load, the transform and the merge read
it, and check the files against it before they use them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from rentalctl.errors import PipelineFailed
from rentalctl.run.layout import MANIFEST, run_prefix


class RunFiles(Protocol):
    """What reading and checking a manifest needs of the lake: the lake port
    (``rentalctl.adapters.lake.Lake``) sits above this contract, and provides it."""

    def get_bytes(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def local_path(self, key: str) -> Path | None: ...

    def uri(self, key: str) -> str: ...


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
    # Rows quarantined for a value that does not fit its column (rawvalues), and the file that
    # holds them as curated.rejected_rows rows (gzip CSV, the same dialect; None when none).
    invalid_rows: int = 0
    invalid_file: PartFile | None = None
    # Where the bookmark moves after the run: ``high``, or below it when rows are dated after
    # the source's clock plus the allowed skew (``future_rows`` of them, after ``future_after``).
    bookmark_high: str | int | None = None
    future_rows: int = 0
    future_after: str | None = None
    # The keys the table held in the extract's snapshot, when this run reconciles deletes
    # (``rentalctl.pipeline.reconcile``; None when it does not): every key (``keys_whole``), or
    # those of the key pages the pages file marks read, whose fingerprints changed since those
    # the merge of run ``keys_baseline`` kept (``rentalctl.pipeline.key_pages``).
    keys_file: PartFile | None = None
    key_pages_file: PartFile | None = None
    keys_whole: bool = True
    keys_baseline: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        doc = json.loads(data)
        doc["files"] = [PartFile(**f) for f in doc["files"]]
        doc.setdefault("bookmark_high", doc["high"])  # written before the cap existed
        if doc.get("invalid_file"):
            doc["invalid_file"] = PartFile(**doc["invalid_file"])
        for name in ("keys_file", "key_pages_file"):
            if doc.get(name):
                doc[name] = PartFile(**doc[name])
        return cls(**doc)


def read_manifest(lake: RunFiles, table: str, run_id: str) -> Manifest:
    return Manifest.from_json(lake.get_bytes(run_prefix(table, run_id) + MANIFEST))


def verify_files(lake: RunFiles, manifest: Manifest) -> None:
    """Every file the manifest lists is as the extract wrote it, in size and SHA-256; else
    PipelineFailed naming the file. A file changed or replaced after the extract (by hand, by a
    tool, by a restored backup) would otherwise be loaded and curated as if it were the source's
    rows. No retry of the run can mend it; the next run extracts the rows again."""
    extra = (manifest.invalid_file, manifest.keys_file, manifest.key_pages_file)
    listed = [*manifest.files, *(f for f in extra if f is not None)]
    for part in listed:
        if not lake.exists(part.key):
            found = "is missing"
        else:
            size, digest = _size_and_digest(lake, part.key)
            if (size, digest) == (part.bytes, part.sha256):
                continue
            found = f"holds {size:,} bytes with sha256 {digest}"
        raise PipelineFailed(
            f"raw file {lake.uri(part.key)} of run {manifest.run_id} {found}, but its manifest "
            f"lists {part.bytes:,} bytes with sha256 {part.sha256}: it changed after the "
            f"extract. Nothing of {manifest.table} was loaded and no bookmark moved; the next "
            "run extracts the rows again (not `run --resume`, which keeps this run's files)"
        )


def _size_and_digest(lake: RunFiles, key: str) -> tuple[int, str]:
    path = lake.local_path(key)
    if path is None:
        data = lake.get_bytes(key)
        return len(data), hashlib.sha256(data).hexdigest()
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:  # in chunks: a part file never has to fit in memory
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
