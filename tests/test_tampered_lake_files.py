"""A raw part file changed between the extract and the load (same rows, other values) is
refused before anything of it is loaded, with an error naming the file; no bookmark moves, and
the next run extracts the rows again and loads the source's values."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rentalctl.errors import PipelineFailed
from rentalctl.pipeline import steps
from rentalctl.run.manifest import read_manifest
from tests.test_extract_raw import Pipeline, apt, make_pipeline

__all__ = ["make_pipeline"]  # the fixture, shared with the extract tests


def tamper(path: Path, old: bytes, new: bytes) -> None:
    """Rewrite a gzip part file with ``old`` replaced by ``new``: the same rows, other values."""
    data = gzip.decompress(path.read_bytes())
    assert old in data
    path.write_bytes(gzip.compress(data.replace(old, new)))


def test_a_changed_part_file_is_refused_and_the_next_run_reads_the_source(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline()
    p.insert("apartments", [apt(1, "2025-01-01 10:00:00.000000", price="100.00")])
    steps.extract(p.ctx, "apartments", "R1")
    part = read_manifest(p.ctx.lake, "apartments", "R1").files[0]
    path = Path(p.ctx.lake.uri(part.key))
    tamper(path, b"100.00", b"1.00")
    with pytest.raises(PipelineFailed) as caught:
        steps.load_raw(p.ctx, "apartments", "R1")
    size = path.stat().st_size
    assert str(caught.value).startswith(
        f"raw file {path} of run R1 holds {size:,} bytes with sha256 "
    )
    assert str(caught.value).endswith(
        f", but its manifest lists {part.bytes:,} bytes with sha256 {part.sha256}: it changed "
        "after the extract. Nothing of apartments was loaded and no bookmark moved; the next "
        "run extracts the rows again (not `run --resume`, which keeps this run's files)"
    )
    assert caught.value.exit_code == 1
    assert p.bookmark("apartments") is None

    p.run("R2", ("apartments",))
    assert p.raw("SELECT _run_id, id, price FROM raw.apartments") == [("R2", 1, Decimal("100.00"))]
    assert p.bookmark("apartments") == "2025-01-01 10:00:00.000000"


def test_a_missing_part_file_is_named(make_pipeline: Callable[..., Pipeline]) -> None:
    p = make_pipeline()
    p.insert("apartments", [apt(1, "2025-01-01 10:00:00.000000")])
    steps.extract(p.ctx, "apartments", "R1")
    part = read_manifest(p.ctx.lake, "apartments", "R1").files[0]
    Path(p.ctx.lake.uri(part.key)).unlink()
    with pytest.raises(PipelineFailed, match=r"part-00000\.csv\.gz of run R1 is missing, but"):
        steps.load_raw(p.ctx, "apartments", "R1")


def test_on_s3_a_changed_object_is_refused_before_any_copy(aws_credentials: str) -> None:
    """On AWS the same check reads the objects from S3 before the COPY is sent."""
    import hashlib

    from moto import mock_aws

    from rentalctl import aws
    from rentalctl.adapters.lake_s3 import S3Lake
    from rentalctl.run.manifest import PartFile, verify_files
    from tests.test_warehouse_redshift import manifest as bookings_manifest

    key = "raw/bookings/run_id=R1/part-00000.csv.gz"
    written = gzip.compress(b'booking_status\n"confirmed"\n', mtime=0)
    with mock_aws():
        session = aws.session("eu-west-1")
        aws.client("s3", session).create_bucket(
            Bucket="lake", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        lake = S3Lake("lake", "dev", boto3_session=session)
        lake.put_bytes(key, written)
        digest = hashlib.sha256(written).hexdigest()
        manifest = bookings_manifest(files=[PartFile(key, 1, len(written), digest)])
        verify_files(lake, manifest)  # as written: no complaint
        changed = gzip.compress(b'booking_status\n"pending__"\n', mtime=0)
        lake.put_bytes(key, changed)
        with pytest.raises(PipelineFailed) as caught:
            verify_files(lake, manifest)
    assert str(caught.value).startswith(
        f"raw file s3://lake/dev/{key} of run R1 holds {len(changed):,} bytes with sha256 "
        f"{hashlib.sha256(changed).hexdigest()}, but its manifest lists {len(written):,} bytes"
    )


@pytest.mark.slow
def test_a_run_over_a_changed_file_fails_and_the_next_run_loads_the_source(
    home: Path, monkeypatch: pytest.MonkeyPatch, spark: Any
) -> None:
    """Through ``rentalctl run``: the run fails with exit 1 at the raw load, its retries fail
    at once, and the next run extracts again and leaves the warehouse exactly as one clean run
    over the same source does."""
    import shutil

    from tests.reliability.support import warehouse_snapshot
    from tests.support.cli import invoke, ok_json

    ok_json("demo-data", "--scale", "0.002")
    reference = home.parent / "reference"
    shutil.copytree(home, reference)
    load_raw = steps.load_raw

    def tamper_then_load(ctx: Any, table: str, run_id: str) -> Any:
        # Between the extract (which may run in a process of its own) and the load.
        if table == "bookings":
            manifest = read_manifest(ctx.lake, table, run_id)
            tamper(Path(ctx.lake.uri(manifest.files[0].key)), b'"confirmed"', b'"pending"')
        return load_raw(ctx, table, run_id)

    with monkeypatch.context() as m:
        m.setattr(steps, "load_raw", tamper_then_load)
        failed = invoke("-o", "json", "--set", "retry.interval_seconds=1", "run")
    assert failed.exit_code == 1, (failed.stdout, failed.stderr)
    doc = json.loads(failed.stdout)
    assert (doc["status"], doc["error"]["Error"]) == ("FAILED", "Rentalctl.PipelineFailed")
    cause = doc["error"]["Cause"]
    assert "/raw/bookings/run_id=" in cause and "it changed after the extract" in cause
    assert p_bookmarks() == {}

    assert ok_json("run")["status"] == "SUCCEEDED"
    assert set(p_bookmarks()) == {"apartments", "apartment_attributes", "user_viewing", "bookings"}
    monkeypatch.setenv("RENTALCTL_HOME", str(reference))
    assert ok_json("run")["status"] == "SUCCEEDED"
    assert warehouse_snapshot(home) == warehouse_snapshot(reference)


def p_bookmarks() -> dict[str, Any]:
    """The tables whose bookmark is set, and their values."""
    from tests.support.cli import ok_json

    shown = ok_json("bookmarks", "show")
    return {t: b["value"] for t, b in shown["bookmarks"].items() if b["value"] is not None}
