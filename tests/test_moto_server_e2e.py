"""The AWS sequence of docs/aws.md — seed-bookmarks, upload-scripts, deploy-sfn, run, status —
as an operator types it, against a moto server reached through AWS_ENDPOINT_URL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_the_documented_sequence_against_a_moto_server() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "moto_e2e.py")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "run: SUCCEEDED" in done.stdout
    assert "the documented sequence works against moto" in done.stdout
