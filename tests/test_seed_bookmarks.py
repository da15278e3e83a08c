"""``rentalctl seed-bookmarks`` (docs/contract.md sections 4 and 8) through Typer's ``CliRunner``,
against the local SQLite store in a fresh RENTALCTL_HOME and against DynamoDB on moto, in process.

Bookmarks are read back through a store opened independently of the command, on the same
location. Every expectation is a literal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from rentalctl import aws
from rentalctl.adapters.factories import open_state
from rentalctl.adapters.state import StateStore
from rentalctl.cli import app
from rentalctl.urls import parse_state

DDB_TABLE = "rentalctl-state"
ALL = ["apartments", "apartment_attributes", "user_viewing", "bookings"]
T2 = "2025-03-31 23:59:59.000001"
NO_CREDENTIALS = (
    "error: no AWS credentials found: set AWS_PROFILE, run `aws sso login`, or export "
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n"
)
NO_REGION = "error: no AWS region configured: set AWS_REGION (or aws.region in the profile)\n"
CONFIRM = "error: --reset needs confirmation: add --yes to confirm in scripts\n"
UNKNOWN_TABLE = (
    "error: unknown table 'nope': expected one of apartments, apartment_attributes, "
    "user_viewing, bookings\n"
)


@dataclass
class Backend:
    kind: str
    name: str  # the store's name as the command reports it
    open: Callable[[], StateStore]  # the same store, opened behind the command's back
    exists: Callable[[], bool]  # does the store exist, asked without rentalctl


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(
    request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    opened: list[StateStore] = []

    def tracked(url: str, session: Any = None) -> Callable[[], StateStore]:
        def open_() -> StateStore:
            store = open_state(parse_state(url, Path.cwd()), boto3_session=session)
            opened.append(store)
            return store

        return open_

    if request.param == "sqlite":
        path = home.resolve() / "state.db"
        yield Backend("sqlite", f"sqlite:///{path}", tracked(f"sqlite:///{path}"), path.exists)
    else:
        request.getfixturevalue("aws_credentials")  # fake credentials (conftest.py)
        monkeypatch.setenv("RENTALCTL_STATE_URL", f"dynamodb://{DDB_TABLE}")
        with mock_aws():  # every invocation of the test runs inside it
            session = aws.session("eu-west-1")
            ddb = session.client("dynamodb")
            yield Backend(
                "dynamodb",
                f"dynamodb://{DDB_TABLE}",
                tracked(f"dynamodb://{DDB_TABLE}", session),
                lambda: DDB_TABLE in ddb.list_tables()["TableNames"],
            )
    for store in opened:
        store.close()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def seed_json(runner: CliRunner, *args: str, options: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run ``rentalctl -o json [options] seed-bookmarks [args]``: exit 0, exactly one JSON
    document on stdout and nothing on stderr."""
    result = invoke(runner, "-o", "json", *options, "seed-bookmarks", *args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stderr == ""
    assert result.stdout.endswith("}\n")
    return json.loads(result.stdout)  # fails on anything besides one JSON document


def values(store: StateStore) -> dict[str, tuple[Any, Any]]:
    """(value, run_id) of every bookmark."""
    return {t: (b.value, b.run_id) for t, b in store.bookmarks().items()}


def assert_clean_error(result, code: int) -> str:
    """Exit ``code``, nothing on stdout, one ``error:`` line on stderr and no traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.endswith("\n")
    assert "Traceback" not in result.stderr
    return result.stderr


# ------------------------------------------------------------------------------ seeding


def test_first_run_creates_the_store_and_adds_every_table(
    runner: CliRunner, backend: Backend
) -> None:
    assert not backend.exists()
    doc = seed_json(runner)
    assert backend.exists()
    assert set(doc) == {"store", "created", "added", "reset", "bookmarks"}
    assert doc["store"] == backend.name
    assert doc["created"] is True
    assert doc["added"] == ["apartments", "apartment_attributes", "user_viewing", "bookings"]
    assert doc["reset"] == []
    assert sorted(doc["bookmarks"]) == [
        "apartment_attributes",
        "apartments",
        "bookings",
        "user_viewing",
    ]
    for name, entry in doc["bookmarks"].items():
        assert set(entry) == {"value", "updated_at", "run_id"}, name
        assert entry["value"] is None, name
        assert entry["run_id"] is None, name
        assert isinstance(entry["updated_at"], str), name
    assert values(backend.open()) == {
        "apartments": (None, None),
        "apartment_attributes": (None, None),
        "user_viewing": (None, None),
        "bookings": (None, None),
    }


def test_second_run_creates_nothing_and_adds_nothing(runner: CliRunner, backend: Backend) -> None:
    first = seed_json(runner)
    second = seed_json(runner)
    assert second["created"] is False
    assert second["added"] == []
    assert second["reset"] == []
    assert second["bookmarks"] == first["bookmarks"]  # not even updated_at moved


def test_seeding_never_changes_an_existing_bookmark(runner: CliRunner, backend: Backend) -> None:
    seed_json(runner)
    backend.open().commit_bookmark("bookings", None, T2, "R1")
    backend.open().commit_bookmark("user_viewing", None, 42, "R1")
    before = backend.open().bookmarks()

    doc = seed_json(runner)
    assert doc["created"] is False
    assert doc["added"] == []
    assert doc["bookmarks"]["bookings"]["value"] == "2025-03-31 23:59:59.000001"
    assert doc["bookmarks"]["bookings"]["run_id"] == "R1"
    assert doc["bookmarks"]["user_viewing"]["value"] == 42
    assert backend.open().bookmarks() == before
    assert values(backend.open()) == {
        "apartments": (None, None),
        "apartment_attributes": (None, None),
        "user_viewing": (42, "R1"),
        "bookings": ("2025-03-31 23:59:59.000001", "R1"),
    }


def test_set_tables_seeds_only_those_tables(runner: CliRunner, backend: Backend) -> None:
    doc = seed_json(runner, options=("--set", "tables=[bookings]"))
    assert doc["created"] is True
    assert doc["added"] == ["bookings"]
    assert list(doc["bookmarks"]) == ["bookings"]
    assert values(backend.open()) == {"bookings": (None, None)}

    # The other tables are added later, when configured, without touching bookings.
    backend.open().commit_bookmark("bookings", None, T2, "R1")
    doc = seed_json(runner)
    assert doc["added"] == ["apartments", "apartment_attributes", "user_viewing"]
    assert doc["bookmarks"]["bookings"]["value"] == "2025-03-31 23:59:59.000001"


# -------------------------------------------------------------------------------- --reset


def test_reset_with_yes_sets_the_bookmark_back_to_null(runner: CliRunner, backend: Backend) -> None:
    seed_json(runner)
    backend.open().commit_bookmark("bookings", None, T2, "R1")
    backend.open().commit_bookmark("user_viewing", None, 42, "R1")
    before = backend.open().bookmarks()

    doc = seed_json(runner, "--reset", "bookings", "--yes")
    assert doc["created"] is False
    assert doc["added"] == []
    assert doc["reset"] == ["bookings"]
    assert doc["bookmarks"]["bookings"]["value"] is None
    assert doc["bookmarks"]["bookings"]["run_id"] is None
    after = backend.open().bookmarks()
    assert values(backend.open()) == {
        "apartments": (None, None),
        "apartment_attributes": (None, None),
        "user_viewing": (42, "R1"),
        "bookings": (None, None),
    }
    for name in ("apartments", "apartment_attributes", "user_viewing"):
        assert after[name] == before[name], name  # updated_at included


def test_reset_named_twice_is_reset_once(runner: CliRunner, backend: Backend) -> None:
    seed_json(runner)
    backend.open().commit_bookmark("bookings", None, T2, "R1")
    doc = seed_json(runner, "--reset", "bookings", "--reset", "bookings", "-y")
    assert doc["reset"] == ["bookings"]
    assert values(backend.open())["bookings"] == (None, None)


def test_reset_without_yes_and_without_a_tty_exits_2_and_changes_nothing(
    runner: CliRunner, backend: Backend
) -> None:
    seed_json(runner)
    backend.open().commit_bookmark("bookings", None, T2, "R1")
    before = backend.open().bookmarks()

    result = invoke(runner, "seed-bookmarks", "--reset", "bookings")  # CliRunner: no TTY
    assert assert_clean_error(result, 2) == CONFIRM
    assert "--yes" in result.stderr
    assert backend.open().bookmarks() == before


def test_reset_without_yes_in_json_mode_exits_2_with_one_json_document(
    runner: CliRunner, backend: Backend
) -> None:
    seed_json(runner)
    backend.open().commit_bookmark("bookings", None, T2, "R1")
    before = backend.open().bookmarks()

    result = invoke(runner, "-o", "json", "seed-bookmarks", "--reset", "bookings")
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "error": {
            "kind": "config_error",
            "message": "--reset needs confirmation: add --yes to confirm in scripts",
            "exit_code": 2,
        }
    }
    assert result.stderr == CONFIRM
    assert backend.open().bookmarks() == before


def test_unconfirmed_reset_on_a_fresh_home_creates_nothing(
    runner: CliRunner, backend: Backend
) -> None:
    result = invoke(runner, "seed-bookmarks", "--reset", "bookings")
    assert assert_clean_error(result, 2) == CONFIRM
    assert not backend.exists()


def test_reset_of_an_unknown_table_exits_2_naming_it(runner: CliRunner, backend: Backend) -> None:
    result = invoke(runner, "seed-bookmarks", "--reset", "nope", "--yes")
    assert assert_clean_error(result, 2) == UNKNOWN_TABLE
    assert "'nope'" in result.stderr
    assert not backend.exists()  # refused before anything was created

    seed_json(runner)
    backend.open().commit_bookmark("bookings", None, T2, "R1")
    before = backend.open().bookmarks()
    result = invoke(runner, "seed-bookmarks", "--reset", "bookings", "--reset", "nope", "--yes")
    assert assert_clean_error(result, 2) == UNKNOWN_TABLE
    assert backend.open().bookmarks() == before  # not even the valid one was reset


def _pretend_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """CliRunner's stdin is never a TTY; the command asks ``AppState.can_ask`` (a terminal on
    stdin, text output)."""
    from rentalctl.cli.output import AppState

    monkeypatch.setattr(AppState, "can_ask", lambda self: not self.json)


def test_reset_confirmed_at_the_prompt(
    runner: CliRunner, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_json(runner)
    backend.open().commit_bookmark("bookings", None, T2, "R1")
    _pretend_tty(monkeypatch)
    result = invoke(runner, "seed-bookmarks", "--reset", "bookings", input="y\n")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stderr.startswith(
        "Reset the bookmarks of bookings (now 2025-03-31 23:59:59.000001)? "
        "Their next runs re-extract the whole tables [y/N]:"
    )
    assert "Reset: bookings\n" in result.stdout
    assert values(backend.open())["bookings"] == (None, None)


def test_reset_declined_at_the_prompt_changes_nothing(
    runner: CliRunner, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_json(runner)
    backend.open().commit_bookmark("bookings", None, T2, "R1")
    before = backend.open().bookmarks()
    _pretend_tty(monkeypatch)
    result = invoke(runner, "seed-bookmarks", "--reset", "bookings", input="n\n")
    assert result.exit_code != 0
    assert result.exit_code == 2
    assert "reset not confirmed: no bookmark changed" in result.stderr
    assert "Reset: bookings" not in result.stdout
    assert backend.open().bookmarks() == before


# -------------------------------------------------------------------------------- output


def test_text_output_lists_every_table(
    runner: CliRunner, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # no wrapping inside the table's cells
    result = invoke(runner, "seed-bookmarks")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == f"Created bookmark store {backend.name}"
    assert lines[1] == "Added entries for: apartments, apartment_attributes, user_viewing, bookings"
    rows = {line.split()[0]: line for line in lines[2:] if line.strip()}
    assert list(rows) == ["table", "apartment_attributes", "apartments", "bookings", "user_viewing"]
    for name in ALL:
        assert "(none: next extract is full)" in rows[name], rows[name]

    backend.open().commit_bookmark("bookings", None, T2, "R1")
    result = invoke(runner, "seed-bookmarks")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert lines[0] == f"Using bookmark store {backend.name}"
    assert not any(line.startswith("Added entries") for line in lines)
    rows = {line.split()[0]: line for line in lines[1:] if line.strip()}
    assert set(rows) == {"table", *ALL}
    assert "2025-03-31 23:59:59.000001" in rows["bookings"]
    assert rows["bookings"].rstrip().endswith(" R1")


def test_json_output_is_exactly_one_document(runner: CliRunner, backend: Backend) -> None:
    for _ in range(2):
        result = invoke(runner, "--output", "json", "seed-bookmarks")
        assert result.exit_code == 0, (result.stdout, result.stderr)
        assert result.stderr == ""
        decoder = json.JSONDecoder()
        doc, end = decoder.raw_decode(result.stdout)
        assert result.stdout[end:] == "\n"
        assert isinstance(doc, dict)
        assert doc["store"] == backend.name


# ---------------------------------------------------------------------- DynamoDB specifics


@pytest.mark.parametrize("backend", ["dynamodb"], indirect=True)
def test_dynamodb_table_is_on_demand_with_point_in_time_recovery(
    runner: CliRunner, backend: Backend, home: Path
) -> None:
    seed_json(runner)
    ddb = aws.session("eu-west-1").client("dynamodb")
    table = ddb.describe_table(TableName=DDB_TABLE)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    backups = ddb.describe_continuous_backups(TableName=DDB_TABLE)
    pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"
    assert not (home / "state.db").exists()  # nothing local when the store is DynamoDB


# ------------------------------------------------------------------- unreachable store


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "nonexistent-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "nonexistent-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("RENTALCTL_STATE_URL", f"dynamodb://{DDB_TABLE}")


def test_no_credentials_exits_3_with_one_line(
    runner: CliRunner, home: Path, no_aws_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A region (boto3's own variable), so that the missing credentials stop the command.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    result = invoke(runner, "seed-bookmarks")
    assert assert_clean_error(result, 3) == NO_CREDENTIALS
    assert "credentials" in result.stderr

    result = invoke(runner, "-o", "json", "seed-bookmarks")
    assert result.exit_code == 3
    assert json.loads(result.stdout) == {
        "error": {
            "kind": "resource_unavailable",
            "message": NO_CREDENTIALS.removeprefix("error: ").rstrip("\n"),
            "exit_code": 3,
        }
    }
    assert result.stderr == NO_CREDENTIALS
    assert not (home / "state.db").exists()


def test_no_region_exits_3_with_one_line(
    runner: CliRunner, home: Path, no_aws_credentials: None
) -> None:
    result = invoke(runner, "seed-bookmarks")
    assert assert_clean_error(result, 3) == NO_REGION


def test_aws_region_alone_is_enough_for_the_region(
    runner: CliRunner, home: Path, no_aws_credentials: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Following the advice of the region error message gets past the region check.
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    result = invoke(runner, "seed-bookmarks")
    assert assert_clean_error(result, 3) == NO_CREDENTIALS
