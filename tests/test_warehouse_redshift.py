"""The Redshift warehouse adapter (rentalctl/adapters/warehouse_redshift.py) against a FAKE
connection: no Redshift exists here and redshift_connector cannot talk to PostgreSQL.

The fake records every statement (SQL text and bound parameters) and every transaction call in
order, and answers from a small script. Like Redshift, a failed statement aborts the
transaction: every further statement fails until a rollback. The lake is an S3Lake on moto
in-process under a non-empty prefix, so the COPY manifest is a real object that is read back.
Every expected statement and message is written out literally.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any

import pytest
import redshift_connector
import sqlglot
from sqlglot import exp

from rentalctl import aws
from rentalctl.adapters.lake_s3 import S3Lake
from rentalctl.adapters.warehouse_redshift import RedshiftWarehouse, literal
from rentalctl.errors import ConfigError, ExitCode, PipelineFailed, ResourceUnavailable
from rentalctl.run.manifest import Manifest, PartFile
from rentalctl.tables import TABLES

BUCKET = "rentalctl-test-lake"
PREFIX = "lake/dev"
ROLE = "arn:aws:iam::123456789012:role/copy"
NAME = "redshift://u@h:5439/db"
PART0 = "raw/bookings/run_id=R1/part-00000.csv.gz"
PART1 = "raw/bookings/run_id=R1/part-00001.csv.gz"
COPY_MANIFEST_KEY = "raw/bookings/run_id=R1/_copy.manifest"
COPY_MANIFEST_URI = f"s3://{BUCKET}/{PREFIX}/{COPY_MANIFEST_KEY}"

# ---------------------------------------------------------------- the statements, literally

CREATE_SCHEMA = "CREATE SCHEMA IF NOT EXISTS raw"
CREATE_BOOKINGS = """CREATE TABLE IF NOT EXISTS raw."bookings" (
    "booking_id" BIGINT,
    "user_id" BIGINT,
    "apartment_id" BIGINT,
    "booking_date" TIMESTAMP,
    "checkin_date" DATE,
    "checkout_date" DATE,
    "total_price" DECIMAL(12,2),
    "currency" VARCHAR(40),
    "booking_status" VARCHAR(80),
    "last_modified_timestamp" TIMESTAMP,
    "_run_id" VARCHAR(64),
    "_extracted_at" TIMESTAMP
)"""
CREATE_STAGE = 'CREATE TEMP TABLE "stage_bookings" (LIKE raw."bookings")'
COLUMNS = (
    '"booking_id", "user_id", "apartment_id", "booking_date", "checkin_date", '
    '"checkout_date", "total_price", "currency", "booking_status", "last_modified_timestamp"'
)
COPY = (
    f'COPY "stage_bookings" ({COLUMNS}) '
    "FROM 's3://rentalctl-test-lake/lake/dev/raw/bookings/run_id=R1/_copy.manifest' "
    "IAM_ROLE 'arn:aws:iam::123456789012:role/copy' MANIFEST "
    "FORMAT AS CSV GZIP IGNOREHEADER 1 TIMEFORMAT 'auto' DATEFORMAT 'YYYY-MM-DD' "
    "COMPUPDATE OFF STATUPDATE OFF"
)
DELETE = 'DELETE FROM raw."bookings" WHERE "_run_id" = %s'
INSERT = (
    f'INSERT INTO raw."bookings" ({COLUMNS}, "_run_id", "_extracted_at") '
    f'SELECT {COLUMNS}, %s, CAST(%s AS TIMESTAMP) FROM "stage_bookings"'
)
COUNT = 'SELECT COUNT(*) FROM raw."bookings" WHERE "_run_id" = %s'
DROP_STAGE = 'DROP TABLE "stage_bookings"'
STL_LOAD_ERRORS = (
    "SELECT TRIM(filename), line_number, TRIM(colname), TRIM(raw_field_value), TRIM(err_reason) "
    "FROM stl_load_errors WHERE query = pg_last_copy_id() ORDER BY line_number LIMIT 5"
)
SYS_LOAD_ERROR_DETAIL = (
    "SELECT TRIM(file_name), line_number, TRIM(column_name), TRIM(column_value), "
    "TRIM(error_message) FROM sys_load_error_detail WHERE query_id = pg_last_copy_id() "
    "ORDER BY line_number LIMIT 5"
)
EXTRACTED_AT = "2025-04-01 03:00:00.123456"  # the manifest's 2025-04-01T03:00:00.123456Z

LOAD_ERROR_ROW = (
    "s3://b/raw/bookings/run_id=R1/part-00001.csv.gz",
    42,
    "total_price",
    "12,50",
    "Invalid digit, Value ',', Pos 2",
)
LOAD_ERROR_TEXT = (
    "s3://b/raw/bookings/run_id=R1/part-00001.csv.gz line 42, column total_price, "
    "value '12,50': Invalid digit, Value ',', Pos 2"
)


# ---------------------------------------------------------------------------- the fake driver


class FakeCursor:
    def __init__(self, conn: FakeConnection) -> None:
        self._conn = conn
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._rows = self._conn._run(sql, params)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)


class FakeConnection:
    """``events``: ("execute", sql, params), ("commit",), ("rollback",), ("close",) in order.

    ``replies``: (needle, reply) pairs; the first whose needle occurs in the SQL answers: a list
    of rows, or an exception instance, which is raised and aborts the transaction."""

    def __init__(self, replies: Sequence[tuple[str, Any]] = ()) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.replies = list(replies)
        self.aborted = False

    def cursor(self) -> FakeCursor:
        return FakeCursor(self)

    def _run(self, sql: str, params: Sequence[Any] | None) -> list[tuple[Any, ...]]:
        self.events.append(("execute", sql, params))
        if self.aborted:
            raise redshift_connector.InternalError(
                "current transaction is aborted, commands ignored until end of transaction block"
            )
        for needle, reply in self.replies:
            if needle in sql:
                if isinstance(reply, BaseException):
                    self.aborted = True
                    raise reply
                return list(reply)
        return []

    def commit(self) -> None:
        self.events.append(("commit",))
        self.aborted = False

    def rollback(self) -> None:
        self.events.append(("rollback",))
        self.aborted = False

    def close(self) -> None:
        self.events.append(("close",))

    def statements(self) -> list[str]:
        return [e[1] for e in self.events if e[0] == "execute"]


def ok_count(rows: int) -> list[tuple[str, Any]]:
    return [("SELECT COUNT(*)", [(rows,)])]


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def s3(on_moto: str) -> Any:
    """A raw S3 client on moto with the test bucket, to look behind the adapter's back."""
    client = aws.client("s3", aws.session(on_moto))
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": on_moto})
    return client


