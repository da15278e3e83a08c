"""The house rules, enforced by the suite CI runs: ruff (lint and format) and mypy are clean, and
the imports keep the layers of pyproject.toml's [tool.importlinter]."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True)


def test_ruff_lint_and_format() -> None:
    lint = _run("ruff", "check", "rentalctl", "tests")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run("ruff", "format", "--check", "rentalctl", "tests")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_layers() -> None:
    # pyproject.toml's [tool.importlinter]: no module imports from a layer above its own, function
    # level imports included, and no package's modules import each other in a cycle.
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_contract_is_cited_where_it_lives() -> None:
    # The pipeline contract is docs/contract.md; no file may point at a document the repository
    # does not hold (spelled in two parts so that this file does not match itself).
    missing = "SP" + "EC"
    found = subprocess.run(
        ["git", "grep", "-n", "-w", missing], cwd=REPO, capture_output=True, text=True
    )
    assert found.stdout == ""
    assert (REPO / "docs" / "contract.md").is_file()
    assert "[docs/contract.md](docs/contract.md)" in (REPO / "README.md").read_text("utf-8")
