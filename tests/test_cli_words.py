"""The command line as people type it: global options after the command, suggestions for a
mistyped name, errors in the user's words and help that reads well."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.cli import invoke

# Every command and sub-command, with the arguments it needs to parse.
COMMANDS = [
    ["demo-data"],
    ["seed-bookmarks"],
    ["run"],
    ["status"],
    ["backfill", "--since", "2025-01-01"],
    ["cancel", "RUN"],
    ["kpis"],
    ["report"],
    ["upload-scripts"],
    ["deploy-sfn"],
    ["iam-policy", "glue-job-role"],
    ["bookmarks", "show"],
    ["bookmarks", "history"],
    ["bookmarks", "set", "bookings", "2025-01-01", "--yes"],
    ["bookmarks", "rewind", "bookings", "--by", "1d", "--yes"],
]


# ---------------------------------------------------------------- options after the command


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_takes_the_global_options_after_its_name(command: list[str]) -> None:
    # --version is eager: parsed after the command name, it prints and exits before the command.
    for flag in ("--version", "-V"):
        result = invoke(*command, flag)
        assert (result.exit_code, result.stdout[:10]) == (0, "rentalctl "), result.output


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_takes_a_profile_after_its_name(command: list[str]) -> None:
    # iam-policy reads no settings; every other command reads the profile before doing anything.
    if command[0] == "iam-policy":
        return
    result = invoke(*command, "--profile", "stagign", "-v")
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    assert result.stderr.splitlines()[-1] == (
        "error: unknown profile 'stagign': no config/stagign.yaml here or shipped (profiles: local)"
    )


def test_status_output_json_after_the_command(home: Path) -> None:
    result = invoke("status", "-o", "json")
    assert (result.exit_code, result.stdout, result.stderr) == (0, '{\n  "runs": []\n}\n', "")
    result = invoke("status", "--output=json", "--limit", "3")
    assert (result.exit_code, result.stdout) == (0, '{\n  "runs": []\n}\n')


def test_set_after_the_command() -> None:
    result = invoke("status", "--set", "extract.batch_size=0")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: invalid setting extract.batch_size = 0 (from --set extract.batch_size): "
        "expected an integer from 100 to 1000000\n"
    )


def test_a_commands_own_option_stays_with_it(home: Path) -> None:
    # kpis has its own -o (text, json or csv): csv is not a global format.
    result = invoke("kpis", "-o", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "table,grain,rows,latest,definition"


def test_nothing_after_double_dash_moves() -> None:
    result = invoke("iam-policy", "--", "-V")
    assert result.exit_code == 2
    assert "unknown role '-V'" in result.stderr


# --------------------------------------------------------------------------- did you mean


def test_mistyped_setting_key_suggests_the_closest() -> None:
    result = invoke("--set", "extract.bach_size=5", "status")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: unknown setting 'extract.bach_size' (from --set extract.bach_size): "
        "did you mean extract.batch_size?\n"
    )


def test_mistyped_setting_key_in_the_file_suggests_the_closest(tmp_path: Path) -> None:
    (tmp_path / "my.yaml").write_text("sorce:\n  url: sqlite:///x.db\n", encoding="utf-8")
    result = invoke("status", "--config", "my.yaml")
    assert result.stderr == (
        f"error: unknown setting 'sorce' (from {tmp_path / 'my.yaml'}): did you mean source?\n"
    )


def test_setting_key_far_from_any_says_where_the_keys_are() -> None:
    result = invoke("--set", "colour=blue", "status")
    assert result.stderr == (
        "error: unknown setting 'colour' (from --set colour): "
        "the settings are listed in the README, section Configuration\n"
    )


def test_mistyped_table_suggests_the_closest() -> None:
    result = invoke("bookmarks", "history", "bokings")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: unknown table 'bokings': did you mean bookings? (expected one of apartments, "
        "apartment_attributes, user_viewing, bookings)\n"
    )


def test_mistyped_kpi_table_suggests_the_closest() -> None:
    result = invoke("kpis", "ocupancy_rate")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: unknown KPI table 'ocupancy_rate': did you mean occupancy_rate? (expected one of "
    )


def test_mistyped_profile_suggests_the_closest(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "staging.yaml").write_text("target: local\n", encoding="utf-8")
    (tmp_path / "config" / "aws.example.yaml").write_text("target: aws\n", encoding="utf-8")
    result = invoke("status", "-p", "stagign")
    assert result.stderr == (
        "error: unknown profile 'stagign': no config/stagign.yaml here or shipped; "
        "did you mean staging? (profiles: local, staging)\n"
    )


def test_aws_profile_not_written_yet_says_how_to_write_it() -> None:
    result = invoke("status", "-p", "aws")
    assert result.stderr == (
        "error: unknown profile 'aws': no config/aws.yaml here or shipped; copy "
        "config/aws.example.yaml to config/aws.yaml and fill it in (profiles: local)\n"
    )


def test_mistyped_command_suggests_the_closest() -> None:
    result = invoke("statsu")
    assert result.exit_code == 2
    assert "No such command 'statsu'. Did you mean 'status'?" in result.stderr


# ------------------------------------------------------------------- errors in the user's words


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--since", "03/01/2025"],
            "error: --since '03/01/2025' is not a date: use YYYY-MM-DD[ HH:MM:SS]\n",
        ),
        (
            ["--since", "2025-01-01", "--until", "2025-02-30"],
            "error: --until '2025-02-30' is not a date: use YYYY-MM-DD[ HH:MM:SS] "
            "(day is out of range for month)\n",
        ),
    ],
)
def test_a_backfill_date_that_does_not_parse_is_echoed_with_the_forms(
    home: Path, args: list[str], expected: str
) -> None:
    result = invoke("backfill", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", expected)


def test_a_recorded_error_reads_without_its_name() -> None:
    from rentalctl.errors import error_words

    cause = "States.TaskFailed: Rentalctl.PipelineFailed: publish: data-quality gate: …"
    assert error_words({"Error": "States.TaskFailed", "Cause": cause}) == (
        "publish: data-quality gate: …"
    )
    assert error_words({"Error": "States.Timeout", "Cause": None}) == "a step ran out of time"
    assert error_words({"Error": "Rentalctl.Abandoned"}) == "Abandoned"


@pytest.mark.slow
def test_a_failed_run_says_why_in_one_line_without_error_names(home: Path) -> None:
    assert invoke("demo-data", "--scale", "0.002").exit_code == 0
    gate, fast = "quality.max_rejected_share=0.001", "retry.interval_seconds=1"
    result = invoke("run", "--set", gate, "--set", fast)
    assert result.exit_code == 1, result.output
    both = result.stdout + result.stderr  # what the terminal shows
    errors = [line for line in both.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, both
    assert errors[0].startswith("error: run ")
    assert " failed: data-quality gate: " in errors[0]
    assert "States." not in both and "Rentalctl." not in both
    # status names the cause the same way.
    shown = invoke("status", errors[0].split()[2])
    assert "States." not in shown.stdout and "Rentalctl." not in shown.stdout
    assert "error: data-quality gate: " in shown.stdout


@pytest.mark.slow
def test_a_refused_run_prints_one_line_and_no_run_header(home: Path) -> None:
    from rentalctl import config
    from rentalctl.context import Context
    from rentalctl.run_lock import describe_self, is_stale

    assert invoke("demo-data", "--scale", "0.002").exit_code == 0
    store = Context(config.load()).state
    store.ensure()
    assert store.acquire_lock(describe_self("OTHER"), is_stale) is None
    try:
        result = invoke("run")
    finally:
        store.release_lock("OTHER")
        store.close()
    assert (result.exit_code, result.stdout) == (4, ""), result.output
    assert result.stderr.startswith("error: another run holds the pipeline lock: run OTHER ")
    assert result.stderr.count("\n") == 1, result.stderr


@pytest.mark.slow
def test_a_resource_unreachable_through_the_retries_exits_3(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rentalctl import jobs
    from rentalctl.errors import ResourceUnavailable

    def unreachable(*_: object) -> dict[str, object]:
        raise ResourceUnavailable("cannot reach the warehouse (connection refused)")

    assert invoke("demo-data", "--scale", "0.002").exit_code == 0
    monkeypatch.setitem(jobs.JOBS, "publish", unreachable)
    result = invoke("run", "--set", "retry.interval_seconds=1", "--set", "retry.max_attempts=1")
    assert result.exit_code == 3, result.output
    assert result.stderr.splitlines()[-1].endswith(
        " failed: cannot reach the warehouse (connection refused)"
    )


# --------------------------------------------------------------------------- help


def _help(*command: str) -> str:
    # A wide terminal, so that no line of the help is wrapped where the test looks.
    from typer.testing import CliRunner

    from rentalctl.cli import app

    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(
    "command", [[]] + [c[:2] if c[0] == "bookmarks" else c[:1] for c in COMMANDS]
)
def test_help_shows_no_bool_placeholder(command: list[str]) -> None:
    text = _help(*command)
    assert "<bool>" not in text
    (line,) = [line for line in text.splitlines() if "--help" in line]
    assert re.search(r"│ +--help +-h +Show this message and exit\. +│", line), line


@pytest.mark.parametrize("command", [c[:2] if c[0] == "bookmarks" else c[:1] for c in COMMANDS])
def test_every_command_help_has_examples(command: list[str]) -> None:
    lines = [line.strip() for line in _help(*command).splitlines()]
    start = lines.index("Examples")
    shown = [line for line in lines[start:] if line.startswith("rentalctl ")]
    assert 1 <= len(shown) <= 2, lines[start:]
    name = " ".join(command)
    # Each example runs this command (AWS commands name the profile first).
    assert all(f" {name} " in f" {line} ".replace(" --profile aws", "") for line in shown)


def test_status_with_no_runs_names_the_home(home: Path) -> None:
    result = invoke("status")
    assert result.stdout == f"No runs yet in {home}. Start one with `rentalctl run`.\n"