@pytest.fixture
def lake(s3: Any) -> S3Lake:
    lake = S3Lake(BUCKET, PREFIX, boto3_session=aws.session("eu-west-1"))
    # The run's part files and its extract manifest, plus another run's file of the same table:
    # the COPY manifest must name exactly the two parts, never a prefix.
    lake.put_bytes(PART0, b"part 0")
    lake.put_bytes(PART1, b"part one")
    lake.put_bytes("raw/bookings/run_id=R1/_manifest.json", b"{}")
    lake.put_bytes("raw/bookings/run_id=R0/part-00000.csv.gz", b"another run")
    return lake


def manifest(files: Sequence[PartFile] | None = None, run_id: str = "R1") -> Manifest:
    if files is None:
        files = [PartFile(PART0, 3, 120, "a" * 64), PartFile(PART1, 2, 90, "b" * 64)]
    return Manifest(
        table="bookings",
        run_id=run_id,
        mode="incremental",
        watermark_column="last_modified_timestamp",
        bookmark="2025-03-30 00:00:00.000000",
        lower="2025-03-29 23:55:00.000000",
        high="2025-03-31 23:59:59.000001",
        since=None,
        until=None,
        extracted_at="2025-04-01T03:00:00.123456Z",
        columns=list(TABLES["bookings"].column_names),
        rows=sum(f.rows for f in files),
        files=list(files),
    )


def warehouse(conn: FakeConnection, role: str | None = ROLE) -> RedshiftWarehouse:
    return RedshiftWarehouse(conn, NAME, role)


def copy_failure(message: str = "Load into table 'stage_bookings' failed") -> Exception:
    return redshift_connector.ProgrammingError(message)


# ------------------------------------------------------------------------- (a) COPY manifest


