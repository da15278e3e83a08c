"""rentalctl works as an installed package, not only from a checkout: the wheel carries the
shipped artefacts, and its console script runs from a directory outside the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("glue", "step-functions", "redshift", "mysql", "config")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build the wheel and install it alone (no deps: this venv has them) into a target dir."""
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(work), str(REPO)],
        check=True,
    )
    (wheel,) = work.glob("rentalctl-*.whl")
    target = work / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    return {"wheel": wheel, "site": target}


def _run(installed: dict[str, Path], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RENTALCTL_")}
    env["PYTHONPATH"] = str(installed["site"])
    env["RENTALCTL_HOME"] = str(cwd / "home")
    return subprocess.run(
        [str(installed["site"] / "bin" / "rentalctl"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_wheel_carries_every_shipped_artefact(installed: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for folder in SHIPPED:
        in_repo = {
            p.relative_to(REPO).as_posix() for p in (REPO / folder).rglob("*") if p.is_file()
        }
        assert in_repo, folder
        for rel in in_repo:
            assert f"rentalctl/_shipped/{rel}" in names, rel
    assert "rentalctl/_shipped/mysql/schema.sql" in names
    assert "rentalctl/_shipped/config/local.yaml" in names


def test_installed_cli_runs_outside_the_repository(
    installed: dict[str, Path], tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()

    where = subprocess.run(
        [sys.executable, "-c", "import rentalctl; print(rentalctl.__file__)"],
        cwd=outside,
        env={**os.environ, "PYTHONPATH": str(installed["site"])},
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip().startswith(str(installed["site"]))

    version = _run(installed, outside, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("rentalctl ")

    demo = _run(installed, outside, "--output", "json", "demo-data", "--scale", "0.001")
    assert demo.returncode == 0, demo.stderr
    doc = json.loads(demo.stdout)
    assert doc["mode"] == "created"
    assert doc["tables"]["bookings"]["total"] == 500
    assert (outside / "home" / "source.db").is_file()

    # The bookmark commands and a dry run, from the installed package: a first run would read
    # every row demo-data wrote, and the bookmarks are all empty.
    assert _run(installed, outside, "--output", "json", "seed-bookmarks").returncode == 0
    plan = _run(installed, outside, "--output", "json", "run", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    rows = {t["table"]: t["rows"] for t in json.loads(plan.stdout)["tables"]}
    assert rows == {t: d["total"] for t, d in doc["tables"].items()}
    shown = _run(installed, outside, "--output", "json", "bookmarks", "show")
    assert shown.returncode == 0, shown.stderr
    assert {
        t: b["value"] for t, b in json.loads(shown.stdout)["bookmarks"].items()
    } == dict.fromkeys(rows)

    report = _run(installed, outside, "report")  # before any run: a page saying so
    assert report.returncode == 0, report.stderr
    assert report.stdout.startswith(f"Report written: {outside / 'home' / 'report.html'} (")
    assert "No runs yet" in (outside / "home" / "report.html").read_text(encoding="utf-8")

    bad = _run(installed, outside, "--profile", "nope", "demo-data")
    assert bad.returncode == 2
    assert bad.stderr == (
        "error: unknown profile 'nope': no config/nope.yaml here or shipped (profiles: local)\n"
    )

    # The words of the command line, from the installed package: options after the command,
    # a suggestion for a typo, a date echoed with its form.
    after = _run(installed, outside, "status", "-o", "json", "-V")
    assert (after.returncode, after.stdout.startswith("rentalctl ")) == (0, True), after.stderr
    listed = _run(installed, outside, "bookmarks", "show", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert set(json.loads(listed.stdout)["bookmarks"]) == set(rows)
    typo = _run(installed, outside, "kpis", "ocupancy_rate")
    assert typo.returncode == 2
    assert typo.stderr.startswith("error: unknown KPI table 'ocupancy_rate': did you mean ")
    date = _run(installed, outside, "backfill", "--since", "03/01/2025")
    assert (date.returncode, date.stderr) == (
        2,
        "error: --since '03/01/2025' is not a date: use YYYY-MM-DD[ HH:MM:SS]\n",
    )


def _make_plan(target: str) -> list[str]:
    """The commands ``make TARGET`` would run from scratch (printed, not run)."""
    plan = subprocess.run(
        ["make", "-n", "-B", target], cwd=REPO, capture_output=True, text=True, check=True
    )
    return [line for line in plan.stdout.splitlines() if "pip install" in line]


def test_make_demo_installs_the_runtime_only_and_make_test_the_dev_tools() -> None:
    assert _make_plan("demo") == [
        ".venv/bin/python -m pip install --quiet --upgrade pip",
        ".venv/bin/python -m pip install --quiet -e .",
    ]
    assert _make_plan("test")[-1] == ".venv/bin/python -m pip install --quiet -e '.[dev]'"


def test_the_aws_profile_is_git_ignored_and_its_example_is_not() -> None:
    def ignored(path: str) -> bool:
        check = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
        return check.returncode == 0

    assert ignored("config/aws.yaml")
    assert not ignored("config/aws.example.yaml")
