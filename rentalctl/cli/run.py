"""``rentalctl run`` and ``rentalctl backfill``: start a run, follow it, exit with its outcome."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rentalctl.cli.output import AppState
from rentalctl.errors import (
    Cancelled,
    ConfigError,
    InvalidSetting,
    RentalctlError,
    error_words,
    failure_kind,
)
from rentalctl.run.ids import check_run_id, new_run_id

if TYPE_CHECKING:
    from rentalctl.orchestration.runner import Ended, Launch, Runner

TablesOption = Annotated[
    str | None,
    typer.Option(
        "--tables",
        metavar="T,…",
        help="Only these source tables (comma-separated; default: the configured ones).",
    ),
]
NoWaitOption = Annotated[
    bool, typer.Option("--no-wait", help="Start the run and return its id at once.")
]
DryRunOption = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Show each table's window and rows and an estimate; write nothing."
    ),
]
RunIdOption = Annotated[
    str | None, typer.Option("--run-id", hidden=True, help="Use this run id (internal).")
]


def run(
    ctx: typer.Context,
    tables: TablesOption = None,
    no_wait: NoWaitOption = False,
    run_id: RunIdOption = None,
    dry_run: DryRunOption = False,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="RUN_ID",
            help="Continue a failed run from where it failed: the same run id, tables and "
            "windows; the steps it completed are not done again. Only the latest run.",
        ),
    ] = None,
) -> None:
    """Run the pipeline once, and follow it to the end.

    Extracts what changed since each table's bookmark, loads it, cleans it, merges it into the
    curated layer, rebuilds the KPIs, moves the bookmarks and archives the raw files. Exits 0
    when the run succeeds, 1 when it fails, 3 when a resource stays unreachable through the
    retries, 4 when another run holds the lock.
    """
    if resume is not None:
        if tables or run_id or dry_run:
            raise typer.BadParameter(
                "--resume continues a run as it was: no --tables, --run-id or --dry-run",
                param_hint="--resume",
            )
        _resume(ctx, resume, no_wait)
        return
    if dry_run:
        from rentalctl.cli.dry_run import show_plan

        show_plan(ctx.obj, _tables(ctx.obj.settings(), tables))
        return
    _start(ctx, "incremental", None, None, tables, no_wait, run_id)


def backfill(
    ctx: typer.Context,
    since: Annotated[
        str,
        typer.Option(
            "--since",
            metavar="DATE",
            help="Re-read rows whose watermark (viewed_at for user_viewing) is on or "
            "after DATE (YYYY-MM-DD[ HH:MM:SS]).",
        ),
    ],
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="DATE",
            help="… and on or before DATE (a date alone: that whole day).",
        ),
    ] = None,
    tables: TablesOption = None,
    no_wait: NoWaitOption = False,
    run_id: RunIdOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Re-read a past window through the pipeline, without moving any bookmark.

    Rows are selected by their watermark (viewed_at for user_viewing) in [--since, --until].
    Merges are idempotent: rows already curated stay as they are.
    """
    from rentalctl.pipeline.extract import backfill_window

    backfill_window(since, until)  # refuse a bad window before anything starts
    if dry_run:
        from rentalctl.cli.dry_run import show_plan

        show_plan(ctx.obj, _tables(ctx.obj.settings(), tables), since, until)
        return
    _start(ctx, "backfill", since, until, tables, no_wait, run_id)


def _resume(ctx: typer.Context, run_id: str, no_wait: bool) -> None:
    from rentalctl.context import Context
    from rentalctl.orchestration.runner import resumed_launch

    state: AppState = ctx.obj
    context = Context(state.settings())
    launch = resumed_launch(context, run_id)
    runner = _runner(state, context)
    if no_wait and not runner.resumes_in_background:
        raise typer.BadParameter("a local --resume runs in this process", param_hint="--no-wait")
    _launch(state, context, runner, launch, no_wait)


def _tables(settings: Any, option: str | None) -> list[str]:
    from rentalctl.tables import TABLES, table

    if not option:
        return list(settings.tables)
    try:
        wanted = {table(name.strip()).name for name in option.split(",") if name.strip()}
    except ConfigError:
        raise InvalidSetting("--tables", option, f"table names among {', '.join(TABLES)}") from None
    return [t for t in TABLES if t in wanted]


