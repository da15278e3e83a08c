"""Transient faults in the adapters: each is retried per the configured policy, or fails the run
cleanly (exit 1, nothing committed) so that the next run ends up equal to a clean run.

Faults are injected where they happen in production, as close to the wire as the test can get:
- the MariaDB session is KILLed mid-result, behind a TCP relay that stands for the network (so
  the client really is in the middle of the stream, however fast the server wrote it);
- the SQLite source and the DuckDB warehouse fail inside the real adapter code;
- the SQLite state store is really locked by another connection;
- DynamoDB and S3 (moto, in process) answer throttling and time-outs at the point where the
  request would leave botocore, so botocore's own retry logic is what is exercised.

Every full run uses the tiny demo data and the session's SparkSession. The expected end state
is one clean run of the same demo data, made once per session (``clean_reference``).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sqlite3
import threading
import types
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from rentalctl import config
from rentalctl.cli import app
from rentalctl.context import Context
from rentalctl.errors import ResourceUnavailable
from rentalctl.orchestration.clock import FakeClock
from rentalctl.orchestration.local import run_local
from tests.reliability.support import (
    Snapshot,
    bookmarks,
    differences,
    lost,
    unfinished_lake_files,
    warehouse_snapshot,
)

pytestmark = pytest.mark.slow

SCALE = "0.002"  # 403 apartments, 400 attribute rows, 600 viewings, 1,000 bookings
TABLES = ["apartments", "apartment_attributes", "user_viewing", "bookings"]
SMALL_BATCHES = "extract.batch_size=100"  # the smallest allowed: bookings take ten fetches
RETRY_INTERVAL = 10  # retry.interval_seconds of the shipped local profile


# --------------------------------------------------------------------------- shared helpers


def cli(home: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    """``rentalctl ARGS`` in this process, on ``home``."""
    return CliRunner().invoke(app, list(args), env={"RENTALCTL_HOME": str(home), **(env or {})})


def cli_ok(home: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    result = cli(home, *args, env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


@dataclass(frozen=True)
class Reference:
    """What one clean run of the demo data leaves: every warehouse table and the bookmarks."""

    snapshot: Snapshot
    bookmarks: dict[str, Any]


def clean_reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """One clean run of the demo data (SQLite source), made once per session: its home lives
    in the session's base temporary directory, so every test module that asks finds it.

    The MySQL tests compare against it too: the demo data is the same rows in either source,
    and both must give the same warehouse."""
    base = tmp_path_factory.getbasetemp() / "clean-reference"
    home = base / "home"
    if not (base / "complete").exists():
        cli_ok(home, "demo-data", "--scale", SCALE)
        cli_ok(home, "run")
        (base / "complete").touch()
    return Reference(warehouse_snapshot(home), bookmarks(home))


@pytest.fixture
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return clean_reference(tmp_path_factory)


def assert_equals_clean_run(home: Path, reference: Reference) -> str:
    """The home's warehouse, bookmarks and lake are those of a clean run; returns support.lost's
    verdict for the report (always "nothing" once the assertions pass)."""
    actual = warehouse_snapshot(home)
    assert differences(reference.snapshot, actual) == {}, lost(reference.snapshot, actual)
    assert bookmarks(home) == reference.bookmarks
    assert unfinished_lake_files(home) == []
    return lost(reference.snapshot, actual)


def context(*sets: str) -> Context:
    """A context on the environment's settings (RENTALCTL_HOME of the ``home`` fixture) with
    the store created and seeded, as ``rentalctl run`` prepares it."""
    overrides = dict(s.split("=", 1) for s in sets)
    ctx = Context(config.load(overrides=overrides))
    ctx.state.ensure()
    ctx.state.seed(ctx.settings.tables)
    return ctx


def run_in_process(ctx: Context, run_id: str, clock: FakeClock) -> dict[str, Any]:
    """A whole run through the state machine, its back-off sleeps going to ``clock``."""
    return run_local(
        ctx, run_id=run_id, mode="incremental", since=None, until=None, tables=TABLES, clock=clock
    )


def states(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in record["states"]}


def last_run(home: Path) -> dict[str, Any]:
    listed = json.loads(cli_ok(home, "-o", "json", "status").stdout)["runs"]
    run_id = listed[0]["run_id"]
    return dict(json.loads(cli_ok(home, "-o", "json", "status", run_id).stdout))


def layer_rows(snapshot: Snapshot, *schemas: str) -> dict[str, int]:
    """Rows per table of the given schemas (tables that do not exist are absent)."""
    return {
        name: sum(rows.values()) for name, rows in snapshot.items() if name.split(".")[0] in schemas
    }


def snapshot_or_empty(home: Path) -> Snapshot:
    return warehouse_snapshot(home) if (home / "warehouse.duckdb").exists() else {}


# --------------------------------------------------------------------------- 1. MySQL source


class FlakyNetwork:
    """A TCP relay between rentalctl and the MariaDB server, standing for the network.

    ``cut(table, after_bytes)`` arms it once: when a query naming ``table`` has had more than
    ``after_bytes`` bytes of its result relayed, the relay stops forwarding, KILLs the server
    session from another connection and closes the client's socket. The client has then read a
    part of the result and meets the end of the connection mid-stream, as when a server restarts
    or a network path drops; the cut point is exact whatever the socket buffers hold.
    """

    def __init__(self, server: dict[str, Any]) -> None:
        self.server = server
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._marker = b""
        self._after = 0
        self._cuts_left = 0
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.killed: list[int] = []  # server thread ids KILLed
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, database: str) -> str:
        return f"mysql://{self.server['user']}@127.0.0.1:{self.port}/{database}"

    def cut(self, table: str, after_bytes: int) -> None:
        with self._lock:
            self._marker, self._after, self._cuts_left = f"`{table}`".encode(), after_bytes, 1

    def close(self) -> None:
        for sock in [self._listener, *self._sockets]:
            _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((self.server["host"], self.server["port"]))
            self._sockets += [client, upstream]
            session: dict[str, Any] = {"query": b"", "relayed": 0, "thread_id": None}
            for target in (self._to_server, self._to_client):
                threading.Thread(
                    target=target, args=(client, upstream, session), daemon=True
                ).start()

    def _to_server(
        self, client: socket.socket, upstream: socket.socket, session: dict[str, Any]
    ) -> None:
        while data := _recv(client):
            session["query"], session["relayed"] = data, 0  # a new command, a new result
            if not _send(upstream, data):
                break
        _close(upstream)

    def _to_client(
        self, client: socket.socket, upstream: socket.socket, session: dict[str, Any]
    ) -> None:
        while data := _recv(upstream):
            if session["thread_id"] is None and len(data) > 5 and data[4] == 10:
                # The server's greeting: protocol 10, version text, then the 4-byte thread id.
                end = data.index(b"\0", 5)
                session["thread_id"] = int.from_bytes(data[end + 1 : end + 5], "little")
            with self._lock:
                cutting = (
                    self._cuts_left > 0
                    and self._marker in session["query"]
                    and session["relayed"] + len(data) > self._after
                )
                if cutting:
                    self._cuts_left -= 1
            if cutting:
                _send(client, data[: self._after - session["relayed"]])
                self._kill(session["thread_id"])
                break
            session["relayed"] += len(data)
            if not _send(client, data):
                break
        _close(client)
        _close(upstream)

    def _kill(self, thread_id: int) -> None:
        import pymysql

        admin = pymysql.connect(**self.server)
        try:
            with admin.cursor() as cur:
                cur.execute("KILL CONNECTION %s", (thread_id,))
        finally:
            admin.close()
        self.killed.append(thread_id)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def mysql_demo(
    mysql_url: str, mysql_server: dict[str, Any], home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FlakyNetwork]:
    """The demo data in a fresh MariaDB database, which rentalctl reaches through the relay."""
    result = cli(home, "demo-data", "--scale", SCALE, env={"RENTALCTL_SOURCE_URL": mysql_url})
    assert result.exit_code == 0, (result.stdout, result.stderr)
    network = FlakyNetwork(mysql_server)
    monkeypatch.setenv("RENTALCTL_SOURCE_URL", network.url(mysql_url.rsplit("/", 1)[1]))
    yield network
    network.close()


@pytest.mark.mysql
def test_mysql_connection_killed_mid_stream_fails_the_extract_as_unavailable(
    mysql_demo: FlakyNetwork, home: Path, reliability: Any
) -> None:
    from rentalctl.pipeline import steps
    from rentalctl.run.layout import MANIFEST, run_prefix

    ctx = context(SMALL_BATCHES)
    mysql_demo.cut("bookings", after_bytes=40_000)  # the 1,000 rows are about 150 kB

    with pytest.raises(ResourceUnavailable) as caught:
        steps.extract(ctx, "bookings", "CUT")

    message = str(caught.value)
    assert caught.value.exit_code == 3
    assert len(mysql_demo.killed) == 1
    assert message.startswith(f"lost the connection to MySQL source at 127.0.0.1:{mysql_demo.port}")
    assert "Lost connection to MySQL server during query" in message
    streamed = re.search(r"after ([\d,]+) rows", message)
    assert streamed, message
    assert 100 <= int(streamed[1].replace(",", "")) < 1000, message  # mid-stream, fetches done
    prefix = run_prefix("bookings", "CUT")
    assert not ctx.lake.exists(prefix + MANIFEST)
    assert ctx.lake.list(prefix) == []  # nothing a reader could take for the run's data
    assert {t: b.value for t, b in ctx.state.bookmarks().items()} == dict.fromkeys(TABLES)
    ctx.state.close()

    # The same extract, on a connection that holds, reads every row.
    again = context(SMALL_BATCHES)
    assert steps.extract(again, "bookings", "AGAIN").rows == 1000
    assert unfinished_lake_files(home) == []
    again.state.close()
    reliability(
        "transient",
        "MariaDB session KILLed mid-stream during the bookings extract (a direct extract, "
        "100-row fetches)",
        "The extract fails with ResourceUnavailable (exit code 3) naming the source, the rows "
        "read so far and pymysql's 'Lost connection to MySQL server during query'; no manifest "
        "or part file is left and no bookmark moved; the extract run again reads all 1,000 rows",
        "nothing",
    )


@pytest.mark.mysql
def test_mysql_connection_killed_mid_stream_is_retried_within_the_run(
    mysql_demo: FlakyNetwork, home: Path, reference: Reference, reliability: Any
) -> None:
    ctx = context(SMALL_BATCHES)
    mysql_demo.cut("bookings", after_bytes=40_000)
    clock = FakeClock()

    record = run_in_process(ctx, "KILLED", clock)

    assert record["status"] == "SUCCEEDED", record.get("error")
    assert len(mysql_demo.killed) == 1
    extract = states(record)["ExtractLoad[bookings]"]
    assert (extract["status"], extract["attempts"]) == ("SUCCEEDED", 2)
    assert all(states(record)[f"ExtractLoad[{t}]"]["attempts"] == 1 for t in TABLES[:3])
    assert clock.sleeps == [RETRY_INTERVAL]
    ctx.state.close()
    verdict = assert_equals_clean_run(home, reference)
    reliability(
        "transient",
        "MariaDB session KILLed mid-stream during the bookings extract of a run",
        "The extract fails as ResourceUnavailable and the state machine retries it once, after "
        "the configured 10 s (retry.interval_seconds); the run succeeds and its warehouse, "
        "bookmarks and lake equal a clean run's",
        verdict,
    )


# --------------------------------------------------------------------------- 2. SQLite source


def test_sqlite_source_io_error_mid_stream_fails_the_run_cleanly(
    home: Path, reference: Reference, monkeypatch: pytest.MonkeyPatch, reliability: Any
) -> None:
    from rentalctl.adapters import source_sqlite

    cli_ok(home, "demo-data", "--scale", SCALE)
    real_stream = source_sqlite._SqliteSnapshot.stream
    failed: list[str] = []

    def disk_fails_on_the_second_fetch(
        self: Any, sql: str, params: Any, batch_size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        rows = cast(Generator[list[tuple[Any, ...]]], real_stream(self, sql, params, batch_size))
        if "bookings" not in sql:
            yield from rows
            return
        yield next(rows)
        rows.close()
        failed.append(sql)
        raise sqlite3.OperationalError("disk I/O error")  # what SQLITE_IOERR reads as

    monkeypatch.setattr(source_sqlite._SqliteSnapshot, "stream", disk_fails_on_the_second_fetch)
    # One table at a time: the extract then runs in this process, where the patch is.
    one = "pipeline.max_concurrency=1"
    result = cli(home, "--set", SMALL_BATCHES, "--set", one, "run")

    assert result.exit_code == 1, (result.stdout, result.stderr)
    (line,) = error_lines(result.stderr)
    assert "disk I/O error" in line
    # An untyped error fails the task as a failed Glue run does, and is retried as every failed
    # run is: the extract runs again from the bookmark (idempotent), and fails the same way.
    assert len(failed) == 3
    record = last_run(home)
    assert record["status"] == "FAILED"
    extract = states(record)["ExtractLoad[bookings]"]
    assert (extract["status"], extract["attempts"]) == ("FAILED", 3)
    assert "Transform" not in states(record)
    assert set(bookmarks(home).values()) == {None}
    assert layer_rows(snapshot_or_empty(home), "curated", "presentation") == {}

    monkeypatch.setattr(source_sqlite._SqliteSnapshot, "stream", real_stream)
    cli_ok(home, "run")
    verdict = assert_equals_clean_run(home, reference)
    reliability(
        "transient",
        "SQLite source: 'disk I/O error' on the second fetch of the bookings extract",
        "The extract is retried as every failed task is and fails the same way each time; the "
        "run fails with exit code 1 and the SQLite error in its message; no bookmark moved "
        "and no curated or presentation row was written; the next run succeeds and equals a "
        "clean run",
        verdict,
    )


# --------------------------------------------------------------------------- 3. warehouse


class _FailsPartWay:
    """Stands in for the DuckDB connection during one transaction: runs the first ``good``
    statements, then fails the next as a full disk would."""

    def __init__(self, real: Any, good: int) -> None:
        self.real, self.good, self.done = real, good, 0
        self.curated_rows_at_failure: int | None = None

    def execute(self, sql: str, params: Any = None) -> Any:
        import duckdb

        if sql not in ("BEGIN TRANSACTION", "COMMIT", "ROLLBACK"):
            if self.done == self.good:
                (count,) = self.real.execute("SELECT COUNT(*) FROM curated.apartments").fetchone()
                self.curated_rows_at_failure = int(count)
                raise duckdb.IOException(
                    'Could not write file "warehouse.duckdb.wal": No space left on device'
                )
            self.done += 1
        return self.real.execute(sql) if params is None else self.real.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _text(statement: Any) -> str:
    return statement if isinstance(statement, str) else str(statement[0])


def test_warehouse_error_during_the_merge_commits_nothing(
    home: Path, reference: Reference, monkeypatch: pytest.MonkeyPatch, reliability: Any
) -> None:
    from rentalctl.adapters.warehouse_duckdb import DuckdbWarehouse

    cli_ok(home, "demo-data", "--scale", SCALE)
    real = DuckdbWarehouse.execute_transaction
    injected: list[_FailsPartWay] = []

    def merge_fails_half_way(self: Any, statements: Any) -> None:
        is_merge = any("rejected_rows" in _text(s) for s in statements)
        if not is_merge or injected:
            return real(self, statements)
        conn = _FailsPartWay(self.conn, good=len(statements) // 2)
        injected.append(conn)
        self.conn = conn
        try:
            return real(self, statements)
        finally:
            self.conn = conn.real

    monkeypatch.setattr(DuckdbWarehouse, "execute_transaction", merge_fails_half_way)
    result = cli(home, "run")

    assert result.exit_code == 1, (result.stdout, result.stderr)
    (line,) = error_lines(result.stderr)
    assert "warehouse transaction failed and was rolled back" in line
    assert "No space left on device" in line
    (conn,) = injected
    assert conn.curated_rows_at_failure and conn.curated_rows_at_failure > 0  # really part-way
    record = last_run(home)
    publish = states(record)["Publish"]
    assert (publish["status"], publish["attempts"]) == ("FAILED", 3)  # the retries do nothing
    done = {step["name"] for step in record["steps"] if step["done"]}
    assert not done & {"merge", "presentation", "commit-bookmarks", "archive"}
    assert set(bookmarks(home).values()) == {None}
    after = warehouse_snapshot(home)
    assert layer_rows(after, "curated", "presentation") == {}  # not even the tables remain

    cli_ok(home, "run")
    verdict = assert_equals_clean_run(home, reference)
    reliability(
        "transient",
        "DuckDB fails ('No space left on device') half-way through the merge transaction, "
        "after curated rows were written in it",
        "The transaction rolls back and the run fails with exit code 1 (the failure is "
        "recorded, so the Publish retries fail at once and redo nothing); no curated, "
        "rejected, fx or presentation row stays and no bookmark moved; the next run succeeds "
        "and equals a clean run",
        verdict,
    )


# --------------------------------------------------------------------------- 4. state store


def test_bookmark_commit_interrupted_by_a_locked_state_store_is_retried(
    home: Path, reference: Reference, monkeypatch: pytest.MonkeyPatch, reliability: Any
) -> None:
    from rentalctl.adapters.state_sqlite import SqliteStateStore

    cli_ok(home, "demo-data", "--scale", SCALE)
    ctx = context()
    real = SqliteStateStore.commit_bookmark
    committed: list[str] = []
    refused: list[str] = []

    def locked_at_the_third_table(
        self: SqliteStateStore, table: str, expected: Any, new: Any, run_id: str
    ) -> None:
        if table != "user_viewing" or refused:
            real(self, table, expected, new, run_id)
            committed.append(table)
            return
        # Another process holds the database's write lock longer than the store waits.
        other = sqlite3.connect(self.path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        conn = self._connect()
        conn.execute("PRAGMA busy_timeout = 100")
        try:
            real(self, table, expected, new, run_id)
        except ResourceUnavailable as exc:
            refused.append(str(exc))
            raise
        finally:
            conn.execute("PRAGMA busy_timeout = 30000")
            other.execute("ROLLBACK")
            other.close()

    monkeypatch.setattr(SqliteStateStore, "commit_bookmark", locked_at_the_third_table)
    clock = FakeClock()
    record = run_in_process(ctx, "LOCKED", clock)

    assert len(refused) == 1 and "database is locked" in refused[0], refused
    assert record["status"] == "SUCCEEDED", record.get("error")
    publish = states(record)["Publish"]  # the retry skips the merge and the KPIs, done before
    assert (publish["status"], publish["attempts"]) == ("SUCCEEDED", 2)
    assert clock.sleeps == [RETRY_INTERVAL]
    # The retry commits every table again; the two moved by the first attempt are accepted as
    # this run's own.
    assert committed == ["apartments", "apartment_attributes", *TABLES]
    marks = ctx.state.bookmarks()
    assert {t: m.run_id for t, m in marks.items()} == dict.fromkeys(TABLES, "LOCKED")
    ctx.state.close()
    verdict = assert_equals_clean_run(home, reference)
    reliability(
        "transient",
        "SQLite state store write-locked by another process while Publish moves the third of "
        "four bookmarks",
        "The commit fails as ResourceUnavailable ('database is locked') after two bookmarks "
        "moved; the state machine retries Publish after 10 s, which skips the merge and the "
        "KPIs already done, recognises the two as this run's own commits and moves the other "
        "two; the run succeeds and equals a clean run",
        verdict,
    )


# --------------------------------------------------------------------------- 5. AWS


class AwsFaults:
    """Faults at the point where a request leaves botocore for AWS (moto's hook), so botocore's
    retry logic sees them exactly as it would see AWS's answers:

    - ``throttle(event, times)``: the next ``times`` requests get the service's throttling
      answer and never reach it;
    - ``lose_response(event, times)``: the next ``times`` requests reach the service and are
      applied, but their response is lost (a read time-out), as when a connection drops.

    ``event`` is botocore's ``before-send.<service>.<Operation>``. botocore's back-off sleeps
    and its adaptive rate limiter's waits are recorded instead of slept.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import botocore.endpoint
        import botocore.retries.bucket
        from moto.core.botocore_stubber import BotocoreStubber

        self.attempts: Counter[str] = Counter()
        self.sleeps: list[float] = []
        self._throttle: Counter[str] = Counter()
        self._lose: Counter[str] = Counter()
        real = BotocoreStubber.__call__
        faults = self

        def send(stubber: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
            if not stubber.enabled:
                return None
            faults.attempts[event_name] += 1
            if faults._throttle[event_name] > 0:
                faults._throttle[event_name] -= 1
                return _throttled(event_name, request)
            response = real(stubber, event_name, request, **kwargs)
            if faults._lose[event_name] > 0:
                from botocore.exceptions import ReadTimeoutError

                faults._lose[event_name] -= 1
                raise ReadTimeoutError(endpoint_url=request.url)
            return response

        class VirtualClock(botocore.retries.bucket.Clock):  # type: ignore[misc]
            """The rate limiter's clock: time moves a minute per look, so it never waits."""

            now = 0.0

            def current_time(self) -> float:
                VirtualClock.now += 60.0
                return VirtualClock.now

            def sleep(self, amount: float) -> None:
                faults.sleeps.append(amount)

        monkeypatch.setattr(BotocoreStubber, "__call__", send)
        monkeypatch.setattr(botocore.retries.bucket, "Clock", VirtualClock)
        monkeypatch.setattr(
            botocore.endpoint, "time", types.SimpleNamespace(sleep=self.sleeps.append)
        )

    def throttle(self, event: str, times: int) -> None:
        self._throttle[event] = times

    def lose_response(self, event: str, times: int) -> None:
        self._lose[event] = times


def _throttled(event_name: str, request: Any) -> Any:
    from botocore.awsrequest import AWSResponse
    from moto.core.botocore_stubber import MockRawResponse

    if ".dynamodb." in event_name:
        body = json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                "message": "Rate of requests exceeds the allowed throughput.",
            }
        )
        headers = {"Content-Type": "application/x-amz-json-1.0"}
        return AWSResponse(request.url, 400, headers, MockRawResponse(body))
    body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    return AWSResponse(request.url, 503, {"Content-Type": "application/xml"}, MockRawResponse(body))


