"""The state-store port (rentalctl/adapters/state.py) against both adapters: SQLite in a temporary
folder and DynamoDB on moto, in process. One behavioural suite; every expectation is a literal.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rentalctl import aws
from rentalctl.adapters.factories import open_state
from rentalctl.adapters.state import BookmarkConflict, StateStore, actor
from rentalctl.adapters.state_dynamodb import DynamoStateStore
from rentalctl.adapters.state_sqlite import SqliteStateStore
from rentalctl.errors import LockHeld, ResourceUnavailable
from rentalctl.urls import parse_state

TABLE = "rentalctl-state-test"
T1 = "2025-03-01 10:00:00.000000"
T2 = "2025-03-31 23:59:59.000001"
T3 = "2025-04-02 08:30:00.250000"


@dataclass
class Backend:
    kind: str
    new: Callable[[], StateStore]  # a fresh store object on the same location
    exists: Callable[[], bool]  # does the store exist, asked behind the adapter's back
    session: Any = None


@pytest.fixture
def aws_env(on_moto: str) -> Any:
    """A session on the fake credentials (conftest.py), moto intercepting every call."""
    return aws.session(on_moto)


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened: list[StateStore] = []

    def track(store: StateStore) -> StateStore:
        opened.append(store)
        return store

    if request.param == "sqlite":
        path = tmp_path / "state" / "state.db"
        yield Backend("sqlite", lambda: track(SqliteStateStore(path)), path.exists)
    else:
        session = request.getfixturevalue("aws_env")
        ddb = session.client("dynamodb")
        yield Backend(
            "dynamodb",
            lambda: track(DynamoStateStore(TABLE, boto3_session=session)),
            lambda: TABLE in ddb.list_tables()["TableNames"],
            session,
        )
    for store in opened:
        store.close()


@pytest.fixture
def store(backend: Backend) -> StateStore:
    store = backend.new()
    assert store.ensure() is True
    return store


def values(store: StateStore) -> dict[str, Any]:
    return {table: b.value for table, b in store.bookmarks().items()}


# --- creation -------------------------------------------------------------------------------


def test_ensure_creates_then_is_idempotent(backend: Backend) -> None:
    first = backend.new()
    assert backend.exists() is False
    assert first.ensure() is True
    assert backend.exists() is True
    assert first.ensure() is False
    assert backend.new().ensure() is False
    assert first.bookmarks() == {}
    assert first.list_runs() == []


def test_dynamodb_table_is_on_demand_with_pitr(aws_env: Any) -> None:
    assert DynamoStateStore(TABLE, boto3_session=aws_env).ensure() is True
    ddb = aws_env.client("dynamodb")
    table = ddb.describe_table(TableName=TABLE)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    backups = ddb.describe_continuous_backups(TableName=TABLE)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_sqlite_schema_and_wal(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "nested" / "deeper" / "state.db"
    assert SqliteStateStore(path).ensure() is True
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(bookmarks)")]
    assert columns == ["table_name", "value_text", "value_int", "updated_at", "run_id"]
    columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
    assert columns == ["run_id", "started_at", "doc"]
    conn.close()


# --- seed and reset -------------------------------------------------------------------------


def test_seed_adds_missing_and_never_resets(store: StateStore) -> None:
    assert store.seed(["apartments", "bookings", "apartments"]) == ["apartments", "bookings"]
    assert values(store) == {"apartments": None, "bookings": None}
    assert store.bookmarks()["bookings"].run_id is None
    store.commit_bookmark("bookings", None, T1, "run-1")
    assert store.seed(["apartments", "bookings", "user_viewing"]) == ["user_viewing"]
    assert values(store) == {"apartments": None, "bookings": T1, "user_viewing": None}
    assert store.bookmarks()["bookings"].run_id == "run-1"
    assert store.seed(["bookings"]) == []


def test_reset_sets_none(store: StateStore) -> None:
    store.seed(["bookings"])
    store.commit_bookmark("bookings", None, T1, "run-1")
    store.reset("bookings")
    after = store.bookmarks()["bookings"]
    assert (after.value, after.run_id) == (None, None)
    assert after.updated_at is not None
    store.commit_bookmark("bookings", None, T2, "run-2")  # the next run starts from None
    assert values(store) == {"bookings": T2}


# --- history ------------------------------------------------------------------------------


def changes(store: StateStore, table: str | None = None) -> list[tuple[Any, ...]]:
    return [(c.table, c.old, c.new, c.run_id, c.command) for c in store.history(table)]


def test_every_change_is_in_the_history_once(backend: Backend, store: StateStore) -> None:
    store.seed(["bookings", "user_viewing"])
    assert store.history() == []
    store.commit_bookmark("bookings", None, T1, "run-1")
    store.commit_bookmark("bookings", T1, T2, "run-2")
    store.commit_bookmark("bookings", T1, T2, "run-2")  # a retried step: no second entry
    store.commit_bookmark("bookings", T2, T2, "run-3")  # moves nothing: no entry
    store.commit_bookmark("user_viewing", None, 40, "run-3")
    with pytest.raises(BookmarkConflict):
        store.commit_bookmark("bookings", T1, T3, "run-4")  # refused: no entry
    store.set_bookmark("bookings", T2, T1, "bookmarks rewind bookings --by 2h")
    with pytest.raises(BookmarkConflict, match="moved meanwhile"):
        store.set_bookmark("bookings", T2, T3, "bookmarks set bookings x")  # refused: no entry
    store.reset("user_viewing", "seed-bookmarks --reset user_viewing")
    expected = [
        ("bookings", None, T1, "run-1", None),
        ("bookings", T1, T2, "run-2", None),
        ("user_viewing", None, 40, "run-3", None),
        ("bookings", T2, T1, None, "bookmarks rewind bookings --by 2h"),
        ("user_viewing", 40, None, None, "seed-bookmarks --reset user_viewing"),
    ]
    fresh = backend.new()
    assert changes(fresh) == expected
    assert changes(fresh, "user_viewing") == [expected[2], expected[4]]
    host, user = actor()
    assert {(c.host, c.user) for c in fresh.history()} == {(host, user)}
    times = [c.at for c in fresh.history()]
    assert times == sorted(times) and len(set(times)) == 5
    assert values(fresh) == {"bookings": T1, "user_viewing": None}
    mark = fresh.bookmarks()["bookings"]
    assert (mark.value, mark.run_id) == (T1, None)


def test_set_bookmark_needs_an_entry_and_the_expected_value(store: StateStore) -> None:
    with pytest.raises(BookmarkConflict, match="no entry"):
        store.set_bookmark("bookings", None, T1, "bookmarks set bookings")
    store.seed(["bookings"])
    store.set_bookmark("bookings", None, T3, "bookmarks set bookings")
    store.set_bookmark("bookings", T3, T1, "bookmarks set bookings")  # backwards is allowed
    store.commit_bookmark("bookings", T1, T2, "run-1")  # and a run goes on from there
    assert values(store) == {"bookings": T2}
    assert [c.new for c in store.history()] == [T3, T1, T2]


# --- conditional commits --------------------------------------------------------------------


def test_commit_moves_forward(store: StateStore) -> None:
    store.seed(["bookings"])
    store.commit_bookmark("bookings", None, T1, "run-1")
    assert values(store) == {"bookings": T1}
    store.commit_bookmark("bookings", T1, T2, "run-2")
    mark = store.bookmarks()["bookings"]
    assert (mark.table, mark.value, mark.run_id) == ("bookings", T2, "run-2")
    assert mark.updated_at is not None
    store.commit_bookmark("bookings", T2, T2, "run-3")  # no new rows: same value is allowed
    assert values(store) == {"bookings": T2}


def test_commit_with_wrong_expected_conflicts(store: StateStore) -> None:
    store.seed(["bookings"])
    store.commit_bookmark("bookings", None, T2, "run-1")
    with pytest.raises(BookmarkConflict) as err:
        store.commit_bookmark("bookings", T1, T3, "run-2")
    message = str(err.value)
    for part in ("bookings", repr(T1), repr(T2), repr(T3)):
        assert part in message
    assert err.value.exit_code == 1
    with pytest.raises(BookmarkConflict):
        store.commit_bookmark("bookings", None, T3, "run-2")  # it is no longer None
    mark = store.bookmarks()["bookings"]
    assert (mark.value, mark.run_id) == (T2, "run-1")


def test_commit_backwards_conflicts(store: StateStore) -> None:
    store.seed(["bookings"])
    store.commit_bookmark("bookings", None, T2, "run-1")
    with pytest.raises(BookmarkConflict, match="bookings"):
        store.commit_bookmark("bookings", T2, T1, "run-2")
    with pytest.raises(BookmarkConflict):
        store.commit_bookmark("bookings", T2, 7, "run-2")  # another type is not "forward"
    mark = store.bookmarks()["bookings"]
    assert (mark.value, mark.run_id) == (T2, "run-1")


def test_commit_unseeded_table_conflicts(store: StateStore) -> None:
    store.seed(["bookings"])
    with pytest.raises(BookmarkConflict, match="apartments"):
        store.commit_bookmark("apartments", None, T1, "run-1")
    with pytest.raises(BookmarkConflict, match="apartments"):
        store.commit_bookmark("apartments", T1, T2, "run-1")
    assert values(store) == {"bookings": None}


def test_watermark_types_round_trip(backend: Backend, store: StateStore) -> None:
    store.seed(["apartments", "bookings"])
    store.commit_bookmark("apartments", None, 41, "run-1")
    store.commit_bookmark("apartments", 41, 9_007_199_254_740_993, "run-2")  # > 2**53
    store.commit_bookmark("bookings", None, "2025-03-31 23:59:59.000001", "run-1")
    fresh = backend.new().bookmarks()
    assert fresh["apartments"].value == 9_007_199_254_740_993
    assert type(fresh["apartments"].value) is int
    assert fresh["bookings"].value == "2025-03-31 23:59:59.000001"
    assert type(fresh["bookings"].value) is str
    with pytest.raises(BookmarkConflict):  # "41" is not 41: the type is part of the value
        store.commit_bookmark("apartments", "9007199254740993", "9007199254740994", "run-3")
    with pytest.raises(TypeError):
        store.commit_bookmark("bookings", "2025-03-31 23:59:59.000001", True, "run-3")
    assert values(store) == {
        "apartments": 9_007_199_254_740_993,
        "bookings": "2025-03-31 23:59:59.000001",
    }


def test_racing_commits_exactly_one_wins(backend: Backend, store: StateStore) -> None:
    store.seed(["bookings"])
    other = backend.new()
    store.commit_bookmark("bookings", None, T1, "run-a")
    with pytest.raises(BookmarkConflict):
        other.commit_bookmark("bookings", None, T2, "run-b")
    mark = other.bookmarks()["bookings"]
    assert (mark.value, mark.run_id) == (T1, "run-a")


def _race(path: Path, table: str) -> dict[str, str]:
    """Two threads, each with its own store object, commit ``table`` from None at once."""
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def commit(run_id: str, new: str) -> None:
        with SqliteStateStore(path) as own:
            barrier.wait()
            try:
                own.commit_bookmark(table, None, new, run_id)
                outcomes[run_id] = "won"
            except BookmarkConflict:
                outcomes[run_id] = "conflict"

    threads = [
        threading.Thread(target=commit, args=("run-a", T1)),
        threading.Thread(target=commit, args=("run-b", T2)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_sqlite_threads_racing_exactly_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with SqliteStateStore(path) as setup:
        setup.ensure()
        setup.seed(["t0", "t1", "t2", "t3", "t4"])
        for table in ["t0", "t1", "t2", "t3", "t4"]:  # several rounds: luck must not pass it
            outcomes = _race(path, table)
            assert sorted(outcomes.values()) == ["conflict", "won"]
            mark = setup.bookmarks()[table]
            if outcomes["run-a"] == "won":
                assert (mark.run_id, mark.value) == ("run-a", T1)
            else:
                assert (mark.run_id, mark.value) == ("run-b", T2)


# --- run records ----------------------------------------------------------------------------


def test_run_records(store: StateStore) -> None:
    doc = {
        "run_id": "run-2",
        "started_at": "2025-04-01T06:00:00Z",
        "status": "running",
        "steps": [{"name": "extract", "rows": {"bookings": 3, "apartments": 0}}],
        "ratio": 0.25,
        "note": None,
        "ok": True,
        "city": "Zürich",
    }
    store.put_run(doc)
    assert store.get_run("run-2") == {
        "run_id": "run-2",
        "started_at": "2025-04-01T06:00:00Z",
        "status": "running",
        "steps": [{"name": "extract", "rows": {"bookings": 3, "apartments": 0}}],
        "ratio": 0.25,
        "note": None,
        "ok": True,
        "city": "Zürich",
    }
    store.put_run({"run_id": "run-2", "started_at": "2025-04-01T06:00:00Z", "status": "ok"})
    assert store.get_run("run-2") == {
        "run_id": "run-2",
        "started_at": "2025-04-01T06:00:00Z",
        "status": "ok",
    }
    assert store.get_run("run-404") is None
    store.put_run({"run_id": "run-1", "started_at": "2025-03-31T06:00:00Z"})
    store.put_run({"run_id": "run-3a", "started_at": "2025-04-02T06:00:00Z"})
    store.put_run({"run_id": "run-3b", "started_at": "2025-04-02T06:00:00Z"})
    listed = [r["run_id"] for r in store.list_runs()]
    assert listed == ["run-3b", "run-3a", "run-2", "run-1"]
    assert [r["run_id"] for r in store.list_runs(limit=2)] == ["run-3b", "run-3a"]
    assert store.list_runs(limit=0) == []
    assert store.bookmarks() == {}  # run records are not bookmarks


def serialise_moto_puts(monkeypatch: pytest.MonkeyPatch) -> None:
    """DynamoDB applies the writes to one item one at a time, a condition included; moto checks
    a conditional PutItem and applies it in separate steps, so concurrent requests could all
    pass one condition. A lock around moto's PutItem restores DynamoDB's behaviour."""
    from moto.dynamodb.models import DynamoDBBackend

    one_at_a_time = threading.Lock()
    real = DynamoDBBackend.put_item

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        with one_at_a_time:
            return real(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "put_item", put_item)


def test_delete_runs_forgets_every_run_and_nothing_else(store: StateStore) -> None:
    store.seed(["bookings"])
    store.commit_bookmark("bookings", None, "2025-01-01 00:00:00.000000", "run-1")
    for n in range(3):
        store.put_run({"run_id": f"run-{n}", "started_at": f"2025-04-0{n + 1}T06:00:00Z"})
    assert store.delete_runs() == 3
    assert store.list_runs() == [] and store.get_run("run-1") is None
    assert store.bookmarks()["bookings"].value == "2025-01-01 00:00:00.000000"
    assert store.delete_runs() == 0


def test_concurrent_run_updates_lose_nothing(
    backend: Backend, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 writers, each with its own connection or client (as the per-table jobs of a run have),
    add 5 fields each to one run record through ``records.update``, all at once: every field is
    there at the end."""
    from rentalctl import run_records as records

    if backend.kind == "dynamodb":
        serialise_moto_puts(monkeypatch)
    store.put_run({"run_id": "run-c", "started_at": "2025-04-01T06:00:00Z", "status": "RUNNING"})
    writers = [backend.new() for _ in range(8)]
    for writer in writers:
        writer.get_run("run-c")  # connected (SQLite) or its client built (boto3) beforehand
    barrier = threading.Barrier(len(writers))
    errors: list[BaseException] = []

    def write(number: int, writer: StateStore) -> None:
        ctx: Any = type("Ctx", (), {"state": writer})()
        try:
            barrier.wait(timeout=20)
            for k in range(5):
                records.update(ctx, "run-c", **{f"w{number}_{k}": k})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=pair) for pair in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    expected = {f"w{n}_{k}": k for n in range(8) for k in range(5)}
    assert store.get_run("run-c") == {
        "run_id": "run-c",
        "started_at": "2025-04-01T06:00:00Z",
        "status": "RUNNING",
        **expected,
    }


