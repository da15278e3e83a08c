"""The lake port (rentalctl/adapters/lake.py): one behavioural suite run against both adapters.

LocalLake runs in a temporary folder; S3Lake runs on moto in-process under a non-empty prefix,
so every test also proves the prefix is applied and stripped. Expected values are written out
literally. Tests that concern one adapter only (encryption, temp files, rename failures) say so.
"""

from __future__ import annotations

import errno
import gzip
import os
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from rentalctl import aws
from rentalctl.adapters import lake_s3
from rentalctl.adapters.factories import open_lake
from rentalctl.adapters.lake import Lake
from rentalctl.adapters.lake_local import LocalLake
from rentalctl.adapters.lake_s3 import S3Lake
from rentalctl.errors import ConfigError, ExitCode, ResourceUnavailable
from rentalctl.urls import parse_lake

BUCKET = "rentalctl-test-lake"
CSV = b"id,title\n1,Flat \xc3\xa9\n2,Loft\n"


@pytest.fixture
def s3(on_moto: str) -> Any:
    """A raw S3 client on moto with the test bucket, to look behind the adapter's back."""
    client = aws.client("s3", aws.session("eu-west-1"))
    client.create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    return client


@pytest.fixture
def api_calls() -> list[tuple[str, dict[str, Any]]]:
    """(operation, parameters) of every S3 call the lake under test makes (none for local)."""
    return []


def recording_session(calls: list[tuple[str, dict[str, Any]]]) -> Any:
    session = aws.session("eu-west-1")
    session.events.register(
        "before-parameter-build.s3", lambda model, params, **_: calls.append((model.name, params))
    )
    return session


