"""Rules from the Amazon Redshift documentation, checked over EVERY statement rentalctl can send
to Redshift. No Redshift runs here, so the real code paths run against a recording fake
connection (opened through ``redshift_connector.connect``, replaced by a fake that keeps its
arguments) and a lake on moto's S3; each recorded statement is parsed with sqlglot's Redshift
dialect and checked:

(a) MERGE: the source is a table, never a view or a subquery, and never the target (MERGE
    parameters and usage notes: the target must not be a source of a subquery of the MERGE);
(b) COPY from Parquet reads a manifest whose every entry has ``meta.content_length``, the
    file's size in bytes (COPY manifest reference: required for ORC and Parquet);
(c) text columns are sized in bytes: VARCHAR(n) counts bytes on Redshift, characters on MySQL,
    and a UTF-8 character takes up to 4 bytes, so a column holding a MySQL VARCHAR(N) needs
    n >= min(4N, 65535), and no VARCHAR is longer than 65535;
(d) no statement runs under a socket timeout: redshift_connector's ``timeout`` applies to the
    socket for the connection's whole life, so it may only bound the connect.

The MySQL lengths come from the shipped MySQL DDL (mysql/schema.sql), not from the code's table
specs.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redshift_connector
import sqlglot
from moto import mock_aws
from sqlglot import exp

from rentalctl import aws, config
from rentalctl.context import Context
from rentalctl.pipeline import key_pages, steps
from rentalctl.pipeline.kpi_summary import snapshot
from rentalctl.pipeline.merge import merge
from rentalctl.pipeline.presentation import refresh_if_stale
from rentalctl.run.manifest import Manifest, PartFile
from rentalctl.tables import TABLES
from tests.support.moto_aws import ACCOUNT, REGION, fake_aws_credentials

BUCKET = "rentalctl-rules"
HOST = "rentalctl.abc123xyz.eu-west-1.redshift.amazonaws.com"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/rentalctl-copy"
RUN = "2026-01-05T03-00-00Z-abc"
ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------- the recording fake driver


class FakeSocket:
    def __init__(self) -> None:
        self.timeout: float | None = None

    def settimeout(self, value: float | None) -> None:
        self.timeout = value


class RecordingCursor:
    def __init__(self, conn: RecordingConnection) -> None:
        self._conn = conn
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self._rows = self._conn.run(sql)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self._rows)


# Answers to the few queries whose results the code reads: (needle in the SQL, rows).
REPLIES = (
    ("SELECT inserted, updated, staged FROM", [(1, 0, 1)]),
    ("SELECT n FROM", [(0,)]),
    ('SELECT COUNT(*) FROM raw."', [(3,)]),
    ("SELECT COUNT(*) FROM", [(0,)]),
    ("SELECT MAX(booking_date)", [(None,)]),
)


class RecordingConnection:
    """What ``redshift_connector.connect(**kwargs)`` returned: like the driver, it sets the
    socket timeout from ``timeout`` when it connects. Records each statement with the socket
    timeout in force when it ran."""

    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.kwargs = kwargs
        self._usock = FakeSocket()
        self._usock.settimeout(kwargs.get("timeout"))
        self.autocommit = True
        self.executed: list[tuple[str, float | None]] = []

    def cursor(self) -> RecordingCursor:
        return RecordingCursor(self)

    def run(self, sql: str) -> list[tuple[Any, ...]]:
        self.executed.append((sql, self._usock.timeout))
        for needle, rows in REPLIES:
            if needle in sql:
                return rows
        return []

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


@dataclasses.dataclass
class Recorded:
    connections: list[RecordingConnection]
    s3: Any

    def statements(self) -> list[str]:
        return list(dict.fromkeys(sql for c in self.connections for sql, _ in c.executed))

    def trees(self) -> list[exp.Expr]:
        return [sqlglot.parse_one(sql, read="redshift") for sql in self.statements()]


# --------------------------------------------------------------------- every code path, once


def _put(s3: Any, key: str, data: bytes) -> None:
    s3.put_object(Bucket=BUCKET, Key=f"lake/{key}", Body=data)


PAGED = ("apartments", "bookings")  # tables whose extract read the keys of some pages only


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _raw_files(s3: Any, table: str) -> None:
    """A run's extract of ``table``: two part files of different sizes and their manifest."""
    files = []
    for n, size in enumerate((101, 2345)):
        key = f"raw/{table}/run_id={RUN}/part-{n:05d}.csv.gz"
        _put(s3, key, b"x" * size)  # as the manifest lists it: the raw load checks
        files.append(PartFile(key, 1 + n, size, hashlib.sha256(b"x" * size).hexdigest()))
    keys = gzip.compress(f"{TABLES[table].key}\n1\n2\n".encode(), mtime=0)
    keys_key = f"raw/{table}/run_id={RUN}/_keys.csv.gz"
    _put(s3, keys_key, keys)  # a reconciling run: the merge also removes deleted keys
    pages = None  # an extract written before key pages existed: the whole key set, no pages
    if table in PAGED:  # the keys of page 0 only, read as its fingerprint changed
        text = ",".join(key_pages.PAGE_COLUMNS) + "\n0,-1023,1023,2,3,5,1\n1024,1024,2047,1,0,0,0\n"
        data = gzip.compress(text.encode(), mtime=0)
        pages = PartFile(keys_key.replace("_keys", "_key_pages"), 2, len(data), _sha(data))
        _put(s3, pages.key, data)
    manifest = Manifest(
        table=table,
        run_id=RUN,
        mode="full",
        watermark_column=TABLES[table].watermark,
        bookmark=None,
        lower=None,
        high=None,
        since=None,
        until=None,
        extracted_at="2026-01-05T03:00:00.000000Z",
        columns=list(TABLES[table].column_names),
        rows=3,
        files=files,
        keys_file=PartFile(keys_key, 2, len(keys), hashlib.sha256(keys).hexdigest()),
        key_pages_file=pages,
        keys_whole=pages is None,
    )
    _put(s3, f"raw/{table}/run_id={RUN}/_manifest.json", manifest.to_json())


