"""The command line (docs/contract.md §8): global options, error reporting and exit codes,
demo-data.

Commands run in-process through Typer's ``CliRunner`` (stdout and stderr are kept apart);
start-up cost and ``python -m rentalctl`` are checked in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rentalctl.cli import app

PASSWORD = "Quokka-Passw0rd-991"
UNREACHABLE_MYSQL = "mysql://root@127.0.0.1:1/db"
DEMO_TABLES = ("apartments", "apartment_attributes", "user_viewing", "bookings")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str):
    return runner.invoke(app, list(args))


def assert_clean_error(result, code: int) -> str:
    """Exit ``code``, nothing on stdout, one ``error:`` line on stderr and no traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.endswith("\n")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def json_error(result, code: int, kind: str) -> str:
    """Exit ``code`` and stdout is exactly one JSON error document; returns its message."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    doc = json.loads(result.stdout)  # fails on anything besides one JSON document
    assert set(doc) == {"error"}
    assert set(doc["error"]) == {"kind", "message", "exit_code"}
    assert doc["error"]["kind"] == kind
    assert doc["error"]["exit_code"] == code
    assert isinstance(doc["error"]["message"], str)
    assert "Traceback" not in result.stdout + result.stderr
    return doc["error"]["message"]


def source_counts(path: Path) -> dict[str, int]:
    """Row counts read straight from the SQLite file, independently of rentalctl."""
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in DEMO_TABLES}
    finally:
        conn.close()


# --------------------------------------------------------------------------- help and version


def test_version(runner: CliRunner) -> None:
    result = invoke(runner, "--version")
    assert result.exit_code == 0
    assert re.fullmatch(r"rentalctl \d+\.\d+\.\d+\S*\n", result.stdout), result.stdout


def test_help_lists_demo_data_and_global_options(runner: CliRunner) -> None:
    result = invoke(runner, "--help")
    assert result.exit_code == 0
    for text in ("demo-data", "--config", "--profile", "--output", "--set", "--verbose"):
        assert text in result.stdout, text
    assert "--version" in result.stdout
    assert result.stderr == ""


def test_short_help_option(runner: CliRunner) -> None:
    result = invoke(runner, "-h")
    assert result.exit_code == 0
    assert "demo-data" in result.stdout


def test_demo_data_help(runner: CliRunner) -> None:
    result = invoke(runner, "demo-data", "--help")
    assert result.exit_code == 0
    for text in ("--scale", "--seed", "--changes", "--replace"):
        assert text in result.stdout, text


# --------------------------------------------------------------------------- configuration errors


def test_bad_source_url_is_one_line_exit_2(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENTALCTL_SOURCE_URL", "bogus://x")
    stderr = assert_clean_error(invoke(runner, "demo-data"), 2)
    assert "source.url" in stderr
    assert "'bogus://x'" in stderr
    assert "RENTALCTL_SOURCE_URL" in stderr


def test_bad_config_with_json_output(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENTALCTL_SOURCE_URL", "bogus://x")
    result = invoke(runner, "--output", "json", "demo-data")
    message = json_error(result, 2, "config_error")
    assert "source.url" in message
    assert "'bogus://x'" in message
    assert "RENTALCTL_SOURCE_URL" in message
    assert "\n" not in message


def test_bad_config_file_option(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("extract:\n  batch_size: 0\n", encoding="utf-8")
    stderr = assert_clean_error(invoke(runner, "--config", "bad.yaml", "demo-data"), 2)
    assert "extract.batch_size = 0" in stderr
    assert str((tmp_path / "bad.yaml").resolve()) in stderr


def test_unknown_profile(runner: CliRunner) -> None:
    stderr = assert_clean_error(invoke(runner, "--profile", "staging", "demo-data"), 2)
    assert "'staging'" in stderr
    assert "local" in stderr


@pytest.mark.parametrize("item", ["novalue", "=5"])
def test_bad_set_syntax_exits_2(runner: CliRunner, item: str) -> None:
    result = invoke(runner, "--set", item, "demo-data")
    assert result.exit_code == 2
    assert "--set" in result.stderr
    assert "KEY=VALUE" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_set_with_bad_number_names_the_key(runner: CliRunner) -> None:
    result = invoke(runner, "--set", "extract.batch_size=notanumber", "demo-data")
    stderr = assert_clean_error(result, 2)
    assert "extract.batch_size" in stderr
    assert "'notanumber'" in stderr
    assert "--set extract.batch_size" in stderr


def test_bad_output_format_exits_2(runner: CliRunner) -> None:
    result = invoke(runner, "--output", "xml", "demo-data")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr


# --------------------------------------------------------------------------- unreachable resources


def test_unreachable_mysql_exits_3(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENTALCTL_SOURCE_URL", UNREACHABLE_MYSQL)
    monkeypatch.setenv("RENTALCTL_SOURCE_PASSWORD", PASSWORD)
    stderr = assert_clean_error(invoke(runner, "demo-data"), 3)
    assert "127.0.0.1:1" in stderr
    assert "'db'" in stderr
    assert PASSWORD not in stderr


def test_unreachable_mysql_json(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENTALCTL_SOURCE_URL", UNREACHABLE_MYSQL)
    monkeypatch.setenv("RENTALCTL_SOURCE_PASSWORD", PASSWORD)
    result = invoke(runner, "-o", "json", "demo-data")
    message = json_error(result, 3, "resource_unavailable")
    assert "127.0.0.1:1" in message
    assert "'db'" in message
    assert PASSWORD not in result.stdout
    assert PASSWORD not in result.stderr


@pytest.mark.mysql
def test_wrong_mysql_password_exits_3_without_echoing_it(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, mysql_server: dict[str, object]
) -> None:
    url = f"mysql://{mysql_server['user']}@{mysql_server['host']}:{mysql_server['port']}/nodb"
    monkeypatch.setenv("RENTALCTL_SOURCE_URL", url)
    monkeypatch.setenv("RENTALCTL_SOURCE_PASSWORD", PASSWORD)
    stderr = assert_clean_error(invoke(runner, "demo-data"), 3)
    assert f"{mysql_server['host']}:{mysql_server['port']}" in stderr
    assert "'nodb'" in stderr
    assert PASSWORD not in stderr


# --------------------------------------------------------------------------- demo-data


def demo_json(runner: CliRunner, *args: str) -> dict:
    result = invoke(runner, "--output", "json", "demo-data", *args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def test_demo_data_creates_the_source(runner: CliRunner, home: Path) -> None:
    doc = demo_json(runner, "--scale", "0.002")
    assert doc["mode"] == "created"
    assert doc["scale"] == 0.002
    assert doc["seed"] == 42
    assert doc["source"] == f"sqlite:///{home.resolve()}/source.db"
    # scale 1 = 200k apartments and attribute rows, 300k viewings, 500k bookings (--help)
    tables = doc["tables"]
    assert list(tables) == list(DEMO_TABLES)
    assert tables["apartment_attributes"]["inserted"] == 400
    assert tables["user_viewing"]["inserted"] == 600
    assert tables["bookings"]["inserted"] == 1000
    assert 400 <= tables["apartments"]["inserted"] <= 420  # plus a few dirty rows
    for t in tables.values():
        assert t["updated"] == 0
        assert t["total"] == t["inserted"]
    on_disk = source_counts(home / "source.db")
    assert on_disk == {name: t["total"] for name, t in tables.items()}


def test_demo_data_text_output(runner: CliRunner, home: Path) -> None:
    result = invoke(runner, "demo-data", "--scale", "0.002")
    assert result.exit_code == 0, result.stderr
    assert "created" in result.stdout
    assert "bookings" in result.stdout
    assert (home / "source.db").is_file()


def test_demo_data_second_call_leaves_data_unchanged(runner: CliRunner, home: Path) -> None:
    first = demo_json(runner, "--scale", "0.002")
    second = demo_json(runner, "--scale", "0.002")
    assert second["mode"] == "unchanged"
    for name in DEMO_TABLES:
        assert second["tables"][name]["inserted"] == 0
        assert second["tables"][name]["updated"] == 0
        assert second["tables"][name]["total"] == first["tables"][name]["total"]
    assert source_counts(home / "source.db") == {
        name: first["tables"][name]["total"] for name in DEMO_TABLES
    }


def test_demo_data_changes(runner: CliRunner, home: Path) -> None:
    first = demo_json(runner, "--scale", "0.002")
    doc = demo_json(runner, "--changes")
    assert doc["mode"] == "changes"
    tables = doc["tables"]
    assert sum(t["inserted"] for t in tables.values()) > 0
    assert tables["bookings"]["inserted"] > 0
    assert tables["user_viewing"]["inserted"] > 0
    assert sum(t["updated"] for t in tables.values()) > 0
    for name in DEMO_TABLES:
        before = first["tables"][name]["total"]
        assert tables[name]["total"] == before + tables[name]["inserted"]
    assert source_counts(home / "source.db") == {n: tables[n]["total"] for n in DEMO_TABLES}


def test_demo_data_replace(runner: CliRunner, home: Path) -> None:
    first = demo_json(runner, "--scale", "0.002")
    demo_json(runner, "--changes")
    doc = demo_json(runner, "--replace", "--yes", "--scale", "0.002")
    assert doc["mode"] == "replaced"
    for name in DEMO_TABLES:
        # same seed and scale: the same data set as the first run, the changes gone
        assert doc["tables"][name]["total"] == first["tables"][name]["total"]
        assert doc["tables"][name]["inserted"] == first["tables"][name]["total"]
    assert source_counts(home / "source.db") == {
        n: first["tables"][n]["total"] for n in DEMO_TABLES
    }


def test_demo_data_changes_and_replace_together_exit_2(runner: CliRunner, home: Path) -> None:
    result = invoke(runner, "demo-data", "--changes", "--replace")
    assert result.exit_code == 2
    assert "--changes" in result.stderr
    assert "--replace" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not (home / "source.db").exists()


def test_usage_error_with_json_output_is_a_json_document(runner: CliRunner, home: Path) -> None:
    result = invoke(runner, "--output", "json", "demo-data", "--changes", "--replace")
    json_error(result, 2, "usage_error")


def test_demo_data_changes_on_empty_source_exits_2(runner: CliRunner, home: Path) -> None:
    stderr = assert_clean_error(invoke(runner, "demo-data", "--changes"), 2)
    assert "demo-data" in stderr


def test_demo_data_scale_out_of_range_exits_2(runner: CliRunner, home: Path) -> None:
    result = invoke(runner, "demo-data", "--scale", "0")
    assert result.exit_code == 2
    assert "--scale" in result.stderr
    assert not (home / "source.db").exists()


# --------------------------------------------------------------------------- start-up


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


def test_importing_the_cli_loads_no_heavy_module(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import rentalctl.cli"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    imported = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            imported.add(name.split(".")[0])
    assert "rentalctl" in imported  # the output was parsed
    assert "typer" in imported
    heavy = {"pyspark", "boto3", "botocore", "duckdb", "pymysql", "yaml"}
    assert imported & heavy == set()


def test_python_m_rentalctl_help(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "rentalctl", "--help"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "demo-data" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path: Path) -> None:
    """`rentalctl logs RUN_ID | head`: when the reader closes the pipe, the command stops with
    status 1 (as click and rich do for what they print) and says nothing on stderr (no
    "internal error", no traceback)."""
    env = {**os.environ, "RENTALCTL_HOME": str(tmp_path / "home")}
    env.pop("CI", None)
    cli = [sys.executable, "-m", "rentalctl"]
    subprocess.run(
        [*cli, "demo-data", "--scale", "0.001"], env=env, check=True, capture_output=True
    )
    run = subprocess.run([*cli, "-o", "json", "run"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        [*cli, "logs", json.loads(run.stdout)["run_id"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the command writes anything
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1, err
    assert err == ""
