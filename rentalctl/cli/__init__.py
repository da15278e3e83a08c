"""The ``rentalctl`` command line: global options, the command registry and the one place where
errors become messages and exit codes.

Start-up stays fast: this module imports only Typer; each command imports what it needs when it
runs (never pyspark, boto3 or duckdb just to print help).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from enum import StrEnum
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from rentalctl import __version__
from rentalctl.cli.output import AppState, to_json
from rentalctl.errors import ExitCode, RentalctlError


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


class _Group(TyperGroup):
    """Accepts the global options after the command name too, and maps every error raised by a
    command to one line on stderr and a documented exit code."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if ctx.parent is None:  # only the root group has the global options
            args = hoist_global_options(self, ctx, args)
        return super().parse_args(ctx, args)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            _plain_flags(command, ctx)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _plain_flags(self, ctx)
        super().format_help(ctx, formatter)

    def invoke(self, ctx: Any) -> Any:  # a click Context (Typer's vendored click)
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except typer.TyperException as exc:
            # Usage errors found after parsing (a bad --set, conflicting options): in JSON mode
            # they too must be one JSON document on stdout.
            state = ctx.obj if isinstance(ctx.obj, AppState) else None
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            if state is not None and state.json and getattr(exc, "exit_code", 0) == 2:
                _report(ctx, "usage_error", message, ExitCode.USAGE)
            raise
        except RentalctlError as exc:
            _report(ctx, exc.kind, str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _report(ctx, "interrupted", "interrupted", 130)
        except BrokenPipeError:
            # The reader went away (`rentalctl logs RUN_ID | head`): stop quietly with status 1,
            # as click and rich already do for what they print; stdout goes to /dev/null so
            # that Python's final flush does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(1) from None
        except Exception as exc:
            message = f"internal error: {type(exc).__name__}: {exc}"
            _report(ctx, "internal_error", message, ExitCode.PIPELINE_FAILED, hint=True)


def _plain_flags(command: Any, ctx: Any) -> None:
    """Help shows a flag as ``--verbose``, not ``--verbose <bool>``: Typer's help prints a
    flag's type unless the flag has a metavar, and an empty one prints nothing."""
    for param in command.get_params(ctx):
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _plain_flags(sub, ctx)


def _option_names(command: Any) -> tuple[set[str], set[str]]:
    """The option names a command (or any command below a group) declares: (all, taking a value)."""
    names: set[str] = set()
    valued: set[str] = set()
    for param in getattr(command, "params", []):
        if getattr(param, "param_type_name", "") != "option":
            continue
        opts = set(param.opts) | set(param.secondary_opts)
        names |= opts
        if not param.is_flag and not param.count:
            valued |= opts
    for sub in getattr(command, "commands", {}).values():
        more, more_valued = _option_names(sub)
        names |= more
        valued |= more_valued
    return names, valued


def hoist_global_options(group: Any, ctx: Any, args: list[str]) -> list[str]:
    """Move the global options written after the command name (``rentalctl status -o json``) in
    front of it, where click parses them. An option the command itself declares (``kpis -o csv``)
    stays with the command; nothing after ``--`` moves."""
    glob, glob_valued = _option_names(group)
    glob -= {"--help", "-h"}
    # The command name: the first argument that is neither a global option nor its value.
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] != "--":
        name = args[i].split("=", 1)[0]
        i += 2 if name in glob_valued and "=" not in args[i] else 1
    if i >= len(args) or args[i] == "--" or group.get_command(ctx, args[i]) is None:
        return args
    own, own_valued = _option_names(group.get_command(ctx, args[i]))
    front, rest = list(args[: i + 1]), []
    j = i + 1
    while j < len(args):
        token = args[j]
        if token == "--":
            rest += args[j:]
            break
        name = token.split("=", 1)[0]
        if name in own or not token.startswith("-"):
            rest.append(token)
            if name in own_valued and "=" not in token and j + 1 < len(args):
                rest.append(args[j + 1])
                j += 1
        elif name in glob:
            takes = name in glob_valued and "=" not in token and j + 1 < len(args)
            front[i:i] = args[j : j + 2] if takes else [token]
            i += 2 if takes else 1
            j += 1 if takes else 0
        else:
            rest.append(token)
        j += 1
    return front + rest