@pytest.fixture(params=["local", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path: Path, api_calls: list) -> Lake:
    if request.param == "local":
        return LocalLake(tmp_path / "lake")
    request.getfixturevalue("s3")
    return S3Lake(BUCKET, "lake/dev", boto3_session=recording_session(api_calls))


def test_bytes_round_trip_binary_and_gzip(lake: Lake) -> None:
    binary = bytes(range(256)) * 3
    payload = gzip.compress(CSV, mtime=0)
    lake.put_bytes("raw/bin/all-bytes.bin", binary)
    lake.put_bytes("raw/bookings/run_id=r1/part-00000.csv.gz", payload)
    assert lake.get_bytes("raw/bin/all-bytes.bin") == binary
    assert len(lake.get_bytes("raw/bin/all-bytes.bin")) == 768
    assert lake.get_bytes("raw/bookings/run_id=r1/part-00000.csv.gz") == payload
    assert gzip.decompress(lake.get_bytes("raw/bookings/run_id=r1/part-00000.csv.gz")) == CSV
    lake.put_bytes("raw/empty/none.csv", b"")
    assert lake.get_bytes("raw/empty/none.csv") == b""


def test_put_file_consumes_the_local_file(lake: Lake, tmp_path: Path) -> None:
    src = tmp_path / "staging" / "part-00000.csv.gz"
    src.parent.mkdir()
    src.write_bytes(gzip.compress(CSV, mtime=0))
    lake.put_file(src, "raw/bookings/run_id=r1/part-00000.csv.gz")
    assert not src.exists()
    assert gzip.decompress(lake.get_bytes("raw/bookings/run_id=r1/part-00000.csv.gz")) == CSV


def test_overwriting_a_key_replaces_it(lake: Lake, tmp_path: Path) -> None:
    lake.put_bytes("curated/fx/rates.csv", b"USD,1.0\nEUR,1.08\n")
    lake.put_bytes("curated/fx/rates.csv", b"USD,1.0\n")
    assert lake.get_bytes("curated/fx/rates.csv") == b"USD,1.0\n"
    src = tmp_path / "rates.csv"
    src.write_bytes(b"GBP,1.27\n")
    lake.put_file(src, "curated/fx/rates.csv")
    assert lake.get_bytes("curated/fx/rates.csv") == b"GBP,1.27\n"
    assert lake.list("curated/") == ["curated/fx/rates.csv"]


def test_list_is_sorted_and_limited_to_the_folder(lake: Lake) -> None:
    for key in [
        "raw/bookings/run_id=r2/part-00001.csv.gz",
        "raw/book/part-00000.csv.gz",
        "raw/bookings/run_id=r1/part-00000.csv.gz",
        "raw/bookings_old/part-00000.csv.gz",
        "raw/bookings/run_id=r2/part-00000.csv.gz",
        "curated/bookings/part-00000.parquet",
    ]:
        lake.put_bytes(key, b"x")
    assert lake.list("raw/bookings/") == [
        "raw/bookings/run_id=r1/part-00000.csv.gz",
        "raw/bookings/run_id=r2/part-00000.csv.gz",
        "raw/bookings/run_id=r2/part-00001.csv.gz",
    ]
    assert lake.list("raw/book/") == ["raw/book/part-00000.csv.gz"]
    # Without the trailing slash the prefix is still a folder, not a string prefix.
    assert lake.list("raw/book") == ["raw/book/part-00000.csv.gz"]
    assert lake.list("raw/bookings/run_id=r1/") == ["raw/bookings/run_id=r1/part-00000.csv.gz"]
    assert lake.list("archive/") == []
    assert lake.list("") == [
        "curated/bookings/part-00000.parquet",
        "raw/book/part-00000.csv.gz",
        "raw/bookings/run_id=r1/part-00000.csv.gz",
        "raw/bookings/run_id=r2/part-00000.csv.gz",
        "raw/bookings/run_id=r2/part-00001.csv.gz",
        "raw/bookings_old/part-00000.csv.gz",
    ]


def test_move_is_idempotent(lake: Lake) -> None:
    src, dest = "raw/bookings/run_id=r1/part-00000.csv.gz", "archive/raw/bookings/run_id=r1/p.gz"
    lake.put_bytes(src, b"rows")
    lake.move(src, dest)
    assert (lake.exists(src), lake.get_bytes(dest)) == (False, b"rows")
    lake.move(src, dest)  # a retried archive step
    assert lake.list("") == ["archive/raw/bookings/run_id=r1/p.gz"]
    with pytest.raises(ResourceUnavailable, match="not found"):
        lake.move("raw/bookings/run_id=r9/gone.csv.gz", "archive/raw/gone.csv.gz")
    lake.move(dest, dest)
    assert lake.get_bytes(dest) == b"rows"


def test_delete_prefix_counts_and_leaves_siblings(lake: Lake) -> None:
    for key in [
        "raw/bookings/run_id=r1/part-00000.csv.gz",
        "raw/bookings/run_id=r1/part-00001.csv.gz",
        "raw/bookings/run_id=r1/sub/part-00002.csv.gz",
        "raw/bookings/run_id=r10/part-00000.csv.gz",
        "raw/book/part-00000.csv.gz",
    ]:
        lake.put_bytes(key, b"x")
    assert lake.delete_prefix("raw/bookings/run_id=r1/") == 3
    assert lake.list("") == [
        "raw/book/part-00000.csv.gz",
        "raw/bookings/run_id=r10/part-00000.csv.gz",
    ]
    assert lake.delete_prefix("raw/bookings/run_id=r1/") == 0
    assert lake.delete_prefix("raw/book") == 1
    assert lake.list("") == ["raw/bookings/run_id=r10/part-00000.csv.gz"]
    with pytest.raises(ConfigError, match="whole lake"):
        lake.delete_prefix("/")


def test_exists(lake: Lake) -> None:
    lake.put_bytes("raw/apartments/run_id=r1/part-00000.csv.gz", b"x")
    assert lake.exists("raw/apartments/run_id=r1/part-00000.csv.gz") is True
    assert lake.exists("raw/apartments/run_id=r1/part-00000.csv") is False
    assert lake.exists("raw/apartments/run_id=r1") is False  # a folder is not an object
    assert lake.exists("raw/apartments/run_id=r2/part-00000.csv.gz") is False


def test_size_is_the_stored_byte_count(lake: Lake, tmp_path: Path) -> None:
    lake.put_bytes("curated/apartments/run_id=r1/part-00000.parquet", "é".encode() * 1000)
    lake.put_bytes("curated/apartments/run_id=r1/part-00001.parquet", b"")
    assert lake.size("curated/apartments/run_id=r1/part-00000.parquet") == 2000
    assert lake.size("curated/apartments/run_id=r1/part-00001.parquet") == 0
    with pytest.raises(ResourceUnavailable) as info:
        lake.size("curated/apartments/run_id=r1/part-00002.parquet")
    where = {
        "LocalLake": f"{tmp_path}/lake/curated/apartments/run_id=r1/part-00002.parquet",
        "S3Lake": "s3://rentalctl-test-lake/lake/dev/curated/apartments/run_id=r1/part-00002.parquet",
    }[type(lake).__name__]
    assert str(info.value) == f"lake object not found: {where}"


def test_missing_key_is_resource_unavailable(lake: Lake, tmp_path: Path) -> None:
    with pytest.raises(ResourceUnavailable) as info:
        lake.get_bytes("raw/bookings/run_id=r1/missing.csv.gz")
    assert info.value.exit_code == ExitCode.UNAVAILABLE == 3
    where = {
        "LocalLake": f"{tmp_path}/lake/raw/bookings/run_id=r1/missing.csv.gz",
        "S3Lake": "s3://rentalctl-test-lake/lake/dev/raw/bookings/run_id=r1/missing.csv.gz",
    }[type(lake).__name__]
    assert str(info.value) == f"lake object not found: {where}"


@pytest.mark.parametrize(
    "key", ["../escape.csv", "raw/../../escape.csv", "/etc/passwd", "raw/with space.csv", "raw//x"]
)
def test_bad_keys_are_refused_before_touching_storage(
    lake: Lake, key: str, tmp_path: Path, api_calls: list
) -> None:
    src = tmp_path / "part.csv"
    src.write_bytes(b"x")
    for call in [
        lambda: lake.put_bytes(key, b"x"),
        lambda: lake.put_file(src, key),
        lambda: lake.get_bytes(key),
        lambda: lake.exists(key),
        lambda: lake.list(key),
        lambda: lake.move(key, "archive/x.csv"),
        lambda: lake.move("raw/x.csv", key),
        lambda: lake.delete_prefix(key),
        lambda: lake.uri(key),
    ]:
        with pytest.raises(ConfigError, match="invalid lake key"):
            call()
    assert src.read_bytes() == b"x"
    assert not (tmp_path / "lake").exists()
    assert api_calls == []


def test_names_and_uris(tmp_path: Path, aws_credentials: str) -> None:
    local = LocalLake(tmp_path / "lake")
    assert local.name == f"file://{tmp_path}/lake"
    assert local.uri("raw/x/a.csv") == f"{tmp_path}/lake/raw/x/a.csv"
    assert local.local_path("raw/x/a.csv") == tmp_path / "lake" / "raw" / "x" / "a.csv"
    s3 = S3Lake(BUCKET, "lake/dev/")
    assert (s3.name, s3.local_path("raw/x/a.csv")) == ("s3://rentalctl-test-lake/lake/dev", None)
    assert s3.uri("raw/x/a.csv") == "s3://rentalctl-test-lake/lake/dev/raw/x/a.csv"
    bare = S3Lake(BUCKET, "")
    assert bare.name == "s3://rentalctl-test-lake"
    assert bare.uri("raw/a.csv") == "s3://rentalctl-test-lake/raw/a.csv"


def test_open_lake_picks_the_adapter(tmp_path: Path, aws_credentials: str) -> None:
    local = open_lake(parse_lake("file://data/lake", tmp_path))
    assert isinstance(local, LocalLake)
    assert local.name == f"file://{tmp_path}/data/lake"
    s3 = open_lake(parse_lake("s3://rentalctl-test-lake/lake/dev/", tmp_path))
    assert isinstance(s3, S3Lake)
    assert s3.name == "s3://rentalctl-test-lake/lake/dev"


# --- LocalLake only -----------------------------------------------------------------------


def test_local_list_never_shows_temp_files(tmp_path: Path) -> None:
    local = LocalLake(tmp_path / "lake")
    local.put_bytes("raw/bookings/part-00000.csv.gz", b"x")
    (tmp_path / "lake" / "raw" / "bookings" / ".tmp-x").write_bytes(b"half a fi")
    assert local.list("raw/") == ["raw/bookings/part-00000.csv.gz"]
    assert local.delete_prefix("raw/") == 1
    assert os.listdir(tmp_path / "lake") == []


def test_local_list_never_shows_spark_checksum_or_unfinished_files(tmp_path: Path) -> None:
    """Spark writes a hidden checksum file beside each file it writes into a folder (such names
    are no lake keys: check_key refuses them), and its tasks write under _temporary/ until the
    job commits; neither is listed nor counted."""
    local = LocalLake(tmp_path / "lake")
    folder = tmp_path / "lake" / "curated" / "bookings" / "run_id=R1"
    unfinished = folder / "_temporary" / "0" / "_temporary" / "attempt_1"
    unfinished.mkdir(parents=True)
    (unfinished / "part-00001-a1-c000.snappy.parquet").write_bytes(b"PAR1 half")
    for name in ("part-00000-a1-c000.snappy.parquet", "_SUCCESS"):
        (folder / name).write_bytes(b"x")
        (folder / f".{name}.crc").write_bytes(b"crc")
    assert local.list("curated/") == [
        "curated/bookings/run_id=R1/_SUCCESS",
        "curated/bookings/run_id=R1/part-00000-a1-c000.snappy.parquet",
    ]
    assert local.delete_prefix("curated/bookings/") == 2
    assert os.listdir(tmp_path / "lake") == []


def test_local_discard_unfinished_removes_only_debris_under_the_prefix(tmp_path: Path) -> None:
    local = LocalLake(tmp_path / "lake")
    local.put_bytes("raw/bookings/run_id=R1/part-00000.csv.gz", b"x")
    local.put_bytes("raw/bookings/run_id=R2/part-00000.csv.gz", b"y")
    r1, r2 = (tmp_path / "lake" / "raw" / "bookings" / f"run_id={r}" for r in ("R1", "R2"))
    (r1 / ".tmp-a").write_bytes(b"half")
    (r1 / ".part-00000.csv.gz.crc").write_bytes(b"crc")  # not debris: Spark's checksum file
    (r1 / "_temporary" / "0").mkdir(parents=True)
    (r1 / "_temporary" / "0" / "part-1.parquet").write_bytes(b"PAR1 half")
    (r2 / ".tmp-b").write_bytes(b"half")
    assert local.discard_unfinished("raw/bookings/run_id=R1/") == 2
    assert sorted(os.listdir(r1)) == [".part-00000.csv.gz.crc", "part-00000.csv.gz"]
    assert (r2 / ".tmp-b").exists()
    assert local.discard_unfinished("raw/nothing/") == 0


def test_local_write_is_atomic_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = LocalLake(tmp_path / "lake")
    local.put_bytes("curated/fx/rates.csv", b"old")
    seen: list[tuple[str, bytes]] = []

    def crash(src: str | Path, dst: str | Path) -> None:
        seen.append((Path(src).name[:5], Path(src).read_bytes()))
        raise OSError("disk went away")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk went away"):
        local.put_bytes("raw/bookings/part-00000.csv.gz", b"complete content")
    with pytest.raises(OSError, match="disk went away"):
        local.put_bytes("curated/fx/rates.csv", b"new")
    monkeypatch.undo()
    # The data was complete under a temp name; the failed rename left nothing behind.
    assert seen == [(".tmp-", b"complete content"), (".tmp-", b"new")]
    assert not (tmp_path / "lake" / "raw" / "bookings" / "part-00000.csv.gz").exists()
    assert os.listdir(tmp_path / "lake" / "raw" / "bookings") == []
    assert local.list("raw/") == []
    assert local.get_bytes("curated/fx/rates.csv") == b"old"


def test_local_put_file_across_filesystems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = LocalLake(tmp_path / "lake")
    src = tmp_path / "other-fs" / "part-00000.csv.gz"
    src.parent.mkdir()
    src.write_bytes(b"a" * 3_000_000)
    real_replace = os.replace

    def no_cross_device(a: str | Path, b: str | Path) -> None:
        if Path(a).parent == src.parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(a, b)

    monkeypatch.setattr(os, "replace", no_cross_device)
    local.put_file(src, "raw/bookings/part-00000.csv.gz")
    assert not src.exists()
    assert local.get_bytes("raw/bookings/part-00000.csv.gz") == b"a" * 3_000_000
    assert os.listdir(tmp_path / "lake" / "raw" / "bookings") == ["part-00000.csv.gz"]


# --- S3Lake only --------------------------------------------------------------------------


def test_s3_objects_are_encrypted_and_prefixed(
    s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    lake = S3Lake(BUCKET, "lake/dev", boto3_session=recording_session(calls))
    lake.put_bytes("raw/a/one.csv", b"1")
    small = tmp_path / "two.csv"
    small.write_bytes(b"2")
    lake.put_file(small, "raw/a/two.csv")
    # Lower the threshold so a 9 MiB file goes up in two parts (8 MiB + 1 MiB) on moto.
    monkeypatch.setattr(lake_s3, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (9 * 4096))
    lake.put_file(big, "raw/a/big.bin")
    lake.put_bytes("raw/a/moved.csv", b"3")
    lake.move("raw/a/moved.csv", "archive/a/moved.csv")

    listed = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [o["Key"] for o in listed] == [
        "lake/dev/archive/a/moved.csv",
        "lake/dev/raw/a/big.bin",
        "lake/dev/raw/a/one.csv",
        "lake/dev/raw/a/two.csv",
    ]
    for obj in listed:
        assert s3.head_object(Bucket=BUCKET, Key=obj["Key"])["ServerSideEncryption"] == "AES256"
    assert [name for name, _ in calls].count("UploadPart") == 2
    assert lake.get_bytes("raw/a/big.bin") == bytes(range(256)) * (9 * 4096)
    assert s3.head_object(Bucket=BUCKET, Key="lake/dev/raw/a/big.bin")["ContentLength"] == 9437184


def test_s3_delete_prefix_batches_by_1000(s3: Any) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    lake = S3Lake(BUCKET, "lake/dev", boto3_session=recording_session(calls))
    for i in range(1005):
        s3.put_object(Bucket=BUCKET, Key=f"lake/dev/raw/many/part-{i:05d}.csv", Body=b"x")
    s3.put_object(Bucket=BUCKET, Key="lake/dev/raw/manyother/keep.csv", Body=b"x")
    assert lake.delete_prefix("raw/many/") == 1005
    sizes = [len(p["Delete"]["Objects"]) for name, p in calls if name == "DeleteObjects"]
    assert sizes == [1000, 5]
    assert lake.list("raw/") == ["raw/manyother/keep.csv"]


def test_s3_missing_bucket_names_the_bucket(s3: Any, tmp_path: Path) -> None:
    lake = S3Lake("rentalctl-no-such-bucket", "lake", boto3_session=aws.session("eu-west-1"))
    src = tmp_path / "part.csv"
    src.write_bytes(b"x")
    for call in [
        lambda: lake.put_bytes("raw/a.csv", b"x"),
        lambda: lake.put_file(src, "raw/a.csv"),
        lambda: lake.get_bytes("raw/a.csv"),
        lambda: lake.exists("raw/a.csv"),
        lambda: lake.list("raw/"),
        lambda: lake.move("raw/a.csv", "archive/a.csv"),
        lambda: lake.delete_prefix("raw/"),
    ]:
        with pytest.raises(ResourceUnavailable) as info:
            call()
        assert info.value.exit_code == 3
        assert str(info.value).startswith("S3 bucket 'rentalctl-no-such-bucket' does not exist")
    assert src.read_bytes() == b"x"  # a failed upload does not consume the file


@pytest.mark.parametrize(
    "error, expected",
    [
        (
            ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject"),
            "access to S3 bucket 'rentalctl-test-lake' denied (AccessDenied): check the",
        ),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:9"),
            "cannot reach S3 for bucket 'rentalctl-test-lake' (Could not connect to the "
            'endpoint URL: "http://127.0.0.1:9"): check the network',
        ),
    ],
)
def test_s3_access_and_network_errors(
    aws_credentials: str, tmp_path: Path, error: Exception, expected: str
) -> None:
    def fail(**_: Any) -> None:
        raise error

    session = aws.session("eu-west-1")
    session.events.register("before-call.s3", fail)  # before any request leaves the process
    lake = S3Lake(BUCKET, "lake/dev", boto3_session=session)
    src = tmp_path / "part.csv"
    src.write_bytes(b"x")
    for call in [
        lambda: lake.get_bytes("raw/a.csv"),
        lambda: lake.put_file(src, "raw/a.csv"),
        lambda: lake.list("raw/"),
    ]:
        with pytest.raises(ResourceUnavailable) as info:
            call()
        assert str(info.value).startswith(expected)