ATTEMPTS = 9  # botocore's max_attempts of 8 in rentalctl/aws.py means 8 retries after the first
# A bookmark moves with its history entry in one transaction.
BOOKMARK_COMMIT = "before-send.dynamodb.TransactWriteItems"
PUT_ITEM = "before-send.dynamodb.PutItem"
PUT_OBJECT = "before-send.s3.PutObject"
T1 = "2025-03-31 23:45:22.819245"
T2 = "2025-04-01 23:59:01.000000"


@pytest.fixture
def aws_faults(aws_credentials: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsFaults]:
    from moto import mock_aws

    faults = AwsFaults(monkeypatch)
    with mock_aws():
        yield faults


def dynamo_store(region: str) -> Any:
    from rentalctl import aws
    from rentalctl.adapters.state_dynamodb import DynamoStateStore

    store = DynamoStateStore("rentalctl-state", boto3_session=aws.session(region))
    store.ensure()
    store.seed(["bookings"])
    store.commit_bookmark("bookings", None, T1, "BEFORE")
    return store


@pytest.fixture
def dynamo(aws_faults: AwsFaults, aws_credentials: str) -> Any:
    """A DynamoDB state store whose bookings bookmark was committed by run BEFORE; the faults'
    attempt counts start after that."""
    store = dynamo_store(aws_credentials)
    aws_faults.attempts.clear()
    return store