def test_update_run_creates_a_missing_record_and_returns_what_it_stored(store: StateStore) -> None:
    def change(run: dict[str, Any] | None) -> dict[str, Any]:
        assert run is None
        return {"run_id": "run-n", "started_at": "2025-04-01T06:00:00Z", "n": 1}

    stored = store.update_run("run-n", change)
    assert stored == {"run_id": "run-n", "started_at": "2025-04-01T06:00:00Z", "n": 1}
    again = store.update_run("run-n", lambda run: {**(run or {}), "n": (run or {})["n"] + 1})
    assert again == {"run_id": "run-n", "started_at": "2025-04-01T06:00:00Z", "n": 2}
    assert store.get_run("run-n") == again


# --- missing store and errors ---------------------------------------------------------------

OPERATIONS: dict[str, Callable[[StateStore], object]] = {
    "bookmarks": lambda s: s.bookmarks(),
    "seed": lambda s: s.seed(["bookings"]),
    "reset": lambda s: s.reset("bookings"),
    "commit_bookmark": lambda s: s.commit_bookmark("bookings", None, T1, "run-1"),
    "put_run": lambda s: s.put_run({"run_id": "r", "started_at": "2025-04-01T00:00:00Z"}),
    "get_run": lambda s: s.get_run("r"),
    "update_run": lambda s: s.update_run("r", lambda run: {**(run or {}), "x": 1}),
    "list_runs": lambda s: s.list_runs(),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_missing_store_is_unavailable_and_not_created(backend: Backend, operation: str) -> None:
    store = backend.new()
    with pytest.raises(ResourceUnavailable) as err:
        OPERATIONS[operation](store)
    assert err.value.exit_code == 3
    assert "rentalctl seed-bookmarks" in str(err.value)
    assert ("state.db" if backend.kind == "sqlite" else TABLE) in str(err.value)
    assert backend.exists() is False


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_text("not a database, just text\n")
    with pytest.raises(ResourceUnavailable, match=r"state\.db"):
        SqliteStateStore(path).bookmarks()


def test_dynamodb_connection_and_throttling_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    class Failing:
        meta = type("Meta", (), {"region_name": "eu-west-1"})()

        def __init__(self, exc: Exception) -> None:
            self.exc = exc

        def get_item(self, **kwargs: object) -> None:
            raise self.exc

    throttled = ClientError({"Error": {"Code": "ThrottlingException"}}, "GetItem")
    refused = EndpointConnectionError(endpoint_url="https://dynamodb.eu-west-1.amazonaws.com")
    for exc, words in ((throttled, "throttled"), (refused, "cannot reach")):
        monkeypatch.setattr(aws, "client", lambda service, session=None, e=exc: Failing(e))
        with pytest.raises(ResourceUnavailable, match=words) as err:
            DynamoStateStore(TABLE).get_run("r")
        assert TABLE in str(err.value)
        assert err.value.exit_code == 3


# --- factory --------------------------------------------------------------------------------


def test_open_state_picks_the_adapter(tmp_path: Path, aws_env: Any) -> None:
    local = open_state(parse_state("sqlite:///state/state.db", tmp_path))
    assert isinstance(local, SqliteStateStore)
    assert local.name == f"sqlite:///{tmp_path / 'state' / 'state.db'}"
    assert local.ensure() is True
    assert (tmp_path / "state" / "state.db").is_file()
    remote = open_state(parse_state("dynamodb://rentalctl-state", tmp_path), boto3_session=aws_env)
    assert isinstance(remote, DynamoStateStore)
    assert remote.name == "dynamodb://rentalctl-state"
    assert remote.ensure() is True
    ddb = aws_env.client("dynamodb")
    assert ddb.list_tables()["TableNames"] == ["rentalctl-state"]
    local.close()


# --------------------------------------------------------------------------- the pipeline lock


def holder(run_id: str, pid: int = 100) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "host": "laptop",
        "pid": pid,
        "acquired_at": "2025-04-01T03:00:00+00:00",
        "heartbeat_at": "2025-04-01T03:00:00+00:00",
    }


