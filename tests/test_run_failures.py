"""Orchestration through the command line (docs/contract.md sections 4, 7 and 8): how runs fail,
retry, lock each other out and leave the bookmarks, the warehouse and the lake.

Every full run uses tiny demo data and transforms on DuckDB (the default engine), in this
process; the ``--no-wait`` tests pay for a background process of their own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rentalctl import config, jobs
from rentalctl import run_records as records
from rentalctl.context import Context
from rentalctl.errors import LockHeld, PipelineFailed, ResourceUnavailable
from rentalctl.orchestration.clock import FakeClock
from rentalctl.orchestration.local import run_local
from rentalctl.run_lock import describe_self, is_stale
from rentalctl.tables import TABLES
from tests.support.cli import invoke, ok_json

pytestmark = pytest.mark.slow

STRICT_GATE = "quality.max_rejected_share=0.001"
FAST_RETRY = "retry.interval_seconds=1"  # a failed task is retried (1 s, then 2 s)
NO_WAIT_TIMEOUT = 120.0


# --------------------------------------------------------------------------- helpers


def make_demo(home: Path) -> None:
    result = invoke("demo-data", "--scale", "0.002")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert (home / "source.db").is_file()


def run_ids() -> list[str]:
    """Recorded runs, most recent first."""
    return [r["run_id"] for r in ok_json("status")["runs"]]


def record(run_id: str) -> dict[str, Any]:
    doc = ok_json("status", run_id)
    assert doc["run_id"] == run_id
    return doc


def states(rec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in rec["states"]}


def bookmark_values() -> dict[str, Any]:
    return {t: b["value"] for t, b in ok_json("seed-bookmarks")["bookmarks"].items()}


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


def curated_counts(home: Path) -> dict[str, int]:
    """Rows per table of the curated schema, read with DuckDB directly ({} when absent)."""
    import duckdb

    path = home / "warehouse.duckdb"
    if not path.exists():
        return {}
    conn = duckdb.connect(str(path), read_only=True)
    try:
        names = [
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'curated'"
            ).fetchall()
        ]
        counts = {n: conn.execute(f'SELECT COUNT(*) FROM curated."{n}"').fetchall() for n in names}
        return {n: rows[0][0] for n, rows in counts.items()}
    finally:
        conn.close()


def lake_files(home: Path, area: str) -> list[str]:
    root = home / "lake" / area
    if not root.exists():
        return []
    return sorted(str(p.relative_to(home / "lake")) for p in root.rglob("*") if p.is_file())


def assert_archived(home: Path, run_id: str) -> None:
    """The run's raw files moved to archive/raw/<table>/run_id=<id>/; none left under raw/."""
    archived = lake_files(home, "archive")
    for table in TABLES:
        prefix = f"archive/raw/{table}/run_id={run_id}/"
        files = [f.removeprefix(prefix) for f in archived if f.startswith(prefix)]
        assert "_manifest.json" in files, (table, archived)
        assert any(f.endswith(".csv.gz") for f in files), (table, files)
    assert [f for f in lake_files(home, "raw") if f"/run_id={run_id}/" in f] == []


def context(home: Path) -> Context:
    ctx = Context(config.load(env={"RENTALCTL_HOME": str(home)}))
    ctx.state.ensure()
    return ctx