def _transform_output(s3: Any, table: str) -> None:
    """What the transform leaves for ``table``: curated and rejected Parquet parts (their
    content is never read here, only their sizes matter) and the stats."""
    for kind, sizes in (("curated", (4321, 17)), ("rejected", (999,))):
        for n, size in enumerate(sizes):
            _put(s3, f"{kind}/{table}/run_id={RUN}/part-{n:05d}.parquet", b"P" * size)
    stats = {"rows_read": 3, "rejected": 0, "rejected_by_reason": {}}
    _put(s3, f"curated/{table}/run_id={RUN}/_stats.json", json.dumps(stats).encode())


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """Every code path that talks to Redshift, run once for the module."""
    connections: list[RecordingConnection] = []

    def connect(**kwargs: Any) -> RecordingConnection:
        connections.append(RecordingConnection(kwargs))
        return connections[-1]

    with pytest.MonkeyPatch.context() as monkeypatch, mock_aws():
        fake_aws_credentials(monkeypatch)
        monkeypatch.setattr(redshift_connector, "connect", connect)
        s3 = aws.client("s3", aws.session(REGION))
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        settings = config.load(
            env={
                "RENTALCTL_HOME": str(tmp_path_factory.mktemp("rules") / "home"),
                "RENTALCTL_LAKE_URL": f"s3://{BUCKET}/lake",
                "RENTALCTL_WAREHOUSE_URL": f"redshift://loader@{HOST}:5439/rentals",
            }
        )
        aws_settings = dataclasses.replace(settings.aws, region=REGION, redshift_copy_role_arn=ROLE)
        ctx = Context(dataclasses.replace(settings, aws=aws_settings))
        ctx.state.ensure()
        for table in TABLES:
            _raw_files(s3, table)
            _transform_output(s3, table)
            steps.load_raw(ctx, table, RUN)
        merge(ctx, RUN, list(TABLES))
        with ctx.warehouse() as warehouse:
            refresh_if_stale(warehouse, RUN)
            snapshot(warehouse)
            for spec in TABLES.values():
                warehouse.discard_raw(spec, RUN)
        yield Recorded(connections, s3)


