"""S3 lake: the lake on AWS. Lake key ``k`` is object ``<prefix>/k`` in the bucket.

Every object is written with SSE-S3 (``AES256``), including copies, which would otherwise drop
the encryption setting. boto3 and botocore are imported lazily: this module is loaded only when
an S3 lake is opened, and ``rentalctl --help`` must not pay for boto3.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

from rentalctl import aws
from rentalctl.adapters.lake import Lake, check_key
from rentalctl.errors import ConfigError, ResourceUnavailable

MiB = 1024 * 1024
#: Files above this go up in parts (parallel, resumable per part); below it one PUT is cheaper.
MULTIPART_THRESHOLD = 64 * MiB
MAX_CONCURRENCY = 4
DELETE_BATCH = 1000
SSE = {"ServerSideEncryption": "AES256"}

# Codes meaning "these credentials may not do this": the fix is IAM or the profile, not a retry.
_DENIED = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}


def _code(exc: BaseException) -> str:
    """The AWS error code, also through boto3's S3UploadFailedError, which wraps the
    ClientError only as its ``__context__``."""
    seen: BaseException | None = exc
    while seen is not None:
        if code := aws.error_code(seen):
            return code
        seen = seen.__cause__ or seen.__context__
    return ""


def _connection_error(exc: BaseException) -> BaseException | None:
    """The connection failure behind boto3's S3UploadFailedError, if that is what it wraps."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, (BotoConnectionError, HTTPClientError)):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _is_object(object_key: str) -> bool:
    # Zero-byte "folder" markers (made by the S3 console) are not lake objects.
    return not object_key.endswith("/")


