"""Local-folder lake: the default for local runs. Same key layout as the S3 lake.

Atomicity comes from POSIX rename: every write lands in a ``.tmp-<uuid>`` file in the
destination folder (same filesystem, so the rename cannot degrade into a copy) and is then
``os.replace``-d onto its key. Readers and ``list`` therefore see either nothing or the whole
file; a crash leaves at most a ``.tmp-*`` file, which ``list`` ignores.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from rentalctl.adapters.lake import Lake, check_key
from rentalctl.errors import ConfigError, ResourceUnavailable

_TMP = ".tmp-"
_SPARK_TEMPORARY = "_temporary"


def _fsync_dir(folder: Path) -> None:
    # The rename is only durable once the directory entry itself is on disk.
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_prefix(prefix: str) -> str:
    """A folder-like prefix ('raw/bookings/' or 'raw/bookings'), returned without the slash."""
    return check_key(prefix.rstrip("/"))


class LocalLake(Lake):
    def __init__(self, root: Path) -> None:
        # Absolute so that uri() stays valid whatever the working directory of the reader.
        self.root = Path(root).absolute()
        self.name = f"file://{self.root}"

    def _path(self, key: str) -> Path:
        return self._inside(self.root / check_key(key))

    def _folder(self, prefix: str) -> Path:
        return self._inside(self.root / _check_prefix(prefix))

    def _inside(self, path: Path) -> Path:
        """``path``, refused when a symbolic link inside the lake takes it out of the lake: a
        write, a read or a delete there would reach files that are not the lake's. (The lake's
        root itself may be a link.)"""
        real, root = Path(os.path.realpath(path)), Path(os.path.realpath(self.root))
        if real != root and root not in real.parents:
            raise ConfigError(
                f"lake path {path} leads to {real}, outside the lake {root}: a symbolic link "
                "inside the lake points out of it. rentalctl reads, writes and deletes only "
                "inside the lake: replace the link by a folder, or point lake.url at the "
                "real location"
            )
        return path

    def _write_atomically(self, dest: Path, fill: Callable[[BinaryIO], object]) -> None:
        """Create a temp file next to ``dest``, let ``fill(fileobj)`` write it, fsync, rename."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f"{_TMP}{uuid.uuid4().hex}"
        try:
            with open(tmp, "xb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            # Never leave debris behind a failed write; the key keeps its previous content.
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        _fsync_dir(dest.parent)

    def put_file(self, local_path: Path, key: str) -> None:
        dest = self._path(key)
        src = Path(local_path)
        if src.absolute() == dest:
            return  # already in place (e.g. written through local_path())
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(src, "rb") as f:
            os.fsync(f.fileno())
        try:
            # Same filesystem: the rename is atomic and consumes the file in one step.
            os.replace(src, dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # Another filesystem: copy into a temp name beside the key, rename, then consume.
            with open(src, "rb") as f:
                self._write_atomically(dest, lambda out: shutil.copyfileobj(f, out, 1 << 20))
            src.unlink()
            return
        _fsync_dir(dest.parent)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write_atomically(self._path(key), lambda out: out.write(data))

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ResourceUnavailable(f"lake object not found: {path}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise ResourceUnavailable(f"lake object not found: {path}")
        return path.stat().st_size

    def list(self, prefix: str) -> list[str]:
        folder = self._folder(prefix) if prefix.rstrip("/") else self.root
        if not folder.is_dir():
            return []
        keys = []
        for dirpath, dirs, files in os.walk(folder):
            # Spark's unfinished output (its tasks write under _temporary/ until the job
            # commits) is no more an object than a .tmp-* file is.
            dirs[:] = [d for d in dirs if d != _SPARK_TEMPORARY]
            # Names starting with "." are never keys (check_key refuses them): temp files of
            # unfinished writes (.tmp-*) and the checksum files Spark writes beside its output.
            keys += [
                (Path(dirpath) / name).relative_to(self.root).as_posix()
                for name in files
                if not name.startswith(".")
            ]
        return sorted(keys)

    def move(self, key: str, new_key: str) -> None:
        src, dest = self._path(key), self._path(new_key)
        if not src.is_file():
            if dest.is_file():
                return  # already moved by an earlier attempt
            raise ResourceUnavailable(f"cannot move {src}: lake object not found")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dest)
        _fsync_dir(dest.parent)
        self._prune(src.parent)

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.rstrip("/"):
            # Refused rather than supported: one empty string would wipe the whole lake.
            raise ConfigError("refusing to delete the whole lake (empty prefix)")
        folder = self._folder(prefix)
        if not folder.is_dir():
            return 0
        # Temp files, checksum files and unfinished Spark output go too, but were never objects.
        count = len(self.list(prefix))
        for dirpath, _dirs, files in os.walk(folder, topdown=False):
            for name in files:
                (Path(dirpath) / name).unlink()
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)  # only succeeds when empty: a concurrent write keeps its folder
        self._prune(folder.parent)
        return count

    def discard_unfinished(self, prefix: str) -> int:
        folder = self._folder(prefix)
        removed = 0
        for dirpath, dirs, files in os.walk(folder):
            for name in files:
                if name.startswith(_TMP):
                    (Path(dirpath) / name).unlink(missing_ok=True)
                    removed += 1
            if _SPARK_TEMPORARY in dirs:
                dirs.remove(_SPARK_TEMPORARY)
                spark_temp = Path(dirpath) / _SPARK_TEMPORARY
                removed += sum(1 for p in spark_temp.rglob("*") if p.is_file())
                shutil.rmtree(spark_temp, ignore_errors=True)
        return removed

    def _prune(self, folder: Path) -> None:
        """Remove now-empty folders from ``folder`` up to (not including) the root, so archived
        runs do not leave a trail of empty directories (S3 has no folders to clean)."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)
