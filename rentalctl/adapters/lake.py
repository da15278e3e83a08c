"""Lake port: a key/value store of files (a local folder or an S3 prefix), same key layout on
both. Keys are relative POSIX paths such as ``raw/bookings/run_id=.../part-00000.csv.gz``.

Writes are atomic: a reader sees either no object at a key or the complete one — never a
partial file. On a folder that is a temporary name in the same directory, then a rename; on S3,
a completed (multipart) upload.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path

from rentalctl.errors import ConfigError

_KEY = re.compile(r"[A-Za-z0-9_.=\-]+(/[A-Za-z0-9_.=\-]+)*")


def check_key(key: str) -> str:
    """Keys are built by code; refuse anything that could escape the lake (``..``, absolute)."""
    # A part starting with "." is refused too: ".tmp-*" names belong to unfinished writes.
    if not _KEY.fullmatch(key) or any(part.startswith(".") for part in key.split("/")):
        raise ConfigError(f"invalid lake key {key!r}")
    return key


class Lake(ABC):
    #: user-facing location, e.g. file:///data/lake or s3://bucket/prefix
    name: str

    @abstractmethod
    def put_file(self, local_path: Path, key: str) -> None:
        """Store a local file under ``key`` atomically (replacing what is there). The local file
        is consumed (moved, or deleted after the upload) only once it is stored; on failure it
        is kept."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` atomically (replacing what is there)."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The object's content; ResourceUnavailable if it does not exist."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int:
        """The object's size in bytes; ResourceUnavailable if it does not exist."""

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix``, sorted. The prefix is a folder: ``raw/book`` means
        ``raw/book/`` and never matches ``raw/bookings/``; "" lists the whole lake. Never lists
        temporary files of unfinished writes or folder markers."""

    @abstractmethod
    def move(self, key: str, new_key: str) -> None:
        """Move one object (archive), replacing ``new_key``. Idempotent: if ``key`` is gone and
        ``new_key`` exists, nothing happens; if neither exists, ResourceUnavailable."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under ``prefix`` (a folder, as in ``list``; "" is refused so one
        empty string can never wipe the lake); returns how many ``list`` would have shown."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """Where the warehouse reads ``key`` from: a local path (folder) or s3://bucket/key."""

    def local_path(self, key: str) -> Path | None:
        """The file's path when the lake is a local folder, else None."""
        return None

    def discard_unfinished(self, prefix: str) -> int:
        """Remove what interrupted writes left under ``prefix`` (never objects: ``list`` does not
        show them); returns how many files went. Only for a prefix no live writer uses. Nothing
        to do on S3: an interrupted PUT leaves nothing, and an interrupted multipart upload's
        parts are removed by the bucket's lifecycle rule (docs/aws.md)."""
        return 0