def lake_objects(lake: Any) -> Snapshot:
    """Every object of the lake as a one-column table, for support.lost."""
    return {"lake": Counter((key,) for key in lake.list(""))}


def stored_bookmark(store: Any) -> Snapshot:
    """The bookings bookmark as a one-row table, for support.lost."""
    mark = store.bookmarks()["bookings"]
    return {"state.bookmarks": Counter([(mark.table, mark.value, mark.run_id)])}


def test_dynamodb_throttling_is_absorbed_or_reported_with_nothing_half_written(
    aws_faults: AwsFaults, dynamo: Any, reliability: Any
) -> None:
    store = dynamo
    # What absorbs the faults: botocore's adaptive mode, 8 retries after the first attempt.
    assert store._client.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 9}

    aws_faults.throttle(BOOKMARK_COMMIT, 3)
    store.commit_bookmark("bookings", T1, T2, "RUN-A")
    assert aws_faults.attempts[BOOKMARK_COMMIT] == 4
    assert len(aws_faults.sleeps) >= 3  # a back-off before each retry
    expected = {"state.bookmarks": Counter([("bookings", T2, "RUN-A")])}
    assert stored_bookmark(store) == expected
    reliability(
        "transient",
        "DynamoDB throttles the bookmark commit (TransactWriteItems) three times",
        "botocore's adaptive retries (max_attempts 8) absorb it: the fourth attempt moves the "
        "bookmark, once",
        lost(expected, stored_bookmark(store)),
    )

    aws_faults.attempts.clear()
    aws_faults.throttle(BOOKMARK_COMMIT, 100)
    with pytest.raises(ResourceUnavailable) as caught:
        store.commit_bookmark("bookings", T2, "2025-04-02 00:00:00.000000", "RUN-B")
    assert caught.value.exit_code == 3
    assert aws_faults.attempts[BOOKMARK_COMMIT] == ATTEMPTS
    message = str(caught.value)
    assert "dynamodb://rentalctl-state" in message
    assert "still throttled" in message and "ThrottlingException" in message
    assert "try again later" in message
    assert stored_bookmark(store) == expected  # neither moved nor marked by RUN-B
    reliability(
        "transient",
        "DynamoDB throttles the bookmark commit (TransactWriteItems) on every attempt",
        "After 9 attempts the commit fails with ResourceUnavailable (exit code 3, retried by "
        "the state machine) naming the table and 'still throttled'; the bookmark keeps its "
        "value and run",
        lost(expected, stored_bookmark(store)),
    )

    run = {"run_id": "RUN-A", "started_at": "2025-04-01T03:00:00+00:00", "status": "RUNNING"}
    store.put_run(run)
    aws_faults.attempts.clear()
    aws_faults.throttle(PUT_ITEM, 3)
    store.put_run({**run, "status": "SUCCEEDED"})
    assert aws_faults.attempts[PUT_ITEM] == 4
    aws_faults.throttle(PUT_ITEM, 100)
    with pytest.raises(ResourceUnavailable, match="still throttled") as caught:
        store.put_run({**run, "status": "FAILED"})
    assert caught.value.exit_code == 3
    assert store.get_run("RUN-A") == {**run, "status": "SUCCEEDED"}
    records = {"state.runs": Counter([(json.dumps(store.get_run("RUN-A"), sort_keys=True),)])}
    wanted = {
        "state.runs": Counter([(json.dumps({**run, "status": "SUCCEEDED"}, sort_keys=True),)])
    }
    reliability(
        "transient",
        "DynamoDB throttles a run-record write (PutItem) three times, then on every attempt",
        "Three are absorbed by botocore's retries; the persistent one fails with "
        "ResourceUnavailable (exit code 3) and the stored record is the last one written whole",
        lost(wanted, records),
    )


