"""Interpreters of the Glue runtimes' Python versions, when this machine has them."""

from __future__ import annotations

import subprocess
from pathlib import Path


def python39() -> str | None:
    """A Python 3.9 interpreter on this machine, if any (pyenv shims exist without one)."""
    for candidate in (
        "python3.9",
        *sorted(Path("/root/.pyenv/versions").glob("3.9*/bin/python3.9")),
    ):
        try:
            out = subprocess.run(
                [str(candidate), "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 9)":
            return str(candidate)
    return None
