"""Concurrency: one run at a time (the pipeline lock, docs/contract.md §8: exit code 4), and
bookmark commits that race (docs/contract.md §4: a conditional write, exactly one winner).

Real processes are few on purpose (each full run in a process of its own starts a Spark JVM):
the runs that must be real and concurrent are; the other holder of the lock is, where that is
enough, a lock taken by this test in this process, which is alive and so never stale.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import types
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rentalctl import config
from rentalctl import run_records as records
from rentalctl.adapters.state import BookmarkConflict, StateStore
from rentalctl.context import Context
from rentalctl.errors import LockHeld, PipelineFailed
from rentalctl.orchestration.clock import FakeClock
from rentalctl.orchestration.local import run_local
from rentalctl.run_lock import describe_self, is_stale
from tests.reliability.support import Snapshot, bookmarks, lost
from tests.reliability.test_transient_faults import (
    SCALE,
    TABLES,
    Reference,
    assert_equals_clean_run,
    clean_reference,
    cli,
    cli_ok,
    error_lines,
)

pytestmark = pytest.mark.slow

T0 = "2025-03-01 00:00:00.000000"


@pytest.fixture
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return clean_reference(tmp_path_factory)


def state(home: Path) -> StateStore:
    ctx = Context(config.load(env={"RENTALCTL_HOME": str(home)}))
    ctx.state.ensure()
    return ctx.state


def lock_holder(home: Path) -> dict[str, Any] | None:
    """Who holds the pipeline lock, read behind the store's back (None when free)."""
    import sqlite3

    conn = sqlite3.connect(home / "state.db")
    try:
        row = conn.execute("SELECT holder FROM locks WHERE name = 'pipeline'").fetchone()
    except sqlite3.OperationalError:  # no locks table: never taken
        return None
    finally:
        conn.close()
    return json.loads(row[0]) if row else None


def recorded_runs(home: Path) -> list[str]:
    store = state(home)
    try:
        return [r["run_id"] for r in store.list_runs()]
    finally:
        store.close()


def demo_context(home: Path) -> Context:
    """Demo data in ``home``, and a context on it with the store created and seeded."""
    cli_ok(home, "demo-data", "--scale", SCALE)
    ctx = Context(config.load())
    ctx.state.ensure()
    ctx.state.seed(ctx.settings.tables)
    return ctx