def never_stale(_: dict[str, Any]) -> bool:
    return False


def test_lock_is_exclusive_and_names_its_holder(backend: Backend, store: StateStore) -> None:
    assert store.acquire_lock(holder("R1"), never_stale) is None
    other = backend.new()  # a second process's view of the same store
    with pytest.raises(LockHeld) as caught:
        other.acquire_lock(holder("R2"), never_stale)
    assert caught.value.exit_code == 4
    assert str(caught.value) == (
        "another run holds the pipeline lock: run R1 (host laptop, pid 100) since "
        "2025-04-01T03:00:00+00:00, last seen alive at 2025-04-01T03:00:00+00:00"
    )
    store.release_lock("R1")
    assert other.acquire_lock(holder("R2"), never_stale) is None


def test_a_stale_lock_is_taken_over(backend: Backend, store: StateStore) -> None:
    store.acquire_lock(holder("DEAD", pid=4242), never_stale)
    judged: list[dict[str, Any]] = []

    def dead(h: dict[str, Any]) -> bool:
        judged.append(h)
        return True

    assert backend.new().acquire_lock(holder("R2"), dead) == holder("DEAD", pid=4242)
    assert judged == [holder("DEAD", pid=4242)]
    with pytest.raises(LockHeld, match="run R2"):
        store.acquire_lock(holder("R3"), never_stale)


def test_release_and_refresh_only_by_the_holder(backend: Backend, store: StateStore) -> None:
    store.acquire_lock(holder("R1"), never_stale)
    store.release_lock("R2")  # not the holder: nothing happens
    store.refresh_lock("R2", "2025-04-01T09:00:00+00:00")
    store.refresh_lock("R1", "2025-04-01T03:05:00+00:00")
    seen: list[dict[str, Any]] = []
    with pytest.raises(LockHeld):
        store.acquire_lock(holder("R9"), lambda h: seen.append(h) or False)
    assert seen[0]["heartbeat_at"] == "2025-04-01T03:05:00+00:00"
    store.release_lock("R1")
    assert store.acquire_lock(holder("R9"), never_stale) is None


def test_the_same_run_may_take_its_own_lock_again(store: StateStore) -> None:
    assert store.acquire_lock(holder("R1"), never_stale) is None
    assert store.acquire_lock(holder("R1"), never_stale) is None