def test_dynamodb_write_applied_but_its_response_lost_is_not_a_conflict(
    aws_faults: AwsFaults, dynamo: Any, reliability: Any
) -> None:
    from rentalctl.adapters.state import BookmarkConflict
    from rentalctl.run_lock import describe_self, is_stale

    store = dynamo

    aws_faults.lose_response(BOOKMARK_COMMIT, 1)
    store.commit_bookmark("bookings", T1, T2, "RUN-A")  # botocore repeats the applied write
    assert aws_faults.attempts[BOOKMARK_COMMIT] == 2
    expected = {"state.bookmarks": Counter([("bookings", T2, "RUN-A")])}
    assert stored_bookmark(store) == expected
    with pytest.raises(BookmarkConflict):  # another run's commit from the same value still loses
        store.commit_bookmark("bookings", T1, "2025-04-03 00:00:00.000000", "RUN-B")
    assert stored_bookmark(store) == expected

    aws_faults.attempts.clear()
    aws_faults.lose_response(PUT_ITEM, 1)
    holder = describe_self("RUN-C")
    assert store.acquire_lock(holder, is_stale) is None  # taken, not "held by RUN-C"
    assert aws_faults.attempts[PUT_ITEM] == 2
    store.release_lock("RUN-C")
    assert store.acquire_lock(describe_self("RUN-D"), is_stale) is None
    store.release_lock("RUN-D")
    reliability(
        "transient",
        "DynamoDB applies the conditional bookmark commit, and then the lock's conditional "
        "put, but each response is lost (read time-out), so botocore sends it again",
        "The repeated write fails its own condition; the store sees that the item holds exactly "
        "what this run wrote and succeeds (no BookmarkConflict, no 'lock held by itself'); the "
        "bookmark moved once; a genuine conflict is still refused",
        lost(expected, stored_bookmark(store)),
    )