def run_in_a_process(home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``rentalctl -o json run`` on ``home`` in a process of its own, as cron starts it."""
    return subprocess.run(
        [sys.executable, "-m", "rentalctl", "-o", "json", "run"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env={**os.environ, "RENTALCTL_HOME": str(home)},
    )


def refused_for_the_lock(result: Any, holder: str) -> str:
    """A command refused with exit code 4 and one error naming the holder; returns it."""
    assert result.exit_code == 4, (result.stdout, result.stderr)
    (line,) = error_lines(result.stderr)
    assert f"another run holds the pipeline lock: run {holder} " in line, line
    assert "since" in line
    return str(line)


# --------------------------------------------------------------------------- 1. two runs at once


def test_a_second_process_is_refused_while_a_run_holds_the_lock(
    home: Path, reference: Reference, tmp_path: Path, reliability: Any
) -> None:
    ctx = demo_context(home)
    seen: dict[str, Any] = {}

    def while_transforming(name: str, what: str, _: dict[str, Any]) -> None:
        # The first run is inside its Transform, holding the lock: try a second run from a
        # process of its own, and a backfill from here, before letting it go on.
        if (name, what) != ("Transform", "started") or seen:
            return
        seen["holder"] = lock_holder(home)
        seen["process"] = run_in_a_process(home, tmp_path)
        seen["backfill"] = cli(home, "-o", "json", "backfill", "--since", "2025-01-01")

    record = run_local(
        ctx,
        run_id="FIRST",
        mode="incremental",
        since=None,
        until=None,
        tables=TABLES,
        progress=while_transforming,
        clock=FakeClock(),
    )

    holder = seen["holder"]
    assert (holder["run_id"], holder["pid"]) == ("FIRST", os.getpid())
    second = seen["process"]
    assert second.returncode == 4, (second.stdout, second.stderr)
    error = json.loads(second.stdout)["error"]
    assert error["kind"] == "lock_held"
    message = error["message"]
    for part in ("run FIRST", f"host {socket.gethostname()}", f"pid {os.getpid()}", "since"):
        assert part in message, message
    assert "Traceback" not in second.stderr
    refused_for_the_lock(seen["backfill"], "FIRST")

    assert record["status"] == "SUCCEEDED", record.get("error")
    tasks = [s for s in record["states"] if s["attempts"]]  # Pass and Map states have none
    assert len(tasks) == len(TABLES) + 3 and all(s["attempts"] == 1 for s in tasks), tasks
    assert recorded_runs(home) == ["FIRST"]  # neither refused command started a run
    assert lock_holder(home) is None
    ctx.state.close()
    verdict = assert_equals_clean_run(home, reference)
    reliability(
        "concurrency",
        "A second `rentalctl run`, a process of its own, started while a run is in its Transform",
        "The second exits with code 4 before starting anything; its message names the running "
        "run, its host and pid and since when; the first run goes on untouched and equals a "
        "clean run",
        verdict,
    )
    reliability(
        "concurrency",
        "`rentalctl backfill` started while a run is in its Transform",
        "Exits with code 4 naming the running run; no run record, no bookmark or warehouse "
        "change; the run equals a clean run",
        verdict,
    )


def test_a_run_during_a_backfill_is_refused(home: Path, reliability: Any) -> None:
    cli_ok(home, "demo-data", "--scale", SCALE)
    store = state(home)
    store.seed(TABLES)  # as the backfill's own start did
    ctx = Context(config.load())
    records.start(
        ctx, "BACKFILL", mode="backfill", since="2025-01-01", until=None, tables=TABLES,
        target="local",
    )  # fmt: skip
    # This test's process is alive, so the lock it takes is held, as a running backfill's is.
    assert store.acquire_lock(describe_self("BACKFILL"), is_stale) is None
    before = {"bookmarks": Counter(bookmarks(home).items())}

    refused_for_the_lock(cli(home, "run"), "BACKFILL")
    refused_for_the_lock(cli(home, "run", "--no-wait"), "BACKFILL")
    refused_for_the_lock(cli(home, "backfill", "--since", "2025-02-01"), "BACKFILL")

    assert recorded_runs(home) == ["BACKFILL"]
    assert not (home / "logs").exists()  # --no-wait started nothing in the background
    assert not (home / "warehouse.duckdb").exists()
    with pytest.raises(LockHeld, match="run BACKFILL"):
        store.acquire_lock(describe_self("PROBE"), is_stale)
    after = {"bookmarks": Counter(bookmarks(home).items())}
    assert after == before
    store.release_lock("BACKFILL")
    store.close()
    ctx.state.close()
    reliability(
        "concurrency",
        "`rentalctl run`, `run --no-wait` and a second `backfill` started while a backfill "
        "holds the lock",
        "Each exits with code 4 naming the backfill run; none records a run, starts a "
        "background process, or touches the warehouse or a bookmark; the backfill keeps the "
        "lock",
        lost(before, after),
    )


# --------------------------------------------------------------------------- 2. --no-wait


def test_run_no_wait_twice_in_a_row_the_second_exits_4(
    home: Path, monkeypatch: pytest.MonkeyPatch, reliability: Any
) -> None:
    from rentalctl.orchestration import local

    cli_ok(home, "demo-data", "--scale", SCALE)
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        child = real_popen(*args, **kwargs)
        started.append(child)
        return child

    monkeypatch.setattr(
        local, "subprocess", types.SimpleNamespace(Popen=popen, DEVNULL=subprocess.DEVNULL)
    )
    try:
        first = cli(home, "-o", "json", "run", "--no-wait")
        second = cli(home, "-o", "json", "run", "--no-wait")  # at once, as cron firing twice

        assert first.exit_code == 0, (first.stdout, first.stderr)
        run_id = json.loads(first.stdout)["run_id"]
        refused_for_the_lock(second, run_id)
        assert json.loads(second.stdout)["error"]["kind"] == "lock_held"
        assert len(started) == 1  # one background run, not two
        (child,) = started
        # The background process holds the lock under its own pid and its run starts.
        deadline = time.monotonic() + 120
        while recorded_runs(home) != [run_id]:
            assert child.poll() is None, "the background run ended before it started"
            assert time.monotonic() < deadline, "the background run did not start"
            time.sleep(0.2)
        holder = lock_holder(home)
        assert holder is not None
        assert (holder["run_id"], holder["pid"]) == (run_id, child.pid)
        expected = {"runs": Counter([(run_id,)])}
        recorded = {"runs": Counter((r,) for r in recorded_runs(home))}
        assert recorded == expected
    finally:
        for child in started:  # the run itself is not what this test is about
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    reliability(
        "concurrency",
        "`rentalctl run --no-wait` twice in a row",
        "The second exits with code 4 naming the first run, which its own background process "
        "holds; only one background run is started",
        lost(expected, recorded),
    )


# --------------------------------------------------------------------------- 3. racing commits

# A writer process: opens its own store, then for each round waits for "go" on stdin and
# commits; prints its outcomes as JSON.
WRITER = """
import json, sys
from pathlib import Path
from rentalctl.adapters.state import BookmarkConflict
from rentalctl.adapters.state_sqlite import SqliteStateStore
from rentalctl.errors import PipelineFailed

store = SqliteStateStore(Path(sys.argv[1]))
store.bookmarks()  # connected before the start
outcomes = []
for table, expected, new, run_id in json.loads(sys.argv[2]):
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        store.commit_bookmark(table, expected, new, run_id)
        outcomes.append({"won": True})
    except BookmarkConflict as exc:
        outcomes.append({"won": False, "exit_code": int(exc.exit_code),
                         "pipeline_failed": isinstance(exc, PipelineFailed), "message": str(exc)})
print(json.dumps(outcomes), flush=True)
"""

WRITERS = 6


def _new_value(base: str, writer: int) -> str:
    return base.replace("00.000000", f"{writer + 1:02d}.000000")


def check_one_winner(
    outcomes: dict[str, dict[str, Any]], stored: Any, table: str, news: dict[str, str]
) -> tuple[Snapshot, Snapshot]:
    """Exactly one writer won; every other got BookmarkConflict (exit code 1) naming the
    winner's value; the store holds the winner's value and run. Returns (expected, stored)."""
    winners = [run for run, o in outcomes.items() if o["won"]]
    assert len(winners) == 1, outcomes
    (winner,) = winners
    for run, outcome in outcomes.items():
        if run != winner:  # a BookmarkConflict, which is a PipelineFailed
            assert (outcome["exit_code"], outcome["pipeline_failed"]) == (1, True), outcome
            assert outcome["message"].startswith(f"bookmark of {table} not moved"), outcome
            assert f"found {news[winner]!r}" in outcome["message"], outcome
    assert (stored.value, stored.run_id) == (news[winner], winner)
    expected = {"state.bookmarks": Counter([(table, news[winner], winner)])}
    return expected, {"state.bookmarks": Counter([(table, stored.value, stored.run_id)])}


def test_racing_bookmark_commits_on_sqlite_processes(tmp_path: Path, reliability: Any) -> None:
    from rentalctl.adapters.state_sqlite import SqliteStateStore

    path = tmp_path / "state.db"
    setup = SqliteStateStore(path)
    setup.ensure()
    setup.seed(["apartments", "bookings"])
    setup.commit_bookmark("bookings", None, T0, "SEED")
    rounds = [("apartments", None, "2025-03-02 00:00:00.000000"), ("bookings", T0, T0)]
    plans = {
        f"run-{w}": [[t, expected, _new_value(base, w), f"run-{w}"] for t, expected, base in rounds]
        for w in range(WRITERS)
    }
    writers = {
        run: subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), json.dumps(plan)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for run, plan in plans.items()
    }
    try:
        for _ in rounds:  # every writer ready, then all let go at once
            for proc in writers.values():
                assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
            for proc in writers.values():
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
        results = {
            run: json.loads(proc.communicate(timeout=60)[0]) for run, proc in writers.items()
        }
    finally:
        for proc in writers.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    marks = setup.bookmarks()
    setup.close()
    for i, (table, _, _) in enumerate(rounds):
        news = {run: str(plan[i][2]) for run, plan in plans.items()}
        outcomes = {run: results[run][i] for run in plans}
        expected, stored = check_one_winner(outcomes, marks[table], table, news)
        assert stored == expected
    reliability(
        "concurrency",
        f"{WRITERS} processes commit one bookmark at the same moment from the same value, "
        "on the SQLite state store (from no bookmark, then from a committed one)",
        f"Exactly one wins each time; the other {WRITERS - 1} get BookmarkConflict (exit code "
        "1) naming the winner's value; the stored bookmark is the winner's value and run",
        lost(expected, stored),
    )


@pytest.fixture
def dynamodb_serialising_item_writes(
    aws_credentials: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    """moto in process, with DynamoDB's per-item atomicity: moto evaluates a conditional
    UpdateItem and applies it in separate steps, so concurrent requests can all pass the same
    condition; DynamoDB applies writes to one item one at a time. A lock around moto's UpdateItem
    and TransactWriteItems restores that, so what is tested is rentalctl's condition under
    concurrent requests."""
    from moto import mock_aws
    from moto.dynamodb.models import DynamoDBBackend

    from rentalctl import aws

    one_at_a_time = threading.RLock()  # TransactWriteItems calls UpdateItem inside
    # A bookmark moves in one TransactWriteItems (the bookmark and its history entry), which
    # moto checks and applies in separate steps too: it takes the same lock.
    for name in ("update_item", "transact_write_items"):
        monkeypatch.setattr(DynamoDBBackend, name, one_item_at_a_time(one_at_a_time, name))
    with mock_aws():
        yield aws.session(aws_credentials)


def one_item_at_a_time(lock: Any, name: str) -> Any:
    """moto's DynamoDBBackend method ``name``, applied under ``lock``."""
    from moto.dynamodb.models import DynamoDBBackend

    real = getattr(DynamoDBBackend, name)

    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return real(self, *args, **kwargs)

    return locked


def race(
    stores: list[Any], table: str, expected: str | None, news: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """One thread per store commits ``table`` from ``expected`` to its own value, all released
    at once by a barrier; returns each run's outcome."""
    barrier = threading.Barrier(len(stores))
    outcomes: dict[str, dict[str, Any]] = {}

    def commit(store: Any, run: str) -> None:
        barrier.wait()
        try:
            store.commit_bookmark(table, expected, news[run], run)
            outcomes[run] = {"won": True}
        except BookmarkConflict as exc:
            outcomes[run] = {
                "won": False,
                "exit_code": int(exc.exit_code),
                "pipeline_failed": isinstance(exc, PipelineFailed),
                "message": str(exc),
            }

    threads = [
        threading.Thread(target=commit, args=(store, run))
        for store, run in zip(stores, news, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == len(stores), outcomes
    return outcomes


def test_racing_bookmark_commits_on_dynamodb_threads(
    dynamodb_serialising_item_writes: Any, reliability: Any
) -> None:
    from rentalctl.adapters.state_dynamodb import DynamoStateStore

    session = dynamodb_serialising_item_writes
    setup = DynamoStateStore("rentalctl-state", boto3_session=session)
    setup.ensure()
    tables = ["apartments", "bookings", "user_viewing"]
    setup.seed(tables)
    setup.commit_bookmark("bookings", None, T0, "SEED")
    writers = 8
    # Each writer its own store and client, built here: boto3 sessions are not thread-safe.
    stores = [DynamoStateStore("rentalctl-state", boto3_session=session) for _ in range(writers)]
    for store in stores:
        assert store._client is not None
    rounds = [
        ("apartments", None, "2025-03-02 00:00:00.000000"),
        ("bookings", T0, T0),
        ("user_viewing", None, "2025-03-03 00:00:00.000000"),
    ]
    checked: list[tuple[Snapshot, Snapshot]] = []
    for table, expected_value, base in rounds:
        news = {f"run-{w}": _new_value(base, w) for w in range(writers)}
        outcomes = race(stores, table, expected_value, news)
        checked.append(check_one_winner(outcomes, setup.bookmarks()[table], table, news))
    for expected, stored in checked:
        assert stored == expected
    reliability(
        "concurrency",
        f"{writers} threads, each with its own client, commit one bookmark at the same moment "
        "from the same value, on the DynamoDB state store (moto, with DynamoDB's one-at-a-time "
        "item writes)",
        f"Exactly one wins each of 3 rounds; the other {writers - 1} get BookmarkConflict (exit "
        "code 1) naming the winner's value; the stored bookmark is the winner's value and run",
        lost(*checked[-1]),
    )


# --------------------------------------------------------------------------- backfill vs schedule


def test_a_scheduled_run_is_refused_while_a_backfill_holds_the_lock(
    home: Path, tmp_path: Path, spark: Any, reliability: Any
) -> None:
    """A backfill is a run like any other: it holds the pipeline lock from Begin to the end, so
    the nightly `run` started in its middle exits 4 and cannot overwrite it; the backfill's rows
    are all there afterwards and no bookmark moved."""
    import sqlite3

    import duckdb

    ctx = demo_context(home)
    seen: dict[str, Any] = {}

    def while_transforming(name: str, what: str, _: dict[str, Any]) -> None:
        if (name, what) != ("Transform", "started") or seen:
            return
        seen["scheduled"] = run_in_a_process(home, tmp_path)

    record = run_local(
        ctx,
        run_id="BACKFILL",
        mode="backfill",
        since="2025-03-01",
        until=None,
        tables=TABLES,
        progress=while_transforming,
        clock=FakeClock(),
    )
    scheduled = seen["scheduled"]
    assert scheduled.returncode == 4, (scheduled.stdout, scheduled.stderr)
    error = json.loads(scheduled.stdout)["error"]
    assert error["kind"] == "lock_held"
    assert "another run holds the pipeline lock: run BACKFILL " in error["message"]
    assert record["status"] == "SUCCEEDED", record.get("error")
    assert recorded_runs(home) == ["BACKFILL"]
    assert bookmarks(home) == dict.fromkeys(TABLES)
    ctx.state.close()

    column = {"user_viewing": "viewed_at"}
    source = sqlite3.connect(home / "source.db")
    expected = {
        t: source.execute(
            f"SELECT COUNT(*) FROM {t} WHERE {column.get(t, 'last_modified_timestamp')}"
            " >= '2025-03-01'"
        ).fetchone()[0]
        for t in TABLES
    }
    source.close()
    warehouse = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    loaded = {
        t: warehouse.execute(f"SELECT COUNT(*) FROM raw.{t} WHERE _run_id = 'BACKFILL'").fetchone()[
            0
        ]  # type: ignore[index]
        for t in TABLES
    }
    warehouse.close()
    assert loaded == expected and all(n > 0 for n in expected.values())
    reliability(
        "concurrency",
        "The scheduled `rentalctl run`, a process of its own, started while a backfill is in its "
        "Transform",
        "It exits with code 4 naming the backfill run; the backfill succeeds with every source "
        "row of its window in raw, and no bookmark moved",
    )