def test_copy_manifest_lists_exactly_the_run_part_files(s3: Any, lake: S3Lake) -> None:
    warehouse(FakeConnection(ok_count(5))).load_raw(lake, manifest())

    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{COPY_MANIFEST_KEY}")["Body"].read()
    assert json.loads(body) == {
        "entries": [
            {
                "url": "s3://rentalctl-test-lake/lake/dev/raw/bookings/run_id=R1/part-00000.csv.gz",
                "mandatory": True,
                "meta": {"content_length": 6},
            },
            {
                "url": "s3://rentalctl-test-lake/lake/dev/raw/bookings/run_id=R1/part-00001.csv.gz",
                "mandatory": True,
                "meta": {"content_length": 8},
            },
        ]
    }
    assert lake.list("raw/bookings/") == [
        "raw/bookings/run_id=R0/part-00000.csv.gz",
        "raw/bookings/run_id=R1/_copy.manifest",
        "raw/bookings/run_id=R1/_manifest.json",
        "raw/bookings/run_id=R1/part-00000.csv.gz",
        "raw/bookings/run_id=R1/part-00001.csv.gz",
    ]


def test_copy_manifest_is_written_before_the_copy_runs(lake: S3Lake) -> None:
    seen: list[bool] = []

    class Watching(FakeConnection):
        def _run(self, sql: str, params: Sequence[Any] | None) -> list[tuple[Any, ...]]:
            if sql.startswith("COPY "):
                seen.append(lake.exists(COPY_MANIFEST_KEY))
            return super()._run(sql, params)

    warehouse(Watching(ok_count(5))).load_raw(lake, manifest())
    assert seen == [True]


# ------------------------------------------------------------- (b) statements and transaction


def test_load_raw_issues_the_statements_in_order(lake: S3Lake) -> None:
    conn = FakeConnection(ok_count(5))
    assert warehouse(conn).load_raw(lake, manifest()) == 5
    assert conn.events == [
        ("execute", CREATE_SCHEMA, None),
        ("execute", CREATE_BOOKINGS, None),
        # ensure_raw commits its idempotent DDL on its own; the replace of the run's rows is
        # the one transaction below.
        ("commit",),
        ("execute", CREATE_STAGE, None),
        ("execute", COPY, None),
        ("execute", DELETE, ("R1",)),
        ("execute", INSERT, ("R1", EXTRACTED_AT)),
        ("execute", COUNT, ("R1",)),
        ("execute", DROP_STAGE, None),
        ("commit",),
    ]


def test_the_replace_is_one_transaction_committed_only_at_the_end(lake: S3Lake) -> None:
    conn = FakeConnection(ok_count(5))
    warehouse(conn).load_raw(lake, manifest())
    start = conn.events.index(("execute", CREATE_STAGE, None))
    data = conn.events[start:]
    assert data[-1] == ("commit",)
    assert ("commit",) not in data[:-1]
    assert ("rollback",) not in conn.events
    kinds = [e[1].split()[0] for e in data[:-1]]
    assert kinds == ["CREATE", "COPY", "DELETE", "INSERT", "SELECT", "DROP"]


def test_raw_ddl_has_every_bookings_column_with_its_redshift_type(lake: S3Lake) -> None:
    conn = FakeConnection(ok_count(5))
    warehouse(conn).load_raw(lake, manifest())
    ddl = conn.statements()[1]
    for column in (
        '"booking_id" BIGINT',
        '"user_id" BIGINT',
        '"apartment_id" BIGINT',
        '"booking_date" TIMESTAMP',
        '"checkin_date" DATE',
        '"checkout_date" DATE',
        '"total_price" DECIMAL(12,2)',
        '"currency" VARCHAR(40)',
        '"booking_status" VARCHAR(80)',
        '"last_modified_timestamp" TIMESTAMP',
        '"_run_id" VARCHAR(64)',
        '"_extracted_at" TIMESTAMP',
    ):
        assert f"    {column},\n" in ddl or f"    {column}\n)" in ddl, column
    assert ddl.startswith('CREATE TABLE IF NOT EXISTS raw."bookings" (\n')


def test_copy_statement_options(lake: S3Lake) -> None:
    conn = FakeConnection(ok_count(5))
    warehouse(conn).load_raw(lake, manifest())
    (copy,) = [s for s in conn.statements() if s.startswith("COPY ")]
    for part in (
        f"FROM '{COPY_MANIFEST_URI}'",
        "IAM_ROLE 'arn:aws:iam::123456789012:role/copy'",
        " MANIFEST ",
        "FORMAT AS CSV",
        " GZIP ",
        "IGNOREHEADER 1",
        f'COPY "stage_bookings" ({COLUMNS}) FROM',
    ):
        assert part in copy, part