class S3Lake(Lake):
    def __init__(self, bucket: str, prefix: str, *, boto3_session: Any | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.name = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._session = boto3_session

    @cached_property
    def _client(self) -> Any:
        # Built on first use, not in __init__: opening the lake must stay free of side effects
        # (aws.client raises ResourceUnavailable when region or credentials are missing).
        return aws.client("s3", self._session)

    def _object_key(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _folder(self, prefix: str) -> str:
        """The object-key prefix of a folder-like lake prefix; '' lists the whole lake."""
        stripped = prefix.rstrip("/")
        if not stripped:
            return f"{self.prefix}/" if self.prefix else ""
        return self._object_key(stripped) + "/"

    def _s3_uri(self, object_key: str) -> str:
        return f"s3://{self.bucket}/{object_key}"

    @contextmanager
    def _errors(self, not_found: str | None = None) -> Iterator[None]:
        """Turn the errors a user can fix or wait out into ResourceUnavailable: a missing bucket,
        denied access, and throttling, service errors or a lost connection that outlived the
        client's retries (the state machine retries ResourceUnavailable). Anything else is a bug
        and propagates unchanged."""
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        try:
            yield
        except (ClientError, S3UploadFailedError) as exc:
            code = _code(exc)
            lost = _connection_error(exc)
            if lost is not None:
                raise self._unreachable(lost) from None
            if code in aws.BUSY_CODES:
                raise ResourceUnavailable(f"S3 bucket {self.bucket!r} {aws.busy(code)}") from None
            if code == "NoSuchBucket":
                raise ResourceUnavailable(
                    f"S3 bucket {self.bucket!r} does not exist: check lake.url "
                    "(RENTALCTL_LAKE_URL) and the AWS account the credentials belong to"
                ) from None
            if code in _DENIED:
                raise ResourceUnavailable(
                    f"access to S3 bucket {self.bucket!r} denied ({code}): check the credentials "
                    f"(AWS_PROFILE) and that they allow s3:ListBucket, s3:GetObject, "
                    f"s3:PutObject and s3:DeleteObject on {self.name}/*"
                ) from None
            if not_found and code in ("NoSuchKey", "404"):
                raise ResourceUnavailable(not_found) from None
            raise
        except (BotoConnectionError, HTTPClientError) as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: BaseException) -> ResourceUnavailable:
        return ResourceUnavailable(
            f"cannot reach S3 for bucket {self.bucket!r} ({exc}): check the network, "
            "AWS_REGION and AWS_ENDPOINT_URL"
        )

    def put_file(self, local_path: Path, key: str) -> None:
        from boto3.s3.transfer import TransferConfig

        object_key = self._object_key(key)
        config = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD, max_concurrency=MAX_CONCURRENCY
        )
        # Atomic by nature: S3 makes an object visible only when its PUT, or the
        # CompleteMultipartUpload of all its parts, succeeds; an aborted upload shows nothing.
        with self._errors():
            self._client.upload_file(
                str(local_path), self.bucket, object_key, ExtraArgs=SSE, Config=config
            )
        Path(local_path).unlink()

    def put_bytes(self, key: str, data: bytes) -> None:
        object_key = self._object_key(key)
        with self._errors():
            self._client.put_object(Bucket=self.bucket, Key=object_key, Body=data, **SSE)

    def get_bytes(self, key: str) -> bytes:
        object_key = self._object_key(key)
        with self._errors(not_found=f"lake object not found: {self._s3_uri(object_key)}"):
            response = self._client.get_object(Bucket=self.bucket, Key=object_key)
            return bytes(response["Body"].read())

    def exists(self, key: str) -> bool:
        object_key = self._object_key(key)
        # A one-key LIST rather than HEAD: HEAD answers a bare 404 both for a missing key and a
        # missing bucket, and the bucket case must be an error, not "False".
        with self._errors():
            response = self._client.list_objects_v2(
                Bucket=self.bucket, Prefix=object_key, MaxKeys=1
            )
        contents = response.get("Contents", [])
        return bool(contents) and contents[0]["Key"] == object_key

    def size(self, key: str) -> int:
        object_key = self._object_key(key)
        with self._errors(not_found=f"lake object not found: {self._s3_uri(object_key)}"):
            response = self._client.head_object(Bucket=self.bucket, Key=object_key)
        return int(response["ContentLength"])

    def _pages(self, folder: str, page_size: int = 1000) -> Iterator[list[str]]:
        """Object keys under ``folder``, one list per LIST page (S3 caps pages at 1,000)."""
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket, Prefix=folder, PaginationConfig={"PageSize": page_size}
        )
        with self._errors():
            for page in pages:
                yield [o["Key"] for o in page.get("Contents", [])]

    def list(self, prefix: str) -> list[str]:
        root = len(f"{self.prefix}/") if self.prefix else 0
        pages = self._pages(self._folder(prefix))
        return sorted(k[root:] for page in pages for k in page if _is_object(k))

    def move(self, key: str, new_key: str) -> None:
        from botocore.exceptions import ClientError

        src, dest = self._object_key(key), self._object_key(new_key)
        if src == dest:
            # Copy-then-delete onto itself would delete the object.
            if not self.exists(key):
                raise ResourceUnavailable(f"cannot move {self._s3_uri(src)}: object not found")
            return
        # CopyObject handles objects up to 5 GB; lake files are run parts, far below that.
        with self._errors():
            try:
                source = {"Bucket": self.bucket, "Key": src}
                self._client.copy_object(Bucket=self.bucket, Key=dest, CopySource=source, **SSE)
            except ClientError as exc:
                if _code(exc) not in ("NoSuchKey", "404"):
                    raise
                if self.exists(new_key):
                    return  # an earlier attempt already moved it
                raise ResourceUnavailable(
                    f"cannot move {self._s3_uri(src)}: object not found"
                ) from None
            # A crash before this delete leaves both copies; the retry copies again and deletes.
            self._client.delete_object(Bucket=self.bucket, Key=src)

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.rstrip("/"):
            # Refused rather than supported: one empty string would wipe the whole lake.
            raise ConfigError("refusing to delete the whole lake (empty prefix)")
        folder = self._folder(prefix)
        deleted = 0
        # One DeleteObjects per LIST page: pages are capped at DELETE_BATCH keys, the most one
        # DeleteObjects accepts. Deleting as we go is safe: listing resumes after the last key.
        for batch in self._pages(folder, page_size=DELETE_BATCH):
            if not batch:
                continue
            with self._errors():
                response = self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
                )
            if errors := response.get("Errors"):
                first = errors[0]
                raise ResourceUnavailable(
                    f"could not delete {len(errors)} object(s) under {self._s3_uri(folder)}, "
                    f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )
            # Folder markers go too (nothing is left behind) but were never lake objects.
            deleted += sum(map(_is_object, batch))
        return deleted

    def uri(self, key: str) -> str:
        return self._s3_uri(self._object_key(key))
