"""Which implementation each configured URL picks: the one place that maps a lake, source,
state or warehouse URL to its adapter. Apart from the ports, so that a port never imports its
implementations; each implementation is imported when picked, so that a command loads only
the drivers it uses (``rentalctl --help`` none)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rentalctl import urls
from rentalctl.adapters.source import PASSWORD_ENV

if TYPE_CHECKING:
    from rentalctl.adapters.lake import Lake
    from rentalctl.adapters.source import Source
    from rentalctl.adapters.state import StateStore
    from rentalctl.adapters.warehouse import Warehouse
    from rentalctl.config import Settings


def open_lake(url: urls.LakeURL, *, boto3_session: Any | None = None) -> Lake:
    if isinstance(url, urls.FileURL):
        from rentalctl.adapters.lake_local import LocalLake

        return LocalLake(url.path)
    from rentalctl.adapters.lake_s3 import S3Lake

    return S3Lake(url.bucket, url.prefix, boto3_session=boto3_session)


def open_source(
    url: urls.SourceURL, *, create: bool = False, env: Mapping[str, str] | None = None
) -> Source:
    """Connect to the configured source. ``create`` allows a new SQLite file or MySQL database
    (demo data); otherwise a missing database is a ResourceUnavailable error (exit 3)."""
    env = os.environ if env is None else env
    if isinstance(url, urls.SqliteURL):
        from rentalctl.adapters.source_sqlite import SqliteSource

        return SqliteSource(url, create=create)
    from rentalctl.adapters.source_mysql import MysqlSource

    return MysqlSource(url, password=env.get(PASSWORD_ENV, ""), create=create)


def open_state(url: urls.StateURL, *, boto3_session: Any | None = None) -> StateStore:
    if isinstance(url, urls.SqliteURL):
        from rentalctl.adapters.state_sqlite import SqliteStateStore

        return SqliteStateStore(url.path)
    from rentalctl.adapters.state_dynamodb import DynamoStateStore

    return DynamoStateStore(url.table, boto3_session=boto3_session)


def open_warehouse(settings: Settings, boto3_session: Any | None = None) -> Warehouse:
    """The configured warehouse; ``boto3_session`` (the Context's) serves an AWS one."""
    if isinstance(settings.warehouse, urls.DuckdbURL):
        from rentalctl.adapters.warehouse_duckdb import DuckdbWarehouse

        return DuckdbWarehouse(settings.warehouse.path)
    from rentalctl.adapters.warehouse_redshift import RedshiftWarehouse

    return RedshiftWarehouse.connect(settings, boto3_session)