def test_run_id_is_bound_never_spliced_into_the_sql(lake: S3Lake) -> None:
    conn = FakeConnection(ok_count(5))
    warehouse(conn).load_raw(lake, manifest())
    by_sql = {e[1]: e[2] for e in conn.events if e[0] == "execute"}
    assert by_sql[DELETE] == ("R1",)
    assert by_sql[INSERT] == ("R1", "2025-04-01 03:00:00.123456")
    assert by_sql[COUNT] == ("R1",)
    for sql in (DELETE, INSERT, COUNT):
        assert "R1" not in sql
        assert "2025-04-01" not in sql


def test_query_binds_parameters_and_close_closes(lake: S3Lake) -> None:
    conn = FakeConnection([("FROM raw", [(1, "a"), (2, "b")])])
    wh = warehouse(conn)
    assert wh.query('SELECT 1, 2 FROM raw."bookings" WHERE "_run_id" = %s', ["R1"]) == [
        (1, "a"),
        (2, "b"),
    ]
    assert wh.query("SELECT 1") == []
    wh.close()
    assert conn.events == [
        ("execute", 'SELECT 1, 2 FROM raw."bookings" WHERE "_run_id" = %s', ("R1",)),
        ("execute", "SELECT 1", None),
        ("close",),
    ]


# ------------------------------------------------------------------------- (c) COPY failures


def test_copy_failure_names_file_line_column_value_and_reason(lake: S3Lake) -> None:
    conn = FakeConnection([("COPY ", copy_failure()), ("stl_load_errors", [LOAD_ERROR_ROW])])
    with pytest.raises(PipelineFailed) as caught:
        warehouse(conn).load_raw(lake, manifest())

    error = caught.value
    assert error.exit_code == ExitCode.PIPELINE_FAILED == 1
    assert str(error) == f"COPY into raw.bookings for run R1 failed: {LOAD_ERROR_TEXT}"
    for part in (
        "s3://b/raw/bookings/run_id=R1/part-00001.csv.gz",
        "line 42",
        "column total_price",
        "12,50",
        "Invalid digit, Value ',', Pos 2",
    ):
        assert part in str(error), part

    start = conn.events.index(("execute", CREATE_STAGE, None))
    after_copy = conn.events[start + 2 :]
    # The aborted transaction is rolled back before the error tables are read, and at the end.
    assert after_copy[0] == ("rollback",)
    assert after_copy[1] == ("execute", STL_LOAD_ERRORS, None)
    assert after_copy[-1] == ("rollback",)
    assert ("commit",) not in conn.events[start:]
    assert DELETE not in conn.statements()
    assert INSERT not in conn.statements()


def test_copy_failure_on_serverless_reads_sys_load_error_detail(lake: S3Lake) -> None:
    row = ("s3://b/raw/bookings/run_id=R1/part-00000.csv.gz", 7, "checkin_date", "2025-13-01",
           "Invalid date format")  # fmt: skip
    conn = FakeConnection(
        [
            ("COPY ", copy_failure()),
            ("stl_load_errors", redshift_connector.ProgrammingError("stl_load_errors: no access")),
            ("sys_load_error_detail", [row]),
        ]
    )
    with pytest.raises(PipelineFailed) as caught:
        warehouse(conn).load_raw(lake, manifest())

    assert str(caught.value) == (
        "COPY into raw.bookings for run R1 failed: "
        "s3://b/raw/bookings/run_id=R1/part-00000.csv.gz line 7, column checkin_date, "
        "value '2025-13-01': Invalid date format"
    )
    start = conn.events.index(("execute", COPY, None))
    assert conn.events[start + 1 :] == [
        ("rollback",),
        ("execute", STL_LOAD_ERRORS, None),
        ("rollback",),
        ("execute", SYS_LOAD_ERROR_DETAIL, None),
        ("rollback",),
    ]
    assert ("commit",) not in conn.events[conn.events.index(("execute", CREATE_STAGE, None)) :]


def test_copy_failure_lists_several_load_errors(lake: S3Lake) -> None:
    second = ("s3://b/raw/bookings/run_id=R1/part-00001.csv.gz", 43, "currency", "EURO",
              "Value too long for character type")  # fmt: skip
    conn = FakeConnection(
        [("COPY ", copy_failure()), ("stl_load_errors", [LOAD_ERROR_ROW, second])]
    )
    with pytest.raises(PipelineFailed) as caught:
        warehouse(conn).load_raw(lake, manifest())
    assert str(caught.value) == (
        f"COPY into raw.bookings for run R1 failed: {LOAD_ERROR_TEXT}; "
        "s3://b/raw/bookings/run_id=R1/part-00001.csv.gz line 43, column currency, "
        "value 'EURO': Value too long for character type"
    )