def test_the_paths_ran_and_every_statement_parses(recorded: Recorded) -> None:
    trees = recorded.trees()
    kinds = {type(t).__name__ for t in trees}
    assert {"Copy", "Merge", "Create", "Insert", "Delete", "Drop", "Select"} <= kinds
    assert [t for t in trees if isinstance(t, exp.Command)] == []
    assert sum(isinstance(t, exp.Merge) for t in trees) == len(TABLES)


def test_a_reconciling_merge_copies_the_key_set_and_deletes_with_an_audit(
    recorded: Recorded,
) -> None:
    statements = recorded.statements()
    for table, spec in TABLES.items():
        location = f"s3://{BUCKET}/lake/raw/{table}/run_id={RUN}/_keys.copy.manifest"
        assert (
            f"COPY \"stage_keys_{table}\" FROM '{location}' IAM_ROLE '{ROLE}' MANIFEST "
            "FORMAT AS CSV GZIP IGNOREHEADER 1"
        ) in statements
        assert json.loads(_object(recorded, location))["entries"][0]["url"] == (
            f"s3://{BUCKET}/lake/raw/{table}/run_id={RUN}/_keys.csv.gz"
        )
        pages = (
            f'JOIN "stage_key_pages_{table}" r ON r.keys_read = 1 AND c."{spec.key}" '
            "BETWEEN r.low_key AND r.high_key "
            if table in PAGED
            else ""
        )
        assert (
            f'CREATE TEMP TABLE "merge_deleted_{table}" AS SELECT c."{spec.key}" AS k '
            f'FROM curated."{table}" c {pages}WHERE NOT EXISTS (SELECT 1 FROM '
            f'"stage_keys_{table}" s WHERE s."{spec.key}" = c."{spec.key}")'
        ) in statements
        assert (
            f'DELETE FROM curated."{table}" WHERE "{spec.key}" IN '
            f'(SELECT k FROM "merge_deleted_{table}")'
        ) in statements
    audit = [s for s in statements if s.startswith('INSERT INTO curated."deleted_rows"')]
    assert audit == [
        'INSERT INTO curated."deleted_rows" (source_table, record_key, run_id, deleted_at) '
        'SELECT %s, CAST(g.k AS VARCHAR(64)), %s, %s FROM "merge_deleted_' + t + '" g'
        for t in TABLES
    ]


def test_a_reconciling_merge_copies_the_key_pages_and_keeps_their_fingerprints(
    recorded: Recorded,
) -> None:
    statements = recorded.statements()
    for table in PAGED:
        location = f"s3://{BUCKET}/lake/raw/{table}/run_id={RUN}/_key_pages.copy.manifest"
        assert (
            f'CREATE TEMP TABLE "stage_key_pages_{table}" ("page_base" BIGINT, "low_key" BIGINT, '
            '"high_key" BIGINT, "key_count" BIGINT, "offset_sum" BIGINT, '
            '"offset_squares" BIGINT, "keys_read" BIGINT)'
        ) in statements
        assert (
            f"COPY \"stage_key_pages_{table}\" FROM '{location}' IAM_ROLE '{ROLE}' MANIFEST "
            "FORMAT AS CSV GZIP IGNOREHEADER 1"
        ) in statements
    kept = [s for s in statements if s.startswith('INSERT INTO curated."key_pages"')]
    assert kept == [
        'INSERT INTO curated."key_pages" (source_table, run_id, page_base, key_count, '
        "offset_sum, offset_squares) SELECT %s, %s, page_base, key_count, offset_sum, "
        f'offset_squares FROM "stage_key_pages_{t}" WHERE key_count > 0'
        for t in TABLES
        if t in PAGED
    ]
    assert 'DELETE FROM curated."key_pages" WHERE source_table = %s' in statements


