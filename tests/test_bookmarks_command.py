"""``rentalctl bookmarks`` and ``run/backfill --dry-run`` through Typer's ``CliRunner`` against
demo data in a fresh RENTALCTL_HOME (no pipeline run: no Spark needed).

Expected row counts come from SQL written here against the source file, independently of the
extract's own query; the history is read back through a store opened behind the command's back.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from rentalctl import config
from rentalctl.adapters.state import actor
from rentalctl.context import Context
from rentalctl.run_lock import describe_self, is_stale
from tests.support.cli import invoke, ok_json

ALL = ["apartments", "apartment_attributes", "user_viewing", "bookings"]
MARK = "2025-03-01 00:00:00.000000"


def source_count(home: Path, sql: str, *params: Any) -> int:
    conn = sqlite3.connect(home / "source.db")
    try:
        return int(conn.execute(sql, params).fetchone()[0])
    finally:
        conn.close()


def store(home: Path) -> Any:
    return Context(config.load(env={"RENTALCTL_HOME": str(home)})).state


def files(home: Path) -> dict[str, str]:
    """What "nothing written" compares: every file under the home but the state store with a
    hash of its bytes (SQLite moves pages between the store's files on a mere close), and the
    store's content: bookmarks, history, runs and the lock."""
    found: dict[str, Any] = {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.startswith("state.db")
    }
    with store(home) as s:
        found["state"] = (s.bookmarks(), s.history(), s.list_runs(), lock(home))
    return found


def lock(home: Path) -> Any:
    conn = sqlite3.connect(home / "state.db")
    try:
        return conn.execute("SELECT * FROM locks").fetchall()
    except sqlite3.OperationalError:  # never taken: no table
        return None
    finally:
        conn.close()


@pytest.fixture
def demo(home: Path) -> Path:
    ok_json("demo-data", "--scale", "0.01")
    ok_json("seed-bookmarks")
    return home


def test_set_rewind_show_and_history(demo: Path) -> None:
    high = "SELECT MAX(last_modified_timestamp) FROM bookings"
    in_window = "SELECT COUNT(*) FROM bookings WHERE last_modified_timestamp > ?"
    dry = ok_json("bookmarks", "set", "bookings", "2025-03-01", "--dry-run")
    top = f"{source_count_text(demo, high)}"
    assert dry == {
        "table": "bookings",
        "before": None,
        "after": MARK,
        "high": top,
        "window": {"lower": "2025-02-28 23:55:00.000000", "upper": top},
        "rows_next_run": source_count(demo, in_window, "2025-02-28 23:55:00.000000"),
        "rows_next_run_unchanged": source_count(demo, "SELECT COUNT(*) FROM bookings"),
        "dry_run": True,
        "changed": False,
    }
    with store(demo) as s:
        assert s.history() == [] and s.bookmarks()["bookings"].value is None

    done = ok_json("bookmarks", "set", "bookings", "2025-03-01", "--yes")
    assert done == {**dry, "dry_run": False, "changed": True}
    back = ok_json("bookmarks", "rewind", "bookings", "--by", "2h", "--yes")
    assert (back["before"], back["after"]) == (MARK, "2025-02-28 22:00:00.000000")
    assert back["rows_next_run"] == source_count(demo, in_window, "2025-02-28 21:55:00.000000")
    ids = ok_json("bookmarks", "set", "user_viewing", "2000", "--yes")
    # (2000 - the default lookback of 10,000 ids, 3000]: every one of the 3,000 viewings.
    assert (ids["after"], ids["rows_next_run"]) == (2000, 3000)
    narrow = ok_json("--set", "lookback.user_viewing=500", "bookmarks", "set", "user_viewing",
                     "2000", "--dry-run")  # fmt: skip
    assert narrow["rows_next_run"] == 1500  # ids 1501..3000
    ok_json("bookmarks", "rewind", "user_viewing", "--to", "1990", "--yes")

    host, user = actor()
    history = ok_json("bookmarks", "history")["changes"]
    assert [{k: v for k, v in c.items() if k != "at"} for c in history] == [
        {"table": "bookings", "old": None, "new": MARK, "run_id": None,
         "command": "bookmarks set bookings 2025-03-01", "host": host, "user": user},
        {"table": "bookings", "old": MARK, "new": "2025-02-28 22:00:00.000000", "run_id": None,
         "command": "bookmarks rewind bookings --by 2h", "host": host, "user": user},
        {"table": "user_viewing", "old": None, "new": 2000, "run_id": None,
         "command": "bookmarks set user_viewing 2000", "host": host, "user": user},
        {"table": "user_viewing", "old": 2000, "new": 1990, "run_id": None,
         "command": "bookmarks rewind user_viewing --to 1990", "host": host, "user": user},
    ]  # fmt: skip
    assert len(ok_json("bookmarks", "history", "user_viewing")["changes"]) == 2
    shown = ok_json("bookmarks", "show")["bookmarks"]
    assert {t: (b["value"], b["by"]) for t, b in shown.items()} == {
        "apartment_attributes": (None, None),
        "apartments": (None, None),
        "bookings": ("2025-02-28 22:00:00.000000", "bookmarks rewind bookings --by 2h"),
        "user_viewing": (1990, "bookmarks rewind user_viewing --to 1990"),
    }


def source_count_text(home: Path, sql: str) -> str:
    conn = sqlite3.connect(home / "source.db")
    try:
        return str(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def refused(args: list[str], code: int, message: str) -> None:
    result = invoke("-o", "json", *args)
    assert result.exit_code == code, (result.stdout, result.stderr)
    error = json.loads(result.stdout)["error"]
    assert (error["exit_code"], error["message"]) == (code, message)


def test_refusals_change_nothing(demo: Path) -> None:
    ok_json("bookmarks", "set", "bookings", "2025-03-01", "--yes")
    before = files(demo)
    top = source_count_text(demo, "SELECT MAX(last_modified_timestamp) FROM bookings")
    refused(
        ["bookmarks", "set", "bookings", "2030-01-01", "--yes"],
        2,
        f"2030-01-01 00:00:00.000000 is ahead of bookings's highest value in the source ({top})"
        ": the next run would skip the rows in between. Nothing changed",
    )
    refused(
        ["bookmarks", "set", "bookings", "2025-01-01"],
        2,
        "changing a bookmark needs confirmation: add --yes in scripts",
    )
    refused(
        ["bookmarks", "rewind", "bookings", "--to", "2025-03-02", "--yes"],
        2,
        f"--to 2025-03-02 is after bookings's bookmark {MARK}: a rewind moves back "
        "(use `rentalctl bookmarks set` to move it forward)",
    )
    refused(
        ["bookmarks", "rewind", "user_viewing", "--by", "5", "--yes"],
        2,
        "user_viewing has no bookmark: its next run reads everything",
    )
    refused(
        ["bookmarks", "rewind", "bookings", "--by", "2 hours", "--yes"],
        2,
        "--by '2 hours': expected a number and a unit: 30m, 2h, 1d",
    )
    # A run holding the lock (this process: alive, so never stale) refuses the change.
    holder = describe_self("RUNNING-RUN")
    with store(demo) as s:
        assert s.acquire_lock(holder, is_stale) is None
    result = invoke("-o", "json", "bookmarks", "rewind", "bookings", "--by", "1h", "--yes")
    assert result.exit_code == 4, (result.stdout, result.stderr)
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "lock_held"
    assert error["message"].startswith("another run holds the pipeline lock: run RUNNING-RUN ")
    assert error["message"].endswith("; no bookmark changed, try again when it ends")
    with store(demo) as s:
        assert s.bookmarks()["bookings"].value == MARK
        assert len(s.history()) == 1
        s.release_lock("RUNNING-RUN")
    assert files(demo) == before
    ok_json("bookmarks", "rewind", "bookings", "--by", "1h", "--yes")  # free again: done
    with store(demo) as s:
        assert s.bookmarks()["bookings"].value == "2025-02-28 23:00:00.000000"
        assert s.acquire_lock(describe_self("NEXT"), is_stale) is None  # and released


def test_dry_runs_read_the_windows_and_write_nothing(demo: Path) -> None:
    ok_json("bookmarks", "set", "bookings", "2025-03-01", "--yes")
    before = files(demo)
    plan = ok_json("run", "--dry-run")
    after = files(demo)
    assert after == before
    rows = {t["table"]: (t["mode"], t["rows"]) for t in plan["tables"]}
    assert rows == {
        "apartments": ("full", source_count(demo, "SELECT COUNT(*) FROM apartments")),
        "apartment_attributes": (
            "full",
            source_count(demo, "SELECT COUNT(*) FROM apartment_attributes"),
        ),
        "user_viewing": ("full", 3000),
        "bookings": (
            "incremental",
            source_count(
                demo,
                "SELECT COUNT(*) FROM bookings WHERE last_modified_timestamp > ?",
                "2025-02-28 23:55:00.000000",
            ),
        ),
    }
    assert plan["bookmarks_left_alone"] == []
    assert plan["estimate"]["rows"] == sum(r for _, r in rows.values())
    assert plan["estimate"]["seconds"] is None  # no run yet to scale from

    back = ok_json("backfill", "--since", "2025-01-01", "--until", "2025-01-31", "--dry-run")
    assert files(demo) == before
    assert back["mode"] == "backfill"
    assert back["bookmarks_left_alone"] == ALL
    counted = {
        "apartments": "SELECT COUNT(*) FROM apartments WHERE last_modified_timestamp"
        " BETWEEN '2025-01-01' AND '2025-01-31 23:59:59.999999'",
        "apartment_attributes": "SELECT COUNT(*) FROM apartment_attributes WHERE"
        " last_modified_timestamp BETWEEN '2025-01-01' AND '2025-01-31 23:59:59.999999'",
        "user_viewing": "SELECT COUNT(*) FROM user_viewing WHERE viewed_at"
        " BETWEEN '2025-01-01' AND '2025-01-31 23:59:59.999999'",
        "bookings": "SELECT COUNT(*) FROM bookings WHERE last_modified_timestamp"
        " BETWEEN '2025-01-01' AND '2025-01-31 23:59:59.999999'",
    }
    assert {t["table"]: t["rows"] for t in back["tables"]} == {
        t: source_count(demo, sql) for t, sql in counted.items()
    }
    assert all(t["bookmark_after"] == t["bookmark"] for t in back["tables"])


def test_the_same_commands_on_a_dynamodb_store(
    home: Path, on_moto: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rentalctl import aws

    monkeypatch.setenv("RENTALCTL_STATE_URL", "dynamodb://rentalctl-state")
    ok_json("demo-data", "--scale", "0.01")
    ok_json("seed-bookmarks")
    ok_json("bookmarks", "set", "user_viewing", "2000", "--yes")
    ok_json("bookmarks", "rewind", "user_viewing", "--by", "10", "--yes")
    ok_json("seed-bookmarks", "--reset", "user_viewing", "--yes")
    host, user = actor()
    assert [
        (c["old"], c["new"], c["command"], c["host"], c["user"])
        for c in ok_json("bookmarks", "history", "user_viewing")["changes"]
    ] == [
        (None, 2000, "bookmarks set user_viewing 2000", host, user),
        (2000, 1990, "bookmarks rewind user_viewing --by 10", host, user),
        (1990, None, "seed-bookmarks --reset user_viewing", host, user),
    ]
    session = aws.session(on_moto)
    with Context(config.load(), boto3_session=session).state as s:
        assert s.acquire_lock(describe_self("RUNNING-RUN"), is_stale) is None
    refused_code = invoke("-o", "json", "bookmarks", "set", "user_viewing", "5", "--yes")
    assert refused_code.exit_code == 4, refused_code.stdout
    shown = ok_json("bookmarks", "show")["bookmarks"]["user_viewing"]
    assert (shown["value"], shown["by"]) == (None, "seed-bookmarks --reset user_viewing")
