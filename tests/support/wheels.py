"""Stand-ins for the wheelhouse upload-scripts ships, for tests about something else: they need
no package index. tests/test_wheelhouse.py installs the real one."""

from __future__ import annotations

from pathlib import Path

import pytest

# One wheel of a pure-Python package, shared by both runtimes, and one of a compiled package per
# runtime, as upload-scripts lays them out under the scripts prefix.
PURE = "lib/wheels/puredep-1.0-py3-none-any.whl"
SHELL_BINARY = "lib/wheels/cdep-2.0-cp39-cp39-manylinux2014_x86_64.whl"
SPARK_BINARY = "lib/wheels/cdep-2.0-cp311-cp311-manylinux2014_x86_64.whl"


def use_stand_in_wheels(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """upload-scripts ships these wheels (in this order) instead of downloading the real ones."""
    folder.mkdir()
    for path in (PURE, SHELL_BINARY, SPARK_BINARY):
        (folder / Path(path).name).write_bytes(f"content of {Path(path).name}".encode())
    pythons = {"3.9": [PURE, SHELL_BINARY], "3.11": [PURE, SPARK_BINARY]}

    def wheels(home: Path, python: str) -> list[Path]:
        return [folder / Path(path).name for path in pythons[python]]

    monkeypatch.setattr("rentalctl.deploy.wheelhouse.wheels", wheels)