def _start(
    ctx: typer.Context,
    mode: str,
    since: str | None,
    until: str | None,
    tables_option: str | None,
    no_wait: bool,
    run_id: str | None,
) -> None:
    state: AppState = ctx.obj
    if run_id is not None:
        check_run_id(run_id)
    settings = state.settings()
    tables = _tables(settings, tables_option)
    from rentalctl.context import Context
    from rentalctl.orchestration.runner import Launch

    context = Context(settings)
    run_id = run_id or new_run_id()
    launch = Launch(run_id, mode, since, until, tables)
    _launch(state, context, _runner(state, context), launch, no_wait)


def _runner(state: AppState, context: Any) -> Runner:
    from rentalctl.orchestration.targets import open_runner

    # The JVM's chatter would break the live table; --verbose shows it.
    return open_runner(context, options=state.argv(), jvm_log=not state.verbose)


def _launch(state: AppState, context: Any, runner: Runner, launch: Launch, no_wait: bool) -> None:
    """Start the run and return with its id, or follow it to its end and report it."""
    if no_wait:
        started = runner.start(launch)
        state.emit(started.doc, lambda console: console.print(started.words))
        return
    ended = _follow(state, launch, lambda progress=None: runner.run(launch, progress))
    _report(state, context, ended)


def _follow(state: AppState, launch: Launch, execute: Callable[..., Ended]) -> Ended:
    """Run ``execute(progress=…)`` with the view that suits where the output goes: nothing in
    JSON mode, a live table on a terminal, one line per state change otherwise."""
    started = time.monotonic()
    if state.json:
        return execute()
    console = state.stderr()
    # The header comes with the first state: a run refused for the lock never started.
    header = f"Run {launch.run_id} ({launch.mode}) of {', '.join(launch.tables)}"
    if not console.is_terminal:
        shown: list[str] = []

        def line(name: str, what: str, _: dict[str, Any]) -> None:
            if not shown:
                console.print(header)
                shown.append(header)
            sys.stderr.write(f"{time.monotonic() - started:7.1f}s  {name} {what}\n")
            sys.stderr.flush()

        return execute(progress=line)
    from rich.live import Live

    live = Live(_progress_table({}), console=console, refresh_per_second=4)

    def update(name: str, what: str, states: dict[str, Any]) -> None:
        if not live.is_started:
            console.print(header)
            live.start()
        live.update(_progress_table(states))

    try:
        return execute(progress=update)
    finally:
        live.stop()


def _progress_table(states: dict[str, Any]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table("state", "status", "seconds", "attempts", box=None)
    style = {"RUNNING": "yellow", "SUCCEEDED": "green", "FAILED": "red"}
    for name, s in states.items():
        status = s["status"]
        table.add_row(
            escape(name),
            f"[{style.get(status, '')}]{status.lower()}[/]",
            "" if s["seconds"] is None else f"{s['seconds']:.1f}",
            str(s["attempts"] or ""),
        )
    return table


def _report(state: AppState, context: Any, ended: Ended) -> None:
    from rentalctl.cli.status import render_kpis, render_run
    from rentalctl.pipeline.kpi_summary import kpi_snapshot

    record, signum = ended.record, ended.signum
    # Read from the lake, where the presentation job left it: no warehouse connection needed.
    snapshot = (
        kpi_snapshot(context, record["run_id"]) if record.get("status") == "SUCCEEDED" else {}
    )

    def render(console: Any) -> None:
        render_run(console, record, brief=True)
        render_kpis(console, snapshot)

    error = record.get("error") or {}
    if record.get("status") == "CANCELLED":
        # One line, no run table: the operator asked for it. Exit 128 + the signal received
        # (SIGTERM's when the run was cancelled from elsewhere).
        failure: RentalctlError = Cancelled(
            f"run {record['run_id']} {error.get('Cause') or 'cancelled'}: settled as a failed "
            "run (the next run reads its rows again)",
            128 + (signum or signal.SIGTERM),
        )
        if state.json:
            state.emit(record, lambda console: None)
    else:
        state.emit({**record, "kpis": snapshot}, render)
        if record.get("status") == "SUCCEEDED":
            return
        message = f"run {record['run_id']} failed: {error_words(error)}"
        # A run its Begin refused (another run started in the same instant) exits as refused,
        # one whose database or lake stayed unreachable through the retries as unreachable.
        failure = failure_kind(error)(message)
    if state.json:  # the record above is the one JSON document; the error goes to stderr
        sys.stderr.write(f"error: {failure}\n")
        raise typer.Exit(int(failure.exit_code))
    raise failure