def test_copy_failure_without_load_errors_reports_the_driver_error(lake: S3Lake) -> None:
    conn = FakeConnection([("COPY ", copy_failure("S3ServiceException: Access Denied"))])
    with pytest.raises(PipelineFailed) as caught:
        warehouse(conn).load_raw(lake, manifest())
    assert str(caught.value) == (
        "COPY into raw.bookings for run R1 failed: S3ServiceException: Access Denied"
    )
    assert conn.events[-1] == ("rollback",)
    start = conn.events.index(("execute", CREATE_STAGE, None))
    assert ("commit",) not in conn.events[start:]


# ----------------------------------------------------------------------- (d) count mismatch


def test_count_mismatch_fails_and_rolls_back(lake: S3Lake) -> None:
    conn = FakeConnection(ok_count(4))
    with pytest.raises(PipelineFailed) as caught:
        warehouse(conn).load_raw(lake, manifest())
    assert caught.value.exit_code == 1
    assert str(caught.value) == (
        "raw load of bookings for run R1 loaded 4 rows, the manifest lists 5"
    )
    start = conn.events.index(("execute", CREATE_STAGE, None))
    assert conn.events[start:] == [
        ("execute", CREATE_STAGE, None),
        ("execute", COPY, None),
        ("execute", DELETE, ("R1",)),
        ("execute", INSERT, ("R1", EXTRACTED_AT)),
        ("execute", COUNT, ("R1",)),
        ("rollback",),
    ]


# ------------------------------------------------------------------------- (e) no part files


def test_empty_manifest_copies_nothing_but_still_replaces_the_run(s3: Any, lake: S3Lake) -> None:
    conn = FakeConnection(ok_count(0))
    assert warehouse(conn).load_raw(lake, manifest(files=[])) == 0
    assert conn.events == [
        ("execute", CREATE_SCHEMA, None),
        ("execute", CREATE_BOOKINGS, None),
        ("commit",),
        ("execute", CREATE_STAGE, None),
        ("execute", DELETE, ("R1",)),
        ("execute", INSERT, ("R1", EXTRACTED_AT)),
        ("execute", COUNT, ("R1",)),
        ("execute", DROP_STAGE, None),
        ("commit",),
    ]
    assert not lake.exists(COPY_MANIFEST_KEY)
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/{COPY_MANIFEST_KEY}")
    assert listed["KeyCount"] == 0


# --------------------------------------------------------------------------- (f) refusals


@pytest.mark.parametrize("role", [None, ""])
def test_missing_copy_role_is_a_config_error(lake: S3Lake, role: str | None) -> None:
    conn = FakeConnection(ok_count(5))
    with pytest.raises(ConfigError) as caught:
        warehouse(conn, role).load_raw(lake, manifest())
    assert caught.value.exit_code == ExitCode.USAGE == 2
    assert str(caught.value) == "aws.redshift_copy_role_arn is required to COPY into Redshift"
    assert conn.events == []
    assert not lake.exists(COPY_MANIFEST_KEY)


@pytest.mark.parametrize("run_id", ["R1'; DROP TABLE raw.bookings; --", "R'1", "R1\\", ""])
def test_run_id_with_a_quote_or_odd_character_is_refused(lake: S3Lake, run_id: str) -> None:
    conn = FakeConnection(ok_count(5))
    with pytest.raises(ConfigError) as caught:
        warehouse(conn).load_raw(lake, manifest(run_id=run_id))
    assert caught.value.exit_code == 2
    assert str(caught.value) == (
        f"invalid setting run id = {run_id!r}: expected letters, digits, '.', '_' and '-' "
        "(64 at most)"
    )
    assert conn.events == []


def test_literal_quotes_plain_values() -> None:
    assert literal(COPY_MANIFEST_URI) == (
        "'s3://rentalctl-test-lake/lake/dev/raw/bookings/run_id=R1/_copy.manifest'"
    )
    assert literal(ROLE) == "'arn:aws:iam::123456789012:role/copy'"


