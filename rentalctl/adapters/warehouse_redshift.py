"""Redshift warehouse over redshift_connector: COPY from S3 with an IAM role, then a replace of
the run's rows, all in one transaction.

COPY reads a COPY manifest that lists exactly the run's part files (never a prefix, which could
pick up another run's files). When COPY fails, the offending file, line, column and value are
read from the load-error system tables and put into the error message.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rentalctl.adapters.warehouse import (
    META_COLUMNS,
    RAW_SCHEMA,
    Warehouse,
    check_loaded,
    raw_table_ddl,
)
from rentalctl.errors import ConfigError, PipelineFailed, ResourceUnavailable
from rentalctl.pipeline.rawfiles import run_prefix
from rentalctl.tables import TableSpec, table

if TYPE_CHECKING:
    from rentalctl.adapters.lake import Lake
    from rentalctl.config import Settings
    from rentalctl.pipeline.rawfiles import Manifest

COPY_MANIFEST = "_copy.manifest"
# Provisioned clusters record load errors in STL_LOAD_ERRORS, Serverless in SYS_LOAD_ERROR_DETAIL.
_LOAD_ERRORS = (
    "SELECT TRIM(filename), line_number, TRIM(colname), TRIM(raw_field_value), TRIM(err_reason) "
    "FROM stl_load_errors WHERE query = pg_last_copy_id() ORDER BY line_number LIMIT 5",
    "SELECT TRIM(file_name), line_number, TRIM(column_name), TRIM(column_value), "
    "TRIM(error_message) FROM sys_load_error_detail WHERE query_id = pg_last_copy_id() "
    "ORDER BY line_number LIMIT 5",
)


def literal(value: str) -> str:
    """A SQL string literal for COPY's location and role, which cannot be bound parameters.
    The values come from configuration and code, never from data; quotes are refused."""
    if "'" in value or "\\" in value or not value:
        raise ConfigError(f"refusing to put {value!r} into a COPY statement")
    return f"'{value}'"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _transient(exc: Exception) -> bool:
    """A lost connection (InterfaceError: the socket broke, the cluster restarted or resized)
    or Redshift's serializable isolation conflict (1023: a concurrent transaction touched the
    same tables): the transaction was rolled back and the same statements may well pass later,
    so the state machine's Retry should get it. Anything else is the SQL or the data."""
    import redshift_connector

    return isinstance(exc, redshift_connector.InterfaceError) or (
        "serializable isolation violation" in str(exc).lower()
    )