def _report(ctx: Any, kind: str, message: str, code: int, hint: bool = False) -> None:
    state = ctx.obj if isinstance(ctx.obj, AppState) else AppState()
    if state.verbose:
        traceback.print_exc(file=sys.stderr)
    elif hint:
        message += " (run with --verbose for the traceback)"
    if state.json:
        sys.stdout.write(
            to_json({"error": {"kind": kind, "message": message, "exit_code": int(code)}}) + "\n"
        )
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    raise typer.Exit(int(code))


app = typer.Typer(
    cls=_Group,
    name="rentalctl",
    help="Build, ship and operate the rental-marketplace analytics pipeline, on AWS or locally.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",  # paragraphs re-flowed to the terminal's width
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rentalctl {__version__}")
        raise typer.Exit()


def _overrides(values: list[str] | None) -> dict[str, str]:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            from rentalctl.urls import mask

            # Masked: a mistyped `--set source.url:mysql://USER:PASSWORD@…` holds a password.
            raise typer.BadParameter(f"expected KEY=VALUE, got {mask(item)!r}", param_hint="--set")
        out[key.strip()] = value
    return out


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option(
            "--config", "-c", help="Config file (default: the profile's file).", show_default=False
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            "-p",
            help="Profile: config/NAME.yaml here, else the shipped one (default: local).",
            show_default=False,
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Override one setting, e.g. --set extract.batch_size=5000 (repeatable; "
            "wins over the file and the environment).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--output", "-o", help="Result format.")
    ] = OutputFormat.text,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logging and tracebacks on errors.")
    ] = False,
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print the version."
        ),
    ] = None,
) -> None:
    """Configuration comes from the profile's YAML file, then RENTALCTL_* environment
    variables, then --set flags. Exit codes: 0 ok, 1 pipeline failed, 2 usage or
    configuration error, 3 resource unreachable, 4 another run holds the lock, 130/143 the run was
    cancelled by Ctrl-C/SIGTERM."""
    ctx.obj = AppState(config, profile, {}, output.value, verbose)
    ctx.obj.overrides = _overrides(set_)  # after ctx.obj exists, so errors honour --output
    _configure_logging(verbose)


def _configure_logging(verbose: bool) -> None:
    """Warnings and errors from everything; with --verbose, rentalctl's own debug lines too.

    Libraries stay at WARNING even with --verbose: at DEBUG, botocore logs every response body
    (a Secrets Manager GetSecretValue answer is the password) and py4j the auth token of the
    Spark gateway, and a verbose log ends up in terminals, cron logs and bug reports.
    """
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Without --verbose, rentalctl's loggers inherit the root's WARNING.
    logging.getLogger("rentalctl").setLevel(logging.DEBUG if verbose else logging.NOTSET)
    # sqlglot warns about each SQL translation the DuckDB engine makes (REGEXP_REPLACE…): words
    # for the developer, not for the operator; --verbose shows them.
    logging.getLogger("sqlglot").setLevel(logging.WARNING if verbose else logging.ERROR)


def _register() -> None:
    from rentalctl.cli import (
        aws_commands,
        bookmark_commands,
        bookmarks,
        cancel,
        demo,
        deploy,
        doctor,
        kpis,
        logs,
        report,
        run,
        status,
    )
    from rentalctl.cli.examples import examples

    app.command("demo-data", epilog=examples("demo-data"))(demo.demo_data)
    app.command("seed-bookmarks", epilog=examples("seed-bookmarks"))(bookmarks.seed_bookmarks)
    app.add_typer(bookmark_commands.app, name="bookmarks")
    app.command("run", epilog=examples("run"))(run.run)
    app.command("status", epilog=examples("status"))(status.status)
    app.command("backfill", epilog=examples("backfill"))(run.backfill)
    app.command("cancel", epilog=examples("cancel"))(cancel.cancel)
    app.command("kpis", epilog=examples("kpis"))(kpis.kpis)
    app.command("report", epilog=examples("report"))(report.report)
    app.command("upload-scripts", epilog=examples("upload-scripts"))(deploy.upload_scripts)
    app.command("deploy-sfn", epilog=examples("deploy-sfn"))(aws_commands.deploy_sfn)
    app.command("iam-policy", epilog=examples("iam-policy"))(aws_commands.iam_policy)
    app.command("doctor", epilog=examples("doctor"))(doctor.doctor)
    app.command("logs", epilog=examples("logs"))(logs.logs)


_register()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="rentalctl")
