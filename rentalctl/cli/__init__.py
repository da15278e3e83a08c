"""The ``rentalctl`` command line: global options, the command registry and the one place where
errors become messages and exit codes.

Start-up stays fast: this module imports only Typer; each command imports what it needs when it
runs (never pyspark, boto3 or duckdb just to print help).
"""

from __future__ import annotations

import logging
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
    """Maps every error raised by a command to one line on stderr and a documented exit code."""

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
        except Exception as exc:
            message = f"internal error: {type(exc).__name__}: {exc}"
            _report(ctx, "internal_error", message, ExitCode.PIPELINE_FAILED, hint=True)


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
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
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


def _register() -> None:
    from rentalctl.cli import (
        aws_commands,
        bookmark_commands,
        bookmarks,
        cancel,
        demo,
        deploy,
        kpis,
        report,
        run,
        status,
    )

    app.command("demo-data")(demo.demo_data)
    app.command("seed-bookmarks")(bookmarks.seed_bookmarks)
    app.add_typer(bookmark_commands.app, name="bookmarks")
    app.command("run")(run.run)
    app.command("status")(status.status)
    app.command("backfill")(run.backfill)
    app.command("cancel")(cancel.cancel)
    app.command("kpis")(kpis.kpis)
    app.command("report")(report.report)
    app.command("upload-scripts")(deploy.upload_scripts)
    app.command("deploy-sfn")(aws_commands.deploy_sfn)
    app.command("iam-policy")(aws_commands.iam_policy)


_register()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="rentalctl")
