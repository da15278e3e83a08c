"""``rentalctl run`` and ``rentalctl backfill``: start a run, follow it, exit with its outcome."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

import typer

from rentalctl.cli.output import AppState
from rentalctl.errors import (
    Cancelled,
    ConfigError,
    InvalidSetting,
    RentalctlError,
    StoppedFollowing,
    error_words,
    failure_kind,
)
from rentalctl.preflight import before_run
from rentalctl.run.ids import check_run_id, new_run_id

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
    from rentalctl.orchestration.resume import check_resumable

    state: AppState = ctx.obj
    context = Context(state.settings())
    record = check_resumable(context, run_id)
    mode, since, until = (
        record.get("mode") or "incremental",
        record.get("since"),
        record.get("until"),
    )
    tables = list(record.get("tables") or [])
    if state.settings().target == "aws":
        attempt = len(record.get("attempts") or []) + 1
        _start_aws(
            state,
            context,
            run_id,
            mode,
            since,
            until,
            tables,
            no_wait,
            f"{run_id}.resume-{attempt}",
        )
        return
    if no_wait:
        raise typer.BadParameter("a local --resume runs in this process", param_hint="--no-wait")
    from rentalctl.orchestration.resume import reopen
    from rentalctl.run.lock import PipelineLock

    before_run(context, tables)
    # The lock is taken before the record is reopened, so no other run sees it half-done; the
    # run below takes the same lock again (same run id) and releases it at its end.
    with PipelineLock(context.state, run_id):
        reopen(context, run_id)
        _run_here(state, context, run_id, mode, since, until, tables)


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

    context = Context(settings)
    run_id = run_id or new_run_id()
    if settings.target == "aws":
        _start_aws(state, context, run_id, mode, since, until, tables, no_wait)
        return
    before_run(context, tables)
    if no_wait:
        _detach(state, context, mode, since, until, tables, run_id)
        return
    _run_here(state, context, run_id, mode, since, until, tables)


def run_log(context: Any, run_id: str) -> Any:
    """The run's log file under the home: a detached run's output, and the JVM's."""
    return context.settings.home / "logs" / f"{run_id}.log"


def _run_here(
    state: AppState,
    context: Any,
    run_id: str,
    mode: str,
    since: str | None,
    until: str | None,
    tables: list[str],
) -> None:
    """Run the pipeline in this process and report it; Ctrl-C or SIGTERM cancels the run."""
    from rentalctl import spark
    from rentalctl.cli.interrupts import run_stoppable
    from rentalctl.orchestration.cancel import StopRequest
    from rentalctl.orchestration.local import run_local

    if not state.verbose:  # the JVM's chatter would break the live table; --verbose shows it
        spark.send_jvm_output_to(run_log(context, run_id))
    stop = StopRequest()
    execute = partial(
        run_local,
        context,
        run_id=run_id,
        mode=mode,
        since=since,
        until=until,
        tables=tables,
        stop=stop,
    )
    record = _follow(
        state, run_id, mode, tables, lambda **kw: run_stoppable(partial(execute, **kw), stop)
    )
    _report(state, context, record, stop.signum)


def _start_aws(
    state: AppState,
    context: Any,
    run_id: str,
    mode: str,
    since: str | None,
    until: str | None,
    tables: list[str],
    no_wait: bool,
    resumed_as: str | None = None,
) -> None:
    """A Step Functions execution named after the run (a resumed run's: ``resumed_as``);
    followed through its history."""
    from rentalctl.orchestration import aws_run
    from rentalctl.orchestration.resume import reopen

    context.state.ensure()
    context.state.seed(tables)
    arn = aws_run.start(
        context,
        run_id=run_id,
        mode=mode,
        since=since,
        until=until,
        tables=tables,
        name=resumed_as,
        before=(lambda new_arn: reopen(context, run_id, new_arn)) if resumed_as else None,
    )
    if no_wait:
        doc = {
            "run_id": run_id,
            "status": "STARTED",
            "mode": mode,
            "tables": tables,
            "execution_arn": arn,
        }
        state.emit(
            doc,
            lambda console: console.print(
                f"Started run {run_id} ({arn}); follow it with `rentalctl status {run_id}`"
            ),
        )
        return
    try:
        result = _follow(state, run_id, mode, tables, partial(aws_run.follow, context, arn, tables))
    except KeyboardInterrupt:
        # Only this process stops: the execution is AWS's, and stopping it is a decision of its
        # own (`cancel`), not a side effect of leaving the terminal.
        raise StoppedFollowing(
            f"stopped following run {run_id}; its execution goes on in AWS: "
            f"`rentalctl cancel {run_id}` stops it, `rentalctl status {run_id} --watch` follows it"
        ) from None
    _report(state, context, result)


def _follow(
    state: AppState,
    run_id: str,
    mode: str,
    tables: list[str],
    execute: Callable[..., dict[str, Any]],
) -> dict[str, Any]:
    """Run ``execute(progress=…)`` with the view that suits where the output goes: nothing in
    JSON mode, a live table on a terminal, one line per state change otherwise."""
    started = time.monotonic()
    if state.json:
        return execute()
    console = state.stderr()
    # The header comes with the first state: a run refused for the lock never started.
    header = f"Run {run_id} ({mode}) of {', '.join(tables)}"
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


def _report(
    state: AppState, context: Any, record: dict[str, Any], signum: int | None = None
) -> None:
    from rentalctl.cli.status import render_kpis, render_run
    from rentalctl.pipeline.kpi_summary import kpi_snapshot

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


def _detach(
    state: AppState,
    context: Any,
    mode: str,
    since: str | None,
    until: str | None,
    tables: list[str],
    run_id: str,
) -> None:
    """Start the run in a process of its own and return at once with its id."""
    from rentalctl.pipeline.begin import abandon
    from rentalctl.run.lock import describe_self, is_stale

    # Fail now, not in the background, when another run holds the lock; and keep holding it
    # until the background process takes it over (under the same run id), so that no other run
    # can start in between.
    recovered = context.state.acquire_lock(describe_self(run_id), is_stale)
    if recovered:
        abandon(context, recovered.get("run_id"), run_id)
    log_path = run_log(context, run_id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "rentalctl",
        *state.argv(),
        # Text: into a file, a run prints one line per state change and then its summary, so
        # the log shows the run's progress, not only its outcome.
        "--output",
        "text",
        "backfill" if mode == "backfill" else "run",
        "--run-id",
        run_id,
        "--tables",
        ",".join(tables),
    ]
    if mode == "backfill":
        argv += ["--since", str(since)] + (["--until", until] if until else [])
    try:
        with open(log_path, "ab") as out:
            child = subprocess.Popen(
                argv,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=os.environ.copy(),
            )
    except BaseException:
        context.state.release_lock(run_id)
        raise
    # Until the child takes the lock over, the lock names the child: alive while it runs.
    context.state.acquire_lock(
        describe_self(run_id, child.pid), lambda holder: holder.get("run_id") == run_id
    )
    doc = {
        "run_id": run_id,
        "status": "STARTED",
        "mode": mode,
        "tables": tables,
        "log": str(log_path),
    }
    state.emit(
        doc,
        lambda console: console.print(
            f"Started run {run_id} in the background; follow it with `rentalctl status {run_id}` "
            f"(log: {log_path})"
        ),
    )