class RedshiftWarehouse(Warehouse):
    dialect = "redshift"
    placeholder = "%s"

    def __init__(self, conn: Any, name: str, copy_role_arn: str | None) -> None:
        self.conn = conn
        self.name = name
        self.copy_role_arn = copy_role_arn

    @classmethod
    def connect(cls, settings: Settings) -> RedshiftWarehouse:
        import redshift_connector

        from rentalctl import aws, urls

        url = settings.warehouse
        assert isinstance(url, urls.RedshiftURL)
        kwargs: dict[str, Any] = dict(
            host=url.host, port=url.port, database=url.database, user=url.user, timeout=30
        )
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if settings.aws.redshift_secret_arn:
                client = aws.client("secretsmanager", aws.session(settings.aws.region))
                secret_id = settings.aws.redshift_secret_arn
                secret = json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])
                kwargs.update(user=secret.get("username", url.user), password=secret["password"])
            else:
                # IAM authentication: temporary credentials for the database user, from
                # redshift-serverless:GetCredentials or redshift:GetClusterCredentials.
                kwargs.update(iam=True, db_user=url.user, region=settings.aws.region)
                if url.serverless:
                    kwargs.update(is_serverless=True, serverless_work_group=url.identifier)
                else:
                    kwargs.update(cluster_identifier=url.identifier)
            conn = redshift_connector.connect(**kwargs)
        except (redshift_connector.Error, BotoCoreError, ClientError, OSError, KeyError) as exc:
            # Every way of not getting a connection (the secret, IAM, the network, the login)
            # is "unreachable"; the secret's content is never part of the message.
            what = type(exc).__name__ if isinstance(exc, KeyError) else str(exc)
            raise ResourceUnavailable(
                f"cannot connect to Redshift at {url.host}:{url.port}, database "
                f"{url.database!r}, user {kwargs['user']!r}: {what}"
            ) from None
        conn.autocommit = False
        return cls(conn, str(url), settings.aws.redshift_copy_role_arn)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cursor = self.conn.cursor()
        cursor.execute(sql, tuple(params) if params else None)
        return cursor

    def ensure_raw(self, tables: Sequence[TableSpec]) -> None:
        self._execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
        for spec in tables:
            self._execute(raw_table_ddl(spec, _quote))
        self.conn.commit()

    def load_raw(self, lake: Lake, manifest: Manifest) -> int:
        spec = table(manifest.table)
        if not self.copy_role_arn:
            raise ConfigError("aws.redshift_copy_role_arn is required to COPY into Redshift")
        literal(self.copy_role_arn)  # refused before any side effect, not at the COPY
        if not re.fullmatch(r"[A-Za-z0-9T:.=_-]+", manifest.run_id):
            raise ConfigError(f"invalid run id {manifest.run_id!r}")
        self.ensure_raw([spec])
        target = f"{RAW_SCHEMA}.{_quote(spec.name)}"
        stage = _quote(f"stage_{spec.name}")
        cols = ", ".join(_quote(c) for c in spec.column_names)
        copy_manifest = (
            run_prefix(spec.name, manifest.run_id) + COPY_MANIFEST if manifest.files else None
        )
        if copy_manifest:
            entries = [{"url": lake.uri(f.key), "mandatory": True} for f in manifest.files]
            lake.put_bytes(copy_manifest, json.dumps({"entries": entries}).encode())
        try:
            self._execute(f"CREATE TEMP TABLE {stage} (LIKE {target})")
            if copy_manifest:
                self._copy(stage, cols, lake.uri(copy_manifest), spec, manifest)
            self._execute(f'DELETE FROM {target} WHERE "_run_id" = %s', [manifest.run_id])
            meta = ", ".join(_quote(name) for name, _ in META_COLUMNS)
            self._execute(
                f"INSERT INTO {target} ({cols}, {meta}) SELECT {cols}, %s, "
                f"CAST(%s AS TIMESTAMP) FROM {stage}",
                [manifest.run_id, manifest.extracted_at.rstrip("Z").replace("T", " ")],
            )
            loaded = self._execute(
                f'SELECT COUNT(*) FROM {target} WHERE "_run_id" = %s', [manifest.run_id]
            ).fetchone()[0]
            check_loaded(manifest, loaded)
            self._execute(f"DROP TABLE {stage}")
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        return int(loaded)

    def _copy(
        self, stage: str, cols: str, location: str, spec: TableSpec, manifest: Manifest
    ) -> None:
        import redshift_connector

        sql = (
            f"COPY {stage} ({cols}) FROM {literal(location)} "
            f"IAM_ROLE {literal(self.copy_role_arn or '')} MANIFEST "
            "FORMAT AS CSV GZIP IGNOREHEADER 1 TIMEFORMAT 'auto' DATEFORMAT 'YYYY-MM-DD' "
            "COMPUPDATE OFF STATUPDATE OFF"
        )
        try:
            self._execute(sql)
        except redshift_connector.Error as exc:
            self.conn.rollback()
            raise PipelineFailed(
                f"COPY into raw.{spec.name} for run {manifest.run_id} failed: "
                f"{self._load_errors() or exc}"
            ) from None

    def _load_errors(self) -> str:
        """The first load errors of the last COPY in this session, as one readable line."""
        import redshift_connector

        for sql in _LOAD_ERRORS:
            try:
                rows = self._execute(sql).fetchall()
            except redshift_connector.Error:
                self.conn.rollback()
                continue
            if rows:
                return "; ".join(
                    f"{file} line {line}, column {col}, value {value!r}: {reason}"
                    for file, line, col, value, reason in rows
                )
        return ""

    def execute_transaction(self, statements: Sequence[str | tuple[str, Sequence[Any]]]) -> None:
        import redshift_connector

        try:
            for statement in statements:
                sql, params = (statement, ()) if isinstance(statement, str) else statement
                self._execute(sql, params)
            self.conn.commit()
        except redshift_connector.Error as exc:
            with contextlib.suppress(redshift_connector.Error):  # the connection may be gone
                self.conn.rollback()
            if _transient(exc):
                raise ResourceUnavailable(
                    f"warehouse transaction interrupted and rolled back (worth a retry): {exc}"
                ) from None
            raise PipelineFailed(
                f"warehouse transaction failed and was rolled back: {exc}"
            ) from None
        except BaseException:
            self.conn.rollback()
            raise

    def stage_parquet(
        self, lake: Lake, keys: Sequence[str], stage: str, like: str
    ) -> list[str | tuple[str, Sequence[Any]]]:
        out: list[str | tuple[str, Sequence[Any]]] = [
            f"DROP TABLE IF EXISTS {_quote(stage)}",
            f"CREATE TEMP TABLE {_quote(stage)} (LIKE {like})",
        ]
        if keys:
            if not self.copy_role_arn:
                raise ConfigError("aws.redshift_copy_role_arn is required to COPY into Redshift")
            # A COPY manifest naming exactly these files, next to them.
            manifest_key = keys[0].rsplit("/", 1)[0] + "/" + COPY_MANIFEST
            entries = [{"url": lake.uri(key), "mandatory": True} for key in keys]
            lake.put_bytes(manifest_key, json.dumps({"entries": entries}).encode())
            out.append(
                f"COPY {_quote(stage)} FROM {literal(lake.uri(manifest_key))} "
                f"IAM_ROLE {literal(self.copy_role_arn)} MANIFEST FORMAT AS PARQUET"
            )
        return out

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._execute(sql, params).fetchall())

    def close(self) -> None:
        self.conn.close()