def test_the_presentation_layer_is_marked_stale_by_a_changing_merge_and_fresh_by_a_refresh(
    recorded: Recorded,
) -> None:
    mine = [s for s in recorded.statements() if "rentalctl." in s]
    changed = " + ".join(
        f'(SELECT COALESCE(inserted, 0) + COALESCE(updated, 0) FROM "merge_counts_{t}") + '
        f'(SELECT COUNT(*) FROM "merge_deleted_{t}")'
        for t in ("apartments", "apartment_attributes", "user_viewing", "bookings")
    )
    assert mine == [
        "CREATE TABLE IF NOT EXISTS rentalctl.presentation_refreshed (definitions VARCHAR(64) "
        "NOT NULL, run_id VARCHAR(64) NOT NULL, refreshed_at TIMESTAMP)",
        f"DELETE FROM rentalctl.presentation_refreshed WHERE {changed} > 0",
        "SELECT definitions FROM rentalctl.presentation_refreshed",
        "DELETE FROM rentalctl.presentation_refreshed",
        "INSERT INTO rentalctl.presentation_refreshed (definitions, run_id, refreshed_at) "
        "VALUES (%s, %s, %s)",
    ]


# ------------------------------------------------------------------------ (a) MERGE sources


def _table_name(table: exp.Table) -> str:
    return ".".join(part.name for part in table.parts).lower()


def test_no_merge_source_reads_its_target(recorded: Recorded) -> None:
    merges = [t for t in recorded.trees() if isinstance(t, exp.Merge)]
    found = []
    for tree in merges:
        target = _table_name(tree.this)
        using = tree.args["using"]
        if not isinstance(using, exp.Table):
            found.append(f"{target}: the source is a {type(using).__name__}, not a table")
        read = {_table_name(t) for t in using.find_all(exp.Table)}
        if target in read or tree.args.get("with"):
            found.append(f"{target}: the source reads {sorted(read)}")
    assert found == []
    assert sorted(_table_name(t.this) for t in merges) == [
        "curated.apartment_attributes",
        "curated.apartments",
        "curated.bookings",
        "curated.user_viewing",
    ]


# --------------------------------------------------------------------- (b) COPY manifests


def _copy_words(tree: exp.Copy) -> list[str]:
    words = []
    for param in tree.args.get("params") or []:
        words += [part.name.upper() for part in (param.this, param.expression) if part]
    return words


