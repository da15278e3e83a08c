"""Redshift warehouse over redshift_connector: COPY from S3 with an IAM role, then a replace of
the run's rows, all in one transaction.

COPY reads a COPY manifest that lists exactly the run's part files (never a prefix, which could
pick up another run's files). When COPY fails, the offending file, line, column and value are
read from the load-error system tables and put into the error message.

redshift_connector's ``timeout`` is the socket's timeout for the connection's whole life, so a
statement running longer than it would die mid-way: it bounds the connect and the login only,
and is lifted once the connection is open. A connection lost at any point (a timeout, a reset,
the cluster restarting) is ResourceUnavailable: the server rolls the transaction back, and the
state machine's Retry runs the step again.

redshift_connector and botocore are imported where used: importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rentalctl import aws, urls
from rentalctl.adapters.warehouse import (
    META_COLUMNS,
    RAW_SCHEMA,
    Warehouse,
    check_loaded,
    raw_table_ddl,
)
from rentalctl.errors import ConfigError, PipelineFailed, ResourceUnavailable
from rentalctl.run.ids import check_run_id
from rentalctl.run.layout import run_prefix
from rentalctl.run.manifest import Manifest
from rentalctl.tables import TableSpec, table

if TYPE_CHECKING:
    from rentalctl.adapters.lake import Lake
    from rentalctl.config import Settings

COPY_MANIFEST = "_copy.manifest"
#: seconds to open a connection and log in; statements have no client-side limit
CONNECT_TIMEOUT = 30
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
    """Redshift's serializable isolation conflict (1023: a concurrent transaction touched the
    same tables): the transaction was rolled back and the same statements may well pass later,
    so the state machine's Retry should get it. Anything else is the SQL or the data (a lost
    connection never gets here: ``_execute`` reports it)."""
    return "serializable isolation violation" in str(exc).lower()


def write_copy_manifest(lake: Lake, manifest_key: str, keys: Sequence[str]) -> str:
    """Write a COPY manifest naming exactly ``keys`` at ``manifest_key``; returns its URI.

    Each entry carries ``meta.content_length``, the object's real size in bytes: COPY requires
    it for Parquet and ORC files, and accepts it for CSV (UNLOAD writes it for every format), so
    every manifest is built the same way."""
    entries = [
        {"url": lake.uri(key), "mandatory": True, "meta": {"content_length": lake.size(key)}}
        for key in keys
    ]
    lake.put_bytes(manifest_key, json.dumps({"entries": entries}).encode())
    return lake.uri(manifest_key)


class RedshiftWarehouse(Warehouse):
    dialect = "redshift"
    placeholder = "%s"

    def __init__(self, conn: Any, name: str, copy_role_arn: str | None) -> None:
        self.conn = conn
        self.name = name
        self.copy_role_arn = copy_role_arn

    @classmethod
    def connect(cls, settings: Settings, boto3_session: Any) -> RedshiftWarehouse:
        """Connect; the secret (when configured) is read through ``boto3_session``, the
        Context's session, so every AWS call of a run uses the same credentials."""
        import redshift_connector

        url = settings.warehouse
        assert isinstance(url, urls.RedshiftURL)
        kwargs: dict[str, Any] = dict(
            host=url.host,
            port=url.port,
            database=url.database,
            user=url.user,
            timeout=CONNECT_TIMEOUT,
        )
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if settings.aws.redshift_secret_arn:
                client = aws.client("secretsmanager", boto3_session)
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
            # The driver has no connect-only timeout: lift the socket timeout now that the
            # connection is open, or every statement would die after CONNECT_TIMEOUT seconds.
            conn._usock.settimeout(None)
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
        import redshift_connector

        try:
            cursor = self.conn.cursor()
            cursor.execute(sql, tuple(params) if params else None)
        except (OSError, redshift_connector.InterfaceError) as exc:
            raise self._lost(exc) from None
        return cursor

    def _lost(self, exc: BaseException) -> ResourceUnavailable:
        """The connection broke: the driver raises the socket's own error (TimeoutError,
        ConnectionResetError, ...) or InterfaceError. Redshift rolls back what was not committed;
        a COMMIT whose answer was lost may have been applied, which a retry can take: raw loads
        and merges are idempotent."""
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return ResourceUnavailable(
            f"lost the connection to {self.name} ({detail}); anything not committed is rolled "
            "back (worth a retry)"
        )

    def _commit(self) -> None:
        import redshift_connector

        try:
            self.conn.commit()
        except (OSError, redshift_connector.InterfaceError) as exc:
            raise self._lost(exc) from None

    def _rollback(self) -> None:
        """Roll back what this session has not committed; a connection that is gone has nothing
        left to roll back (the server did it), so its errors are not worth reporting."""
        import redshift_connector

        with contextlib.suppress(OSError, redshift_connector.Error):
            self.conn.rollback()

    def ensure_raw(self, tables: Sequence[TableSpec]) -> None:
        self._execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
        for spec in tables:
            self._execute(raw_table_ddl(spec, _quote))
        self._commit()

    def load_raw(self, lake: Lake, manifest: Manifest) -> int:
        spec = table(manifest.table)
        if not self.copy_role_arn:
            raise ConfigError("aws.redshift_copy_role_arn is required to COPY into Redshift")
        literal(self.copy_role_arn)  # refused before any side effect, not at the COPY
        check_run_id(manifest.run_id, "run id")  # it goes into the COPY manifest's key
        self.ensure_raw([spec])
        target = f"{RAW_SCHEMA}.{_quote(spec.name)}"
        stage = _quote(f"stage_{spec.name}")
        cols = ", ".join(_quote(c) for c in spec.column_names)
        copy_manifest = (
            run_prefix(spec.name, manifest.run_id) + COPY_MANIFEST if manifest.files else None
        )
        if copy_manifest:
            write_copy_manifest(lake, copy_manifest, [f.key for f in manifest.files])
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
            self._commit()
        except BaseException:
            self._rollback()
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
            self._rollback()
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
                self._rollback()
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
            self._commit()
        except redshift_connector.Error as exc:
            self._rollback()
            if _transient(exc):
                raise ResourceUnavailable(
                    f"warehouse transaction interrupted and rolled back (worth a retry): {exc}"
                ) from None
            raise PipelineFailed(
                f"warehouse transaction failed and was rolled back: {exc}"
            ) from None
        except BaseException:
            self._rollback()
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
            location = write_copy_manifest(lake, manifest_key, keys)
            out.append(
                f"COPY {_quote(stage)} FROM {literal(location)} "
                f"IAM_ROLE {literal(self.copy_role_arn)} MANIFEST FORMAT AS PARQUET"
            )
        return out

    def stage_integers(
        self, lake: Lake, key: str, stage: str, columns: Sequence[str]
    ) -> list[str | tuple[str, Sequence[Any]]]:
        if not self.copy_role_arn:
            raise ConfigError("aws.redshift_copy_role_arn is required to COPY into Redshift")
        folder, name = key.rsplit("/", 1)
        manifest = f"{folder}/{name.removesuffix('.csv.gz')}.copy.manifest"
        location = write_copy_manifest(lake, manifest, [key])
        types = ", ".join(f"{_quote(c)} BIGINT" for c in columns)
        return [
            f"DROP TABLE IF EXISTS {_quote(stage)}",
            f"CREATE TEMP TABLE {_quote(stage)} ({types})",
            f"COPY {_quote(stage)} FROM {literal(location)} "
            f"IAM_ROLE {literal(self.copy_role_arn)} MANIFEST FORMAT AS CSV GZIP IGNOREHEADER 1",
        ]

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self._execute(sql, params).fetchall())

    def close(self) -> None:
        import redshift_connector

        # Closing a connection that already broke must not hide the error that broke it.
        with contextlib.suppress(OSError, redshift_connector.Error):
            self.conn.close()