def assert_lock_free(home: Path) -> None:
    """A new holder gets the lock at once, even one that treats every holder as alive."""
    store = context(home).state
    try:
        assert store.acquire_lock(describe_self("PROBE"), lambda holder: False) is None
        store.release_lock("PROBE")
    finally:
        store.close()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def wait_for(run_id: str, timeout: float = NO_WAIT_TIMEOUT) -> dict[str, Any]:
    """Poll ``status RUN_ID`` until the run has ended."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = invoke("-o", "json", "status", run_id)
        if last.exit_code == 0:
            doc = json.loads(last.stdout)
            if doc.get("status") in ("SUCCEEDED", "FAILED"):
                return doc
        time.sleep(1)
    raise AssertionError(f"run {run_id} did not end in {timeout} s: {last and last.stdout}")


# --------------------------------------------------------------------------- 1. quality gate


def test_quality_gate_failure_moves_nothing_and_the_next_run_recovers(home: Path) -> None:
    make_demo(home)
    failed = invoke("-o", "json", "--set", STRICT_GATE, "--set", FAST_RETRY, "run")
    assert failed.exit_code == 1, (failed.stdout, failed.stderr)
    (run_id,) = run_ids()

    rec = record(run_id)
    assert rec["status"] == "FAILED"
    assert rec["error"]["Error"] == "Rentalctl.PipelineFailed"
    assert "data-quality gate" in rec["error"]["Cause"]
    by_name = states(rec)
    assert by_name["Transform"]["status"] == "SUCCEEDED"
    assert by_name["Publish"]["status"] == "FAILED"
    # Retried as every failed Glue task is, each retry failing at once on the recorded gate.
    assert by_name["Publish"]["attempts"] == 3
    assert by_name["Publish"]["error"] == "States.TaskFailed"
    assert "data-quality gate" in by_name["Publish"]["cause"]
    assert by_name["RecordFailure"]["status"] == "SUCCEEDED"
    assert by_name["Notify"]["status"] == "SUCCEEDED"
    done = {s["name"] for s in rec["steps"] if s["done"]}
    assert done == {f"{step}[{t}]" for t in TABLES for step in ("extract", "load-raw")} | {
        "transform"
    }

    assert bookmark_values() == dict.fromkeys(TABLES)
    assert all(n == 0 for n in curated_counts(home).values()), curated_counts(home)
    raw = lake_files(home, "raw")
    for table in TABLES:
        assert any(f.startswith(f"raw/{table}/run_id={run_id}/") for f in raw), table
    assert lake_files(home, "archive") == []
    assert_lock_free(home)

    # Without the strict gate the next run re-reads the same rows and succeeds.
    doc = ok_json("run")
    assert doc["status"] == "SUCCEEDED"
    second = doc["run_id"]
    assert second != run_id
    assert record(second)["status"] == "SUCCEEDED"
    moved = bookmark_values()
    assert all(v is not None for v in moved.values()), moved
    assert all(n > 0 for t, n in curated_counts(home).items() if t in TABLES)
    assert set(TABLES) <= set(curated_counts(home))
    assert_archived(home, second)
    assert_lock_free(home)


def test_quality_gate_failure_is_reported_as_one_error(home: Path) -> None:
    make_demo(home)
    result = invoke("-o", "json", "--set", STRICT_GATE, "--set", FAST_RETRY, "run")
    assert result.exit_code == 1, (result.stdout, result.stderr)
    (line,) = error_lines(result.stderr)
    assert "data-quality gate" in line
    assert "quality.max_rejected_share" in line
    assert "internal error" not in line
    json.loads(result.stdout)  # one JSON document on stdout, nothing else
    (run_id,) = run_ids()
    rec = record(run_id)
    notes = [entry for entry in rec.get("logs") or [] if entry["state"] == "Notify"]
    assert len(notes) == 1
    assert "data-quality gate" in notes[0]["message"]
    assert run_id in notes[0]["message"]


def test_the_gate_message_shows_the_configured_threshold() -> None:
    from rentalctl.pipeline import quality

    stats = {"bookings": {"rows_read": 1000, "rejected": 2, "rejected_by_reason": {"x": 2}}}
    with pytest.raises(PipelineFailed, match="data-quality gate") as failure:
        quality.gate(stats, 0.001)
    shown = ("quality.max_rejected_share 0.1%", "quality.max_rejected_share 0.001")
    assert any(text in str(failure.value) for text in shown), str(failure.value)


# --------------------------------------------------------------------------- 2. retries


def seeded_context(home: Path) -> Context:
    ctx = Context(config.load(env={"RENTALCTL_HOME": str(home)}))
    ctx.state.ensure()
    ctx.state.seed(ctx.settings.tables)
    return ctx


def test_a_transient_failure_is_retried_after_the_configured_interval(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_demo(home)
    ctx = seeded_context(home)
    real_publish = jobs.JOBS["publish"]
    calls: list[int] = []

    def flaky_publish(*args: Any) -> dict[str, Any]:
        calls.append(1)
        if len(calls) == 1:
            raise ResourceUnavailable("db blip")
        return real_publish(*args)

    monkeypatch.setitem(jobs.JOBS, "publish", flaky_publish)
    clock = FakeClock()
    tables = list(ctx.settings.tables)
    rec = run_local(
        ctx, run_id="RETRY", mode="incremental", since=None, until=None, tables=tables, clock=clock
    )

    assert rec["status"] == "SUCCEEDED", rec.get("error")
    assert len(calls) == 2
    publish = states(rec)["Publish"]
    assert publish["status"] == "SUCCEEDED"
    assert publish["attempts"] == 2
    assert clock.sleeps == [ctx.settings.retry.interval_seconds]
    assert record("RETRY")["status"] == "SUCCEEDED"
    assert all(v is not None for v in bookmark_values().values())
    assert_lock_free(home)


def test_a_non_transient_failure_is_retried_as_on_aws_but_does_its_work_once(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_demo(home)
    ctx = seeded_context(home)
    calls: list[int] = []

    def broken_transform(*args: Any) -> dict[str, Any]:
        calls.append(1)
        raise PipelineFailed("the transform is broken")

    monkeypatch.setitem(jobs.JOBS, "transform", broken_transform)
    clock = FakeClock()
    tables = list(ctx.settings.tables)
    rec = run_local(
        ctx, run_id="BROKEN", mode="incremental", since=None, until=None, tables=tables, clock=clock
    )

    assert rec["status"] == "FAILED"
    assert rec["error"] == {"Error": "Rentalctl.PipelineFailed", "Cause": "the transform is broken"}
    assert len(calls) == 1  # the retries found the failure recorded and did nothing
    assert clock.sleeps == [10, 20]
    transform = states(rec)["Transform"]
    assert transform["status"] == "FAILED"
    assert (transform["attempts"], transform["error"]) == (3, "States.TaskFailed")
    assert transform["cause"] == "transform: the transform is broken"
    assert "Publish" not in states(rec)
    assert bookmark_values() == dict.fromkeys(TABLES)
    assert_lock_free(home)


# --------------------------------------------------------------------------- 3. the lock


def hold_lock(home: Path, holder: dict[str, Any]) -> None:
    store = context(home).state
    try:
        assert store.acquire_lock(holder, is_stale) is None
    finally:
        store.close()


def test_a_live_holder_keeps_the_lock(home: Path) -> None:
    make_demo(home)
    hold_lock(home, describe_self("OTHER"))  # this test's own process: alive, not stale

    result = invoke("-o", "json", "run")
    assert result.exit_code == 4, (result.stdout, result.stderr)
    doc = json.loads(result.stdout)
    assert doc["error"]["kind"] == "lock_held"
    assert doc["error"]["exit_code"] == 4
    message = doc["error"]["message"]
    assert "run OTHER" in message
    assert "since" in message
    (line,) = error_lines(result.stderr)
    assert "run OTHER" in line

    started = time.monotonic()
    result = invoke("run", "--no-wait")
    assert result.exit_code == 4, (result.stdout, result.stderr)
    assert time.monotonic() - started < 10
    (line,) = error_lines(result.stderr)
    assert "run OTHER" in line and "since" in line
    assert not (home / "logs").exists() or not any((home / "logs").iterdir())

    assert run_ids() == []  # neither attempt started a run
    store = context(home).state
    try:  # OTHER still holds it: nobody took it over or released it
        with pytest.raises(LockHeld, match="run OTHER"):
            store.acquire_lock(describe_self("PROBE"), is_stale)
        store.release_lock("OTHER")
    finally:
        store.close()
    assert_lock_free(home)


def dead_holder() -> dict[str, Any]:
    """This host, a process that has exited."""
    return {**describe_self("DEAD"), "pid": dead_pid()}


def rebooted_holder() -> dict[str, Any]:
    """This host and a live pid (ours), but taken before a reboot."""
    return {**describe_self("DEAD"), "boot_id": "00000000-0000-0000-0000-000000000000"}


@pytest.mark.parametrize("holder", [dead_holder, rebooted_holder], ids=["dead-pid", "rebooted"])
def test_a_stale_lock_is_taken_over_and_its_run_marked_abandoned(home: Path, holder: Any) -> None:
    make_demo(home)
    ctx = context(home)
    records.start(
        ctx, "DEAD", mode="incremental", since=None, until=None, tables=list(TABLES), target="local"
    )
    stale = holder()
    assert is_stale(stale)
    hold_lock(home, stale)
    # What the dead run's interrupted writes left: no reader takes them, the next run removes
    # them (and nothing else of the lake).
    lake = home / "lake"
    debris = [
        lake / "runs" / "run_id=DEAD" / ".tmp-0a1b",
        lake / "raw" / "bookings" / "run_id=DEAD" / ".tmp-2c3d",
        lake / "curated" / "apartments" / "run_id=DEAD" / "_temporary" / "0" / "part-1.parquet",
    ]
    for path in debris:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a fi")
    before = sorted(p for p in lake.rglob("*") if p.is_file() and p not in debris)

    doc = ok_json("run")
    assert doc["status"] == "SUCCEEDED"
    assert not [p for p in debris if p.exists()]
    assert not (lake / "curated" / "apartments" / "run_id=DEAD" / "_temporary").exists()
    assert all(p.exists() or "archive" in str(p) for p in before)
    dead = record("DEAD")
    assert dead["status"] == "FAILED"
    assert dead["error"]["Error"] == "Rentalctl.Abandoned"
    assert doc["run_id"] in dead["error"]["Cause"]
    assert dead["ended_at"]
    assert record(doc["run_id"])["status"] == "SUCCEEDED"
    assert_lock_free(home)
    assert_archived(home, doc["run_id"])
    assert lake_files(home, "raw") == []


# --------------------------------------------------------------------------- 4. --no-wait


def wait_for_lock_free(home: Path, timeout: float = 60.0) -> None:
    """The background process releases the lock as it ends."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            assert_lock_free(home)
            return
        except LockHeld:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def start_in_background(*args: str) -> dict[str, Any]:
    started = time.monotonic()
    doc = ok_json("run", "--no-wait", *args)
    assert time.monotonic() - started < 15  # returns at once: no Spark, no pipeline here
    assert doc["status"] == "STARTED"
    assert doc["mode"] == "incremental"
    assert doc["tables"] == list(TABLES)
    assert set(doc) >= {"run_id", "status", "log"}
    return doc