@pytest.mark.parametrize("value", ["s3://b/it's", "arn:aws:iam::1:role/a\\b", "'", "\\", ""])
def test_literal_refuses_quotes_backslashes_and_empty(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        literal(value)
    assert caught.value.exit_code == 2
    assert str(caught.value) == f"refusing to put {value!r} into a COPY statement"


def test_role_with_a_quote_is_refused_before_any_copy(lake: S3Lake) -> None:
    conn = FakeConnection(ok_count(5))
    with pytest.raises(ConfigError) as caught:
        warehouse(conn, "arn:aws:iam::1:role/x' CREDENTIALS 'y").load_raw(lake, manifest())
    assert str(caught.value) == (
        "refusing to put \"arn:aws:iam::1:role/x' CREDENTIALS 'y\" into a COPY statement"
    )
    assert conn.statements() == []  # refused before any statement or side effect


# ------------------------------------------------------------------- ensure_raw, all tables


def test_ensure_raw_creates_every_raw_table_and_commits() -> None:
    conn = FakeConnection()
    warehouse(conn).ensure_raw(list(TABLES.values()))
    statements = conn.statements()
    assert statements[0] == CREATE_SCHEMA
    assert statements[4] == CREATE_BOOKINGS
    assert [s.split("(")[0] for s in statements[1:]] == [
        'CREATE TABLE IF NOT EXISTS raw."apartments" ',
        'CREATE TABLE IF NOT EXISTS raw."apartment_attributes" ',
        'CREATE TABLE IF NOT EXISTS raw."user_viewing" ',
        'CREATE TABLE IF NOT EXISTS raw."bookings" ',
    ]
    attributes = statements[2]
    for column in (
        '"body" VARCHAR(65535)',
        '"bathrooms" DECIMAL(3,1)',
        '"square_feet" INTEGER',
        '"latitude" DECIMAL(10,7)',
    ):
        assert column in attributes, column
    assert '"is_active" INTEGER' in statements[1]
    assert '"price" DECIMAL(12,2)' in statements[1]
    assert conn.events[-1] == ("commit",)


# ----------------------------------------------------------------- every statement parses


def _every_statement(lake: S3Lake) -> list[str]:
    scenarios: list[FakeConnection] = [
        FakeConnection(ok_count(5)),
        FakeConnection([("COPY ", copy_failure()), ("stl_load_errors", [LOAD_ERROR_ROW])]),
        FakeConnection(
            [
                ("COPY ", copy_failure()),
                ("stl_load_errors", redshift_connector.ProgrammingError("no stl")),
                ("sys_load_error_detail", [LOAD_ERROR_ROW]),
            ]
        ),
    ]
    for conn in scenarios:
        with contextlib.suppress(PipelineFailed):
            warehouse(conn).load_raw(lake, manifest())
    conn = FakeConnection()
    warehouse(conn).ensure_raw(list(TABLES.values()))
    scenarios.append(conn)
    return list(dict.fromkeys(s for c in scenarios for s in c.statements()))


def test_every_statement_parses_as_redshift_sql(lake: S3Lake) -> None:
    statements = _every_statement(lake)
    for expected in (COPY, DELETE, INSERT, COUNT, STL_LOAD_ERRORS, SYS_LOAD_ERROR_DETAIL):
        assert expected in statements
    unparsed = []
    for sql in statements:
        # sqlglot parses Redshift's COPY too (as exp.Copy); a statement it only wraps in an
        # opaque exp.Command would not have been checked, so that counts as a failure.
        try:
            tree = sqlglot.parse_one(sql, read="redshift")
        except sqlglot.errors.ParseError as exc:
            unparsed.append(f"{sql}: {exc}")
            continue
        if isinstance(tree, exp.Command):
            unparsed.append(f"{sql}: only parsed as an opaque command")
    assert unparsed == []


# ------------------------------------------------- curated merge support: staging, transactions


def test_stage_parquet_copies_exactly_the_listed_files(s3: Any, lake: S3Lake) -> None:
    keys = [
        "curated/bookings/run_id=R1/part-00000.parquet",
        "curated/bookings/run_id=R1/part-00001.parquet",
    ]
    lake.put_bytes(keys[0], b"PAR1" + b"\0" * 1000 + b"PAR1")
    lake.put_bytes(keys[1], b"PAR1" + "é".encode() * 10 + b"PAR1")
    statements = warehouse(FakeConnection()).stage_parquet(
        lake, keys, "stage_curated_bookings", 'curated."bookings"'
    )
    assert statements == [
        'DROP TABLE IF EXISTS "stage_curated_bookings"',
        'CREATE TEMP TABLE "stage_curated_bookings" (LIKE curated."bookings")',
        'COPY "stage_curated_bookings" FROM '
        "'s3://rentalctl-test-lake/lake/dev/curated/bookings/run_id=R1/_copy.manifest' "
        f"IAM_ROLE '{ROLE}' MANIFEST FORMAT AS PARQUET",
    ]
    body = s3.get_object(
        Bucket="rentalctl-test-lake", Key="lake/dev/curated/bookings/run_id=R1/_copy.manifest"
    )["Body"].read()
    assert json.loads(body) == {
        "entries": [
            {
                "url": "s3://rentalctl-test-lake/lake/dev/" + keys[0],
                "mandatory": True,
                "meta": {"content_length": 1008},
            },
            {
                "url": "s3://rentalctl-test-lake/lake/dev/" + keys[1],
                "mandatory": True,
                "meta": {"content_length": 28},
            },
        ]
    }


def test_stage_parquet_without_files_only_creates_the_stage(lake: S3Lake) -> None:
    assert warehouse(FakeConnection(), role=None).stage_parquet(lake, [], "s", "curated.x") == [
        'DROP TABLE IF EXISTS "s"',
        'CREATE TEMP TABLE "s" (LIKE curated.x)',
    ]


def test_execute_transaction_commits_once_or_rolls_back_everything() -> None:
    conn = FakeConnection()
    warehouse(conn).execute_transaction(["DELETE FROM a", ("INSERT INTO a VALUES (%s)", [1])])
    assert conn.events == [
        ("execute", "DELETE FROM a", None),
        ("execute", "INSERT INTO a VALUES (%s)", (1,)),
        ("commit",),
    ]
    failing = FakeConnection([("INSERT", redshift_connector.ProgrammingError("boom"))])
    with pytest.raises(PipelineFailed, match="rolled back: boom"):
        warehouse(failing).execute_transaction(["DELETE FROM a", "INSERT INTO a VALUES (1)"])
    assert failing.events[-1] == ("rollback",)
    assert ("commit",) not in failing.events


@pytest.mark.parametrize(
    "error",
    [
        redshift_connector.InterfaceError("connection reset by peer"),
        redshift_connector.ProgrammingError(
            "{'S': 'ERROR', 'C': 'XX000', 'M': '1023: Serializable isolation violation on table'}"
        ),
    ],
    ids=["lost connection", "serializable isolation conflict"],
)
def test_a_transient_transaction_failure_is_reported_as_worth_a_retry(error: Exception) -> None:
    failing = FakeConnection([("INSERT", error)])
    with pytest.raises(ResourceUnavailable, match="rolled back \\(worth a retry\\)"):
        warehouse(failing).execute_transaction(["DELETE FROM a", "INSERT INTO a VALUES (1)"])
    assert failing.events[-1] == ("rollback",)
    assert ("commit",) not in failing.events


# ------------------------------------------------------------------- a connection that breaks


class Broken(FakeConnection):
    """A connection whose socket broke: after the failing statement, the driver's rollback and
    close fail too, as they would on a dead socket."""

    def rollback(self) -> None:
        self.events.append(("rollback",))
        raise redshift_connector.InterfaceError("connection is closed")

    def close(self) -> None:
        self.events.append(("close",))
        raise OSError(9, "Bad file descriptor")


LOST = (
    "lost the connection to redshift://u@h:5439/db (TimeoutError: timed out); anything not "
    "committed is rolled back (worth a retry)"
)


def test_a_socket_timeout_mid_transaction_is_worth_a_retry() -> None:
    conn = Broken([("INSERT", TimeoutError("timed out"))])
    with pytest.raises(ResourceUnavailable) as caught, warehouse(conn) as wh:
        wh.execute_transaction(["DELETE FROM a", "INSERT INTO a VALUES (1)"])
    assert str(caught.value) == LOST
    assert caught.value.exit_code == ExitCode.UNAVAILABLE == 3
    assert caught.value.__suppress_context__  # one line, not the driver's traceback
    assert conn.events[-2:] == [("rollback",), ("close",)]
    assert ("commit",) not in conn.events


def test_a_connection_reset_during_a_raw_load_is_worth_a_retry(lake: S3Lake) -> None:
    conn = Broken([("DELETE", ConnectionResetError(104, "Connection reset by peer"))])
    with pytest.raises(ResourceUnavailable) as caught:
        warehouse(conn).load_raw(lake, manifest())
    assert str(caught.value) == (
        "lost the connection to redshift://u@h:5439/db (ConnectionResetError: [Errno 104] "
        "Connection reset by peer); anything not committed is rolled back (worth a retry)"
    )
    assert conn.events[-1] == ("rollback",)


def test_a_socket_timeout_in_a_query_or_a_commit_is_worth_a_retry() -> None:
    with pytest.raises(ResourceUnavailable, match=r"^lost the connection to redshift://u@h"):
        warehouse(Broken([("SELECT", TimeoutError("timed out"))])).query("SELECT 1")

    class CommitTimesOut(FakeConnection):
        def commit(self) -> None:
            raise TimeoutError("timed out")

    with pytest.raises(ResourceUnavailable) as caught:
        warehouse(CommitTimesOut()).execute_transaction(["DELETE FROM a"])
    assert str(caught.value) == LOST


def settings_for(tmp_path: Any) -> Any:
    from rentalctl import config

    settings = config.load(
        env={
            "RENTALCTL_HOME": str(tmp_path),
            "RENTALCTL_WAREHOUSE_URL": "redshift://loader@c1.abc.eu-west-1.redshift.amazonaws.com:5439/rentals",
        }
    )
    return settings


def test_connect_bounds_only_the_connect(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    class Socket:
        timeout: float | None = None

        def settimeout(self, value: float | None) -> None:
            self.timeout = value

    opened: list[dict[str, Any]] = []
    sock = Socket()

    def connect(**kwargs: Any) -> FakeConnection:
        opened.append(kwargs)
        sock.settimeout(kwargs["timeout"])  # what the driver does before connecting
        conn = FakeConnection()
        conn._usock = sock  # type: ignore[attr-defined]
        return conn

    monkeypatch.setattr(redshift_connector, "connect", connect)
    wh = RedshiftWarehouse.connect(settings_for(tmp_path), aws.session())
    assert opened == [
        {
            "host": "c1.abc.eu-west-1.redshift.amazonaws.com",
            "port": 5439,
            "database": "rentals",
            "user": "loader",
            "timeout": 30,
            "iam": True,
            "db_user": "loader",
            "region": None,
            "cluster_identifier": "c1",
        }
    ]
    assert sock.timeout is None
    assert wh.conn.autocommit is False


@pytest.mark.parametrize(
    "error",
    [TimeoutError("timed out"), redshift_connector.OperationalError("connection time out")],
)
def test_a_connect_that_times_out_is_unavailable(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def connect(**kwargs: Any) -> FakeConnection:
        raise error

    monkeypatch.setattr(redshift_connector, "connect", connect)
    with pytest.raises(ResourceUnavailable) as caught:
        RedshiftWarehouse.connect(settings_for(tmp_path), aws.session())
    assert str(caught.value) == (
        "cannot connect to Redshift at c1.abc.eu-west-1.redshift.amazonaws.com:5439, database "
        f"'rentals', user 'loader': {error}"
    )


@pytest.mark.parametrize(
    ("url", "login"),
    [
        (
            "redshift://etl@wg.123456789012.eu-west-1.redshift-serverless.amazonaws.com:5439/dw",
            {"is_serverless": True, "serverless_work_group": "wg"},
        ),
        (
            "redshift://etl@analytics.abc123xyz.eu-west-1.redshift.amazonaws.com:5439/dw",
            {"cluster_identifier": "analytics"},
        ),
    ],
)
def test_iam_login_names_what_the_glue_role_is_granted_on(
    url: str, login: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a secret, redshift_connector asks for temporary credentials of the URL's user on
    the workgroup or cluster the host names (the glue-job policy grants exactly that)."""
    from rentalctl import config

    seen: dict[str, Any] = {}

    def connect(**kwargs: Any) -> Any:
        seen.update(kwargs)
        raise redshift_connector.InterfaceError("no network here")

    monkeypatch.setattr(redshift_connector, "connect", connect)
    settings = config.load(
        overrides={"target": "aws", "warehouse.url": url, "aws.region": "eu-west-1"}, env={}
    )
    with pytest.raises(ResourceUnavailable):
        RedshiftWarehouse.connect(settings, aws.session(settings.aws.region))
    host = url.split("@")[1].split(":")[0]
    assert seen == {
        "host": host,
        "port": 5439,
        "database": "dw",
        "user": "etl",
        "timeout": 30,
        "iam": True,
        "db_user": "etl",
        "region": "eu-west-1",
        **login,
    }
