"""Parsing of the four resource URLs (docs/contract.md §2) into typed values.

Only the forms below are accepted; anything else is a configuration error that says which forms
would be. A password in a URL is refused: passwords come from the environment or a secret store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Union

from rentalctl.errors import InvalidSetting


@dataclass(frozen=True)
class _PathURL:
    """A database or folder on this machine."""

    path: Path
    scheme: ClassVar[str]

    def __str__(self) -> str:
        return f"{self.scheme}{self.path}"


class SqliteURL(_PathURL):
    scheme = "sqlite:///"


class FileURL(_PathURL):
    scheme = "file://"


class DuckdbURL(_PathURL):
    scheme = "duckdb:///"


@dataclass(frozen=True)
class _ServerURL:
    """A database server; never with a password."""

    user: str
    host: str
    port: int
    database: str
    scheme: ClassVar[str]

    def __str__(self) -> str:
        return f"{self.scheme}://{self.user}@{self.host}:{self.port}/{self.database}"


class MysqlURL(_ServerURL):
    scheme = "mysql"


class RedshiftURL(_ServerURL):
    scheme = "redshift"

    @property
    def serverless(self) -> bool:
        """Whether the host is a Serverless workgroup's endpoint (else a provisioned cluster's)."""
        return "redshift-serverless" in self.host

    @property
    def identifier(self) -> str:
        """The first label of the host: the cluster identifier, or the workgroup's name."""
        return self.host.split(".")[0]


@dataclass(frozen=True)
class S3URL:
    bucket: str
    prefix: str  # without leading or trailing slash; may be empty

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


@dataclass(frozen=True)
class DynamodbURL:
    table: str

    def __str__(self) -> str:
        return f"dynamodb://{self.table}"


# Union, not |: these aliases are evaluated at import time, on Python 3.9 in Glue Python shell.
SourceURL = Union[SqliteURL, MysqlURL]
LakeURL = Union[FileURL, S3URL]
WarehouseURL = Union[DuckdbURL, RedshiftURL]
StateURL = Union[SqliteURL, DynamodbURL]

_SERVER = re.compile(
    r"(?P<scheme>[a-z]+)://(?P<user>[^@:/]+)@(?P<host>[^:/@]+)"
    r"(?::(?P<port>\d{1,5}))?/(?P<db>[A-Za-z0-9_$.-]+)"
)
_S3 = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>.*))?")
_DYNAMODB = re.compile(r"dynamodb://(?P<table>[A-Za-z0-9_.-]{3,255})")


def mask(url: str) -> str:
    """The URL with any password replaced by ***, safe to show in a message or a log."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, hostpart = rest.rpartition("@")
    if ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    return f"{scheme}://{userinfo}@{hostpart}"


# DuckDB takes a backslash in a file path for a folder separator (as on Windows), so a lake or
# warehouse under such a folder would pass every check and then be looked for elsewhere at the
# raw load. Refused up front instead.
NO_BACKSLASH = "a path without a backslash (\\): DuckDB reads one as a folder separator"


def _path_after(
    url: str, scheme: str, base: Path, key: str, origin: str | None, forms: str
) -> Path:
    raw = url[len(scheme) :]
    if not raw.strip():
        raise InvalidSetting(key, url, f"a URL with a file path ({forms})", origin)
    if "\\" in raw:
        raise InvalidSetting(key, url, NO_BACKSLASH, origin)
    path = Path(raw)
    return path if path.is_absolute() else (base / path).resolve()


def _server(url: str, scheme: str, default_port: int, key: str, origin: str | None, forms: str):
    shown = mask(url)
    if shown != url:  # checked first: a URL with a password is never echoed as it is
        raise InvalidSetting(
            key,
            shown,
            f"a URL without a password ({forms}); set the password in the environment "
            f"(RENTALCTL_SOURCE_PASSWORD) or in Secrets Manager, never in configuration",
            origin,
        )
    m = _SERVER.fullmatch(url)
    if not m or m.group("scheme") != scheme:
        raise InvalidSetting(key, url, forms, origin)
    port = int(m.group("port") or default_port)
    if not 0 < port < 65536:
        raise InvalidSetting(key, url, f"a port between 1 and 65535 ({forms})", origin)
    return m.group("user"), m.group("host"), port, m.group("db")


def parse_source(url: str, base: Path, key: str = "source.url", origin: str | None = None):
    forms = "sqlite:///PATH or mysql://USER@HOST[:PORT]/DATABASE"
    if url.startswith("sqlite:///"):
        return SqliteURL(_path_after(url, "sqlite:///", base, key, origin, forms))
    if url.startswith("mysql://"):
        return MysqlURL(*_server(url, "mysql", 3306, key, origin, forms))
    raise InvalidSetting(key, mask(url), forms, origin)


def parse_lake(url: str, base: Path, key: str = "lake.url", origin: str | None = None):
    forms = "file://PATH or s3://BUCKET[/PREFIX]"
    if url.startswith("file://") and len(url) > len("file://"):
        return FileURL(_path_after(url, "file://", base, key, origin, forms))
    if m := _S3.fullmatch(url):
        return S3URL(m.group("bucket"), (m.group("prefix") or "").strip("/"))
    raise InvalidSetting(key, mask(url), forms, origin)


def parse_warehouse(url: str, base: Path, key: str = "warehouse.url", origin: str | None = None):
    forms = "duckdb:///PATH or redshift://USER@HOST[:PORT]/DATABASE"
    if url.startswith("duckdb:///"):
        return DuckdbURL(_path_after(url, "duckdb:///", base, key, origin, forms))
    if url.startswith("redshift://"):
        return RedshiftURL(*_server(url, "redshift", 5439, key, origin, forms))
    raise InvalidSetting(key, mask(url), forms, origin)


def parse_state(url: str, base: Path, key: str = "state.url", origin: str | None = None):
    forms = "sqlite:///PATH or dynamodb://TABLE"
    if url.startswith("sqlite:///"):
        return SqliteURL(_path_after(url, "sqlite:///", base, key, origin, forms))
    if m := _DYNAMODB.fullmatch(url):
        return DynamodbURL(m.group("table"))
    raise InvalidSetting(key, mask(url), forms, origin)
