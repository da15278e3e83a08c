"""`demo-data --replace` starts over: after it, a run over the new data gives exactly what a
first run over that data gives in a new home — before, every run failed because the bookmarks
pointed past the new data's timestamps."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from rentalctl import config
from rentalctl.context import Context
from rentalctl.run_lock import describe_self, is_stale
from tests.reliability.support import warehouse_snapshot
from tests.support.cli import invoke, ok_json

pytestmark = pytest.mark.slow


def in_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENTALCTL_HOME", str(home))


def store(home: Path) -> Any:
    return Context(config.load(env={**os.environ, "RENTALCTL_HOME": str(home)})).state


def test_replace_resets_what_was_built_and_the_next_run_is_a_first_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, fresh = tmp_path / "old", tmp_path / "fresh"
    in_home(fresh, monkeypatch)
    ok_json("demo-data", "--scale", "0.005", "--seed", "7")
    first = ok_json("run")

    in_home(old, monkeypatch)
    ok_json("demo-data", "--scale", "0.005")
    assert ok_json("run")["status"] == "SUCCEEDED"
    (old / "lake" / "scripts").mkdir(parents=True)
    (old / "lake" / "scripts" / "job.py").write_text("kept")

    refused = invoke("-o", "json", "demo-data", "--replace", "--scale", "0.005", "--seed", "7")
    assert refused.exit_code == 2, refused.stdout
    assert json.loads(refused.stdout)["error"]["message"] == (
        "--replace needs confirmation: add --yes to confirm in scripts"
    )

    replaced = ok_json("demo-data", "--replace", "--yes", "--scale", "0.005", "--seed", "7")
    assert replaced["reset"] == {
        "bookmarks_reset": ["apartment_attributes", "apartments", "bookings", "user_viewing"],
        "run_records_deleted": 1,
        "lake_objects_deleted": replaced["reset"]["lake_objects_deleted"],
        "warehouse_schemas_dropped": ["rentalctl", "presentation", "curated", "raw"],
    }
    assert replaced["reset"]["lake_objects_deleted"] > 0
    assert [p.relative_to(old / "lake").as_posix() for p in (old / "lake").rglob("*.*")] == [
        "scripts/job.py"
    ]
    history = ok_json("bookmarks", "history")
    assert [h["command"] for h in history["changes"] if h["new"] is None] == [
        "demo-data --replace"
    ] * 4

    second = ok_json("run")
    assert second["status"] == "SUCCEEDED"
    assert ok_json("status")["runs"][0]["run_id"] == second["run_id"]
    assert len(ok_json("status")["runs"]) == 1
    assert second["kpis"] == first["kpis"]
    assert warehouse_snapshot(old) == warehouse_snapshot(fresh)


def test_replace_waits_for_no_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    in_home(home, monkeypatch)
    ok_json("demo-data", "--scale", "0.002")
    ok_json("seed-bookmarks")
    with store(home) as s:
        assert s.acquire_lock(describe_self("RUNNING-RUN"), is_stale) is None
    result = invoke("-o", "json", "demo-data", "--replace", "--yes", "--scale", "0.002")
    assert result.exit_code == 4, (result.stdout, result.stderr)
    message = json.loads(result.stdout)["error"]["message"]
    assert message.endswith("; nothing replaced, try again when it ends"), message
