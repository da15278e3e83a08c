"""`run --resume RUN_ID` continues a failed run from where it failed: same run id and windows,
the completed steps not done again, and in the end every layer and bookmark exactly as one
clean run leaves them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.support import bookmarks, warehouse_snapshot
from tests.support.cli import invoke, ok_json

pytestmark = pytest.mark.slow

STRICT = ("--set", "quality.max_rejected_share=0")  # the dirty demo data fails this gate
LENIENT = ("--set", "quality.max_rejected_share=1")


def failed_run(home: Path) -> dict[str, Any]:
    result = invoke("-o", "json", *STRICT, "run")
    assert result.exit_code == 1, result.stdout
    record: dict[str, Any] = json.loads(result.stdout)
    return record


def manifests(home: Path, run_id: str) -> dict[str, bytes]:
    return {
        p.parts[-3]: p.read_bytes()
        for p in (home / "lake").rglob(f"run_id={run_id}/_manifest.json")
    }


def test_a_failed_run_resumed_ends_as_one_clean_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, clean = tmp_path / "home", tmp_path / "clean"
    monkeypatch.setenv("RENTALCTL_HOME", str(clean))
    ok_json("demo-data", "--scale", "0.005")
    shutil.copytree(clean, home)
    assert ok_json(*LENIENT, "run")["status"] == "SUCCEEDED"

    monkeypatch.setenv("RENTALCTL_HOME", str(home))
    failed = failed_run(home)
    run_id = failed["run_id"]
    assert failed["error"]["Cause"].startswith("data-quality gate:")
    assert sum(failed["raw_discarded"].values()) > 0  # the failure took its raw rows out
    extracted = manifests(home, run_id)
    assert len(extracted) == 4

    resumed = ok_json(*LENIENT, "run", "--resume", run_id)
    assert resumed["run_id"] == run_id and resumed["status"] == "SUCCEEDED"
    (attempt,) = resumed["attempts"]
    assert attempt["status"] == "FAILED"
    assert attempt["error"]["Cause"] == failed["error"]["Cause"]
    # The extracts were not done again: same windows, same files.
    assert manifests(home, run_id) == extracted
    assert [r["run_id"] for r in ok_json("status")["runs"]] == [run_id]
    assert warehouse_snapshot(home) == warehouse_snapshot(clean)
    assert bookmarks(home) == bookmarks(clean)
    shown = invoke("status", run_id).stdout
    assert "attempt 1: FAILED" in shown and "(resumed)" in shown


def test_what_cannot_be_resumed_is_refused_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("RENTALCTL_HOME", str(home))
    ok_json("demo-data", "--scale", "0.002")
    first = failed_run(home)["run_id"]
    later = ok_json(*LENIENT, "run")["run_id"]

    def refused(run_id: str) -> str:
        result = invoke("-o", "json", "run", "--resume", run_id)
        assert result.exit_code == 2, result.stdout
        message: str = json.loads(result.stdout)["error"]["message"]
        return message

    assert refused(first) == (
        f"run {first} cannot be resumed: run {later} started after it and read its windows "
        "again (a failed run moves no bookmark), so its rows were settled by that run; start a "
        "new run (or a backfill) instead"
    )
    assert refused(later) == f"run {later} succeeded: there is nothing to resume"
    assert refused("no-such-run").startswith("no run no-such-run in ")
    both = invoke("-o", "json", "run", "--resume", later, "--tables", "bookings")
    assert both.exit_code == 2
