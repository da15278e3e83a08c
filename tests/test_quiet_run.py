"""A run whose lookback re-reads only rows the curated layer already holds starts no engine and
transforms nothing, yet leaves every warehouse layer exactly as a full run would: each case
runs the same second run twice from copies of one home, once as it is and once with the
shortcut taken away, and compares the warehouses whole."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from rentalctl.pipeline import transform_job
from tests.reliability.support import warehouse_snapshot
from tests.support.cli import ok_json

pytestmark = pytest.mark.slow

# An apartment in a currency the default rates do not know, stamped just before the source's
# last change: the first run rejects it, the next one's lookback reads it again.
UNKNOWN_CURRENCY = (
    "INSERT INTO apartments VALUES (990001, 'Loft, Zurich', 'test', 2100.00, 'CHF', "
    "'2025-03-30 10:00:00', 1, '2025-03-31 23:59:00.000001')"
)


def first_run(base: Path, *source_changes: str) -> Path:
    """A home whose source (demo data with ``source_changes``) went through one run."""
    home = base / "home"
    os.environ["RENTALCTL_HOME"] = str(home)  # restored by the test's monkeypatch
    ok_json("demo-data", "--scale", "0.01")
    with sqlite3.connect(home / "source.db") as db:
        for statement in source_changes:
            db.execute(statement)
    assert ok_json("run")["status"] == "SUCCEEDED"
    return home


def second_runs(
    home: Path, monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The next run in ``home`` as it is, and the same run in a copy without the shortcut;
    their warehouses must be equal."""
    reference = home.parent / "reference"
    shutil.copytree(home, reference)
    quick = ok_json(*args, "run")
    with monkeypatch.context() as m:
        m.setenv("RENTALCTL_HOME", str(reference))
        m.setattr(transform_job, "all_curated", lambda *a: False)
        full = ok_json(*args, "run")
    assert quick["status"] == full["status"] == "SUCCEEDED"
    assert warehouse_snapshot(home) == warehouse_snapshot(reference)
    return quick, full


def test_nothing_new_transforms_nothing_and_starts_no_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark: Any
) -> None:
    import rentalctl.spark

    monkeypatch.setenv("RENTALCTL_HOME", "")
    home = first_run(tmp_path)
    reference = tmp_path / "reference"
    shutil.copytree(home, reference)
    with monkeypatch.context() as m:

        def no_engine(*args: Any) -> None:
            raise AssertionError("a run with nothing new started an engine")

        m.setattr(rentalctl.spark, "transform_session", no_engine)
        quick = ok_json("run")
    assert quick["status"] == "SUCCEEDED"
    summary = quick["summary"]
    reread = {t: s["extracted"] for t, s in summary.items() if s["extracted"]}
    assert reread, "the lookback re-read nothing: the case proves nothing"
    assert {t: summary[t]["already_curated"] for t in reread} == reread
    assert all(s["curated"] == 0 and s["inserted"] == s["updated"] == 0 for s in summary.values())
    assert not list((home / "lake" / "curated").rglob(f"run_id={quick['run_id']}/*.parquet"))

    monkeypatch.setenv("RENTALCTL_HOME", str(reference))
    monkeypatch.setattr(transform_job, "all_curated", lambda *a: False)
    assert ok_json("run")["status"] == "SUCCEEDED"
    assert warehouse_snapshot(home) == warehouse_snapshot(reference)


def test_a_rejected_row_read_again_is_transformed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark: Any
) -> None:
    monkeypatch.setenv("RENTALCTL_HOME", "")
    home = first_run(tmp_path, UNKNOWN_CURRENCY)
    # The lookback reads little besides the CHF apartment: let the gate pass its rejection.
    quick, _ = second_runs(home, monkeypatch, "--set", "quality.max_rejected_share=1")
    apartments = quick["summary"]["apartments"]
    assert apartments["already_curated"] is None
    assert apartments["rejected_by_reason"] == {"unknown_currency": 1}


def test_new_fx_rates_transform_again_what_they_may_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark: Any
) -> None:
    monkeypatch.setenv("RENTALCTL_HOME", "")
    home = first_run(tmp_path, UNKNOWN_CURRENCY)
    quick, _ = second_runs(home, monkeypatch, "--set", "fx_rates.CHF=1.13")
    assert all(s["already_curated"] is None for s in quick["summary"].values())
    assert quick["summary"]["apartments"]["inserted"] == 1  # the CHF apartment, now known


def test_changed_rows_are_transformed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark: Any
) -> None:
    monkeypatch.setenv("RENTALCTL_HOME", "")
    home = first_run(tmp_path)
    ok_json("demo-data", "--changes")
    quick, _ = second_runs(home, monkeypatch)
    changed = [t for t, s in quick["summary"].items() if s["inserted"] or s["updated"]]
    assert changed
    assert all(quick["summary"][t]["already_curated"] is None for t in changed)