def test_no_wait_returns_at_once_and_the_run_finishes_in_the_background(home: Path) -> None:
    make_demo(home)
    doc = start_in_background()
    run_id = doc["run_id"]
    log = Path(doc["log"])
    assert log.exists()

    final = wait_for(run_id)
    assert final["status"] == "SUCCEEDED", (final.get("error"), log.read_text(errors="replace"))
    assert final["mode"] == "incremental"
    assert all(s["status"] == "SUCCEEDED" for s in final["states"] if s["name"] != "Succeeded")
    assert log.is_file()
    wait_for_lock_free(home)
    deadline = time.monotonic() + 30  # the background process prints its result as it ends
    while run_id not in log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert run_id in log.read_text(errors="replace")
    # The log shows the run's progress, a line per state change, not only its outcome.
    lines = [line.split("s  ", 1)[-1] for line in log.read_text(errors="replace").splitlines()]
    for entry in ("Begin started", "ExtractLoad[bookings] succeeded", "Publish succeeded"):
        assert entry in lines, lines
    assert all(v is not None for v in bookmark_values().values())
    assert_archived(home, run_id)


def test_no_wait_over_a_stale_lock_marks_the_dead_run_abandoned(home: Path) -> None:
    make_demo(home)
    ctx = context(home)
    records.start(
        ctx, "DEAD", mode="incremental", since=None, until=None, tables=list(TABLES), target="local"
    )
    hold_lock(home, dead_holder())

    doc = start_in_background()
    assert wait_for(doc["run_id"])["status"] == "SUCCEEDED"
    wait_for_lock_free(home)
    dead = record("DEAD")
    assert dead["status"] == "FAILED"
    assert dead["error"]["Error"] == "Rentalctl.Abandoned"