def _object(recorded: Recorded, uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return bytes(recorded.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_every_parquet_copy_manifest_gives_each_file_its_content_length(
    recorded: Recorded,
) -> None:
    copies = [t for t in recorded.trees() if isinstance(t, exp.Copy)]
    parquet = [t for t in copies if "PARQUET" in _copy_words(t)]
    assert len(parquet) == 2 * len(TABLES)  # curated and rejected rows of each table
    wrong = []
    for tree in copies:
        assert "MANIFEST" in _copy_words(tree), tree.sql("redshift")
        (location,) = tree.args["files"]
        for entry in json.loads(_object(recorded, location.name))["entries"]:
            size = len(_object(recorded, entry["url"]))
            meta = entry.get("meta", {})
            if meta.get("content_length") != size or type(meta["content_length"]) is not int:
                wrong.append(f"{entry['url']}: meta {meta}, size {size}")
    assert wrong == []


def test_a_curated_copy_manifest_literally(recorded: Recorded) -> None:
    body = _object(recorded, f"s3://{BUCKET}/lake/curated/bookings/run_id={RUN}/_copy.manifest")
    base = f"s3://{BUCKET}/lake/curated/bookings/run_id={RUN}"
    assert json.loads(body) == {
        "entries": [
            {
                "url": f"{base}/part-00000.parquet",
                "mandatory": True,
                "meta": {"content_length": 4321},
            },
            {
                "url": f"{base}/part-00001.parquet",
                "mandatory": True,
                "meta": {"content_length": 17},
            },
        ]
    }


# ------------------------------------------------------------------- (c) text sized in bytes


def _mysql_text_lengths() -> dict[tuple[str, str], int]:
    """(table, column) -> the most characters MySQL lets the column hold. TEXT holds at most
    65535 bytes, so as many characters at most."""
    lengths = {}
    schema = (ROOT / "mysql" / "schema.sql").read_text(encoding="utf-8")
    for tree in sqlglot.parse(schema, read="mysql"):
        if not isinstance(tree, exp.Create) or tree.kind != "TABLE":
            continue
        table = tree.this.this.name
        for column in tree.find_all(exp.ColumnDef):
            kind = column.args["kind"]
            if kind.this == exp.DataType.Type.VARCHAR:
                lengths[(table, column.name)] = int(kind.expressions[0].name)
            elif kind.this == exp.DataType.Type.TEXT:
                lengths[(table, column.name)] = 65535
    return lengths


# Where the text of the presentation layer comes from (docs/contract.md §6).
PRESENTATION_LINEAGE = {"title": "apartments", "cityname": "apartment_attributes"}
RECORD_BYTES = {("curated.rejected_rows", "record"): 65535}


def _varchar_columns(trees: list[exp.Expr]) -> dict[tuple[str, str], int]:
    found = {}
    for tree in trees:
        if isinstance(tree, exp.Create) and tree.kind == "TABLE" and tree.find(exp.ColumnDef):
            table = _table_name(tree.this.this)
            for column in tree.find_all(exp.ColumnDef):
                kind = column.args["kind"]
                if kind.this == exp.DataType.Type.VARCHAR:
                    found[(table, column.name)] = int(kind.expressions[0].name)
    return found


def test_text_columns_are_sized_in_bytes(recorded: Recorded) -> None:
    mysql = _mysql_text_lengths()
    declared = _varchar_columns(recorded.trees())
    assert ("raw.apartments", "title") in declared
    assert ("presentation.top_performing_listings", "title") in declared
    too_small = []
    checked = 0
    for (table, column), n in declared.items():
        assert n <= 65535, (table, column, n)
        schema, name = table.split(".")
        source = PRESENTATION_LINEAGE.get(column) if schema == "presentation" else name
        if (source, column) in mysql:
            needed = min(4 * mysql[(source, column)], 65535)
        elif (table, column) in RECORD_BYTES:
            needed = RECORD_BYTES[(table, column)]
        else:
            continue
        checked += 1
        if n < needed:
            too_small.append(f"{table}.{column} VARCHAR({n}) < {needed}")
    assert too_small == []
    # 17 raw text columns, 15 curated (two became BOOLEAN), 3 in presentation, the record
    assert checked == 17 + 15 + 3 + 1


def test_the_redshift_ddl_of_apartments_literally(recorded: Recorded) -> None:
    declared = _varchar_columns(recorded.trees())
    assert {c: n for (t, c), n in declared.items() if t == "curated.apartments"} == {
        "title": 1020,
        "source": 200,
        "currency": 40,
    }
    assert {c: n for (t, c), n in declared.items() if t == "raw.apartment_attributes"} == {
        "category": 200,
        "body": 65535,
        "amenities": 65535,
        "has_photo": 80,
        "pets_allowed": 200,
        "price_display": 200,
        "price_type": 80,
        "address": 1020,
        "cityname": 400,
        "state": 200,
        "_run_id": 64,
    }


# ------------------------------------------------------------------ (d) no socket timeout


def test_no_statement_runs_under_a_socket_timeout(recorded: Recorded) -> None:
    assert len(recorded.connections) > 1
    for conn in recorded.connections:
        # A bounded connect (the driver applies ``timeout`` to connecting and logging in) ...
        assert conn.kwargs["timeout"] == 30
        assert conn.kwargs["host"] == HOST
        # ... and then nothing: a statement may run as long as it needs.
        assert conn.executed
        assert {timeout for _, timeout in conn.executed} == {None}
    assert [s for s in recorded.statements() if "statement_timeout" in s.lower()] == []