def test_s3_throttling_is_absorbed_or_reported_with_no_object_half_written(
    aws_faults: AwsFaults, aws_credentials: str, tmp_path: Path, reliability: Any
) -> None:
    from rentalctl import aws
    from rentalctl.adapters.lake_s3 import S3Lake

    session = aws.session(aws_credentials)
    session.client("s3").create_bucket(
        Bucket="rentalctl-lake", CreateBucketConfiguration={"LocationConstraint": aws_credentials}
    )
    lake = S3Lake("rentalctl-lake", "lake", boto3_session=session)
    part = b"booking_id\n1\n2\n"

    aws_faults.throttle(PUT_OBJECT, 3)
    lake.put_bytes("raw/bookings/run_id=R/_manifest.json", b"{}")
    assert aws_faults.attempts[PUT_OBJECT] == 4
    file = tmp_path / "part-00000.csv.gz"
    file.write_bytes(part)
    aws_faults.throttle(PUT_OBJECT, 3)
    lake.put_file(file, "raw/bookings/run_id=R/part-00000.csv.gz")
    assert lake.get_bytes("raw/bookings/run_id=R/part-00000.csv.gz") == part
    expected = {
        "lake": Counter(
            [
                ("raw/bookings/run_id=R/_manifest.json",),
                ("raw/bookings/run_id=R/part-00000.csv.gz",),
            ]
        )
    }
    assert lake_objects(lake) == expected
    reliability(
        "transient",
        "S3 answers SlowDown three times to a lake PutObject (a manifest, then a part file)",
        "botocore's adaptive retries absorb it: each object is written once, whole",
        lost(expected, lake_objects(lake)),
    )

    aws_faults.attempts.clear()
    aws_faults.throttle(PUT_OBJECT, 100)
    with pytest.raises(ResourceUnavailable) as caught:
        lake.put_bytes("raw/bookings/run_id=S/_manifest.json", b"{}")
    assert caught.value.exit_code == 3
    assert aws_faults.attempts[PUT_OBJECT] == ATTEMPTS
    message = str(caught.value)
    assert "S3 bucket 'rentalctl-lake'" in message
    assert "still throttled" in message and "SlowDown" in message
    file.write_bytes(part)
    aws_faults.throttle(PUT_OBJECT, 100)
    with pytest.raises(ResourceUnavailable, match=r"still throttled .*SlowDown"):
        lake.put_file(file, "raw/bookings/run_id=S/part-00000.csv.gz")
    assert lake_objects(lake) == expected  # nothing of run S exists
    reliability(
        "transient",
        "S3 answers SlowDown to every attempt of a lake PutObject (put_bytes and upload_file)",
        "After 9 attempts the write fails with ResourceUnavailable (exit code 3, retried by the "
        "state machine) naming the bucket and 'still throttled'; no object, partial or whole, "
        "exists",
        lost(expected, lake_objects(lake)),
    )