# --------------------------------------------------------------------------- 5. unreachable source


def test_an_unreachable_mysql_source_fails_before_a_run_starts(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENTALCTL_SOURCE_URL", "mysql://root@127.0.0.1:1/x")
    result = invoke("run")
    assert result.exit_code == 3, (result.stdout, result.stderr)
    (line,) = error_lines(result.stderr)
    assert "127.0.0.1" in line
    assert "Traceback" not in result.stderr

    result = invoke("-o", "json", "run", "--no-wait")
    assert result.exit_code == 3, (result.stdout, result.stderr)
    assert json.loads(result.stdout)["error"]["kind"] == "resource_unavailable"
    assert not (home / "logs").exists()

    status = invoke("status")
    assert status.exit_code == 0, status.stderr
    assert "No runs yet" in status.stdout
    assert ok_json("status") == {"runs": []}


def test_a_missing_sqlite_source_fails_before_a_run_starts(home: Path) -> None:
    result = invoke("-o", "json", "run")
    assert result.exit_code == 3, (result.stdout, result.stderr)
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "resource_unavailable"
    assert str(home / "source.db") in error["message"]
    assert not (home / "source.db").exists()
    assert ok_json("status") == {"runs": []}


# --------------------------------------------------------------------------- 6. usage


def test_status_before_any_run(home: Path) -> None:
    result = invoke("status")
    assert result.exit_code == 0, result.stderr
    assert "No runs yet" in result.stdout
    assert ok_json("status") == {"runs": []}

    result = invoke("status", "NOPE")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    (line,) = error_lines(result.stderr)
    assert "NOPE" in line


def test_status_of_an_unknown_run_once_runs_exist(home: Path) -> None:
    ctx = context(home)  # a store that exists, with one run in it
    records.start(ctx, "R1", mode="incremental", since=None, until=None, tables=[], target="local")
    assert run_ids() == ["R1"]
    result = invoke("-o", "json", "status", "NOPE")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    error = json.loads(result.stdout)["error"]
    assert error["kind"] == "config_error"
    assert "NOPE" in error["message"]


def test_an_empty_backfill_window_is_refused_before_anything_starts(home: Path) -> None:
    make_demo(home)
    result = invoke("backfill", "--since", "2025-02-01", "--until", "2025-01-01")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    (line,) = error_lines(result.stderr)
    assert "2025-01-01" in line and "2025-02-01" in line
    assert not (home / "state.db").exists()  # no store, no lock, no run record
    assert not (home / "lake").exists()


def test_an_unknown_table_is_refused(home: Path) -> None:
    make_demo(home)
    result = invoke("run", "--tables", "nope")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    (line,) = error_lines(result.stderr)
    assert "'nope'" in line
    assert "apartments" in line  # says what is expected
    assert not (home / "state.db").exists()


def test_a_run_id_that_is_not_a_plain_name_is_refused_before_anything_starts(home: Path) -> None:
    make_demo(home)
    for bad in ("../../etc", "a/b", "x" * 65, "-starts-with-dash"):
        result = invoke("run", "--run-id", bad)
        assert result.exit_code == 2, (bad, result.stdout, result.stderr)
        (line,) = error_lines(result.stderr)
        assert line.startswith(f"error: invalid setting --run-id = {bad!r}"), line
    assert not (home / "state.db").exists()
    assert not (home / "lake").exists()


def test_a_missing_source_table_fails_before_a_run_starts(home: Path) -> None:
    import sqlite3

    make_demo(home)
    with sqlite3.connect(home / "source.db") as conn:
        conn.execute("DROP TABLE bookings")
    result = invoke("run")
    assert result.exit_code == 3, (result.stdout, result.stderr)
    (line,) = error_lines(result.stderr)
    assert line.startswith("error: source sqlite:///"), line
    assert ": cannot read table bookings (no such table: bookings): create it" in line, line
    assert not (home / "state.db").exists()
