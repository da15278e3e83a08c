"""The benchmark script runs from a checkout and reports every number it promises (a smoke test
at a tiny scale: timings are measured by the script, never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_benchmark_runs_at_a_tiny_scale(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench.py"),
            "--scales",
            "0.002",
            "--work",
            str(tmp_path / "work"),
            "--out",
            str(out),
            "--engines",
            "duckdb",  # the script treats every engine alike; Spark's start-up is costly here
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "full s" in result.stdout and "stages:" in result.stdout
    (scale,) = json.loads(out.read_text())["results"]
    assert scale["scale"] == 0.002
    assert scale["source_rows"] == 2403
    assert set(scale["engines"]) == {"duckdb"}
    for runs in scale["engines"].values():
        assert set(runs) == {"full", "incremental", "nothing_new"}
        for run in runs.values():
            assert run["seconds"] > 0 and run["peak_rss_mb"] > 0
            assert set(run["stages"]) == {"Begin", "ExtractLoad", "Transform", "Publish"}
            assert all(
                st["seconds"] >= 0 and st["peak_rss_mb"] > 0 for st in run["stages"].values()
            )
        assert runs["incremental"]["rows_extracted"] > 0
        assert runs["full"]["ratio_to_reference"] > 0
    assert scale["reference"]["seconds"] > 0 and scale["reference"]["extract_seconds"] > 0
    assert scale["extract_only"]["peak_rss_mb"] > 0
    assert scale["help_seconds"] > 0 and scale["status_seconds"] > 0
    assert scale["report_seconds"] > 0 and scale["report_mb"] > 0
