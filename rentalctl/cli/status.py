"""``rentalctl status [RUN_ID]``: recent runs, or one run state by state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from rentalctl.cli.output import AppState
from rentalctl.errors import ConfigError, error_words
from rentalctl.run_records import duration, steps


def status(
    ctx: typer.Context,
    run_id: Annotated[str | None, typer.Argument(help="A run's id; default: recent runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many recent runs.")] = 10,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Refresh the view until the run(s) end.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, max=600, help="Seconds between refreshes with --watch.")
    ] = 2.0,
) -> None:
    """Show recent runs, or one run state by state.

    For one run: each state with its status, duration and attempts, rows in and out per table,
    the data-quality summary and the error. With --watch, the view is refreshed until no run
    shown is RUNNING.
    """
    state: AppState = ctx.obj
    if watch:
        from rentalctl.cli.watch import watch_view

        if state.json:
            # One JSON document per command; a script polls `status -o json` instead.
            raise typer.BadParameter(
                "--watch is for a terminal; with --output json run `rentalctl -o json status` "
                "as often as needed, or follow a run with `rentalctl logs --follow RUN_ID`",
                param_hint="--watch",
            )
        watch_view(state, lambda: _view(state, run_id, limit), interval)
        return
    doc, render, _ = _view(state, run_id, limit)
    state.emit(doc, render)


def _view(
    state: AppState, run_id: str | None, limit: int
) -> tuple[Any, Callable[[Any], None], bool]:
    """The status document, its rendering, and whether a run shown is still RUNNING."""
    from rentalctl.context import Context
    from rentalctl.orchestration.targets import open_runner
    from rentalctl.pipeline.kpi_summary import kpi_snapshot
    from rentalctl.run_logs import run_record

    context = Context(state.settings())
    if context.state.known_empty():
        records: list[dict[str, Any]] = []  # nothing has run here yet
        if run_id:
            raise ConfigError(f"no run {run_id!r}: no run has been recorded here yet")
    elif run_id:
        record = run_record(context, run_id)  # an AWS run's brought up to date
        if record.get("status") == "RUNNING":  # its steps so far, from the lake
            tables = list(record.get("tables") or [])
            record = {**record, "steps": steps(context, run_id, tables)}
        record = {**record, "kpis": kpi_snapshot(context, run_id)}

        def render(console: Any) -> None:
            render_run(console, record)
            render_kpis(console, record["kpis"])

        return record, render, record.get("status") == "RUNNING"
    else:
        records = context.state.list_runs(limit)
    # Where it looked: "no runs" in another home or profile than meant is the usual surprise.
    where = open_runner(context).where
    running = any(r.get("status") == "RUNNING" for r in records)
    return (
        {"runs": records},
        lambda console: _render_list(console, records, where),
        running,
    )


def _total(record: dict[str, Any], field: str) -> int | None:
    values = [t.get(field) for t in (record.get("summary") or {}).values()]
    numbers = [v for v in values if isinstance(v, int)]
    return sum(numbers) if numbers else None


def _render_list(console: Any, records: list[dict[str, Any]], where: object) -> None:
    from rich.markup import escape
    from rich.table import Table

    if not records:
        console.print(f"No runs yet in {escape(str(where))}. Start one with `rentalctl run`.")
        return
    table = Table(
        "run", "mode", "status", "started", "seconds", "extracted", "curated", "rejected", box=None
    )
    for r in records:
        seconds = duration(r)
        table.add_row(
            r["run_id"],
            r.get("mode", ""),
            _status(r.get("status")),
            str(r.get("started_at", ""))[:19].replace("T", " "),
            "" if seconds is None else f"{seconds:.1f}",
            *(_fmt(_total(r, f)) for f in ("extracted", "curated", "rejected")),
        )
    console.print(table)


def _status(value: Any) -> str:
    colors = {"SUCCEEDED": "green", "FAILED": "red", "CANCELLED": "red", "RUNNING": "yellow"}
    color = colors.get(str(value), "")
    return f"[{color}]{value}[/]" if color else str(value)


def _fmt(value: Any) -> str:
    return "" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def render_kpis(console: Any, snapshot: dict[str, Any]) -> None:
    """The run's headline KPIs (its snapshot), one line each."""
    if not snapshot:
        return
    from rentalctl.pipeline.kpi_summary import lines

    console.print()
    for text in lines(snapshot):
        console.print(f"  {text}")


def render_run(console: Any, record: dict[str, Any], brief: bool = False) -> None:
    from rich.markup import escape
    from rich.table import Table

    seconds = duration(record)
    window = ""
    if record.get("mode") == "backfill":
        window = f" {record.get('since')} … {record.get('until') or 'now'}"
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    console.print(
        f"Run {record['run_id']} ({record.get('mode')}{window}): "
        f"{_status(record.get('status'))}{took}"
    )
    for n, attempt in enumerate(record.get("attempts") or [], start=1):
        error = attempt.get("error") or {}
        console.print(
            f"  attempt {n}: {_status(attempt.get('status'))} at {attempt.get('ended_at')}"
            f"{': ' + escape(error_words(error)) if error else ''} (resumed)"
        )
    if not brief and record.get("states"):
        states = Table("state", "status", "seconds", "attempts", "job run", "error", box=None)
        for s in record["states"]:
            states.add_row(
                escape(s["name"]),
                _status(s.get("status")),
                "" if s.get("seconds") is None else f"{s['seconds']:.1f}",
                _fmt(s.get("attempts") or None),
                str(s.get("job_run_id") or ""),
                # In words (the cause ends the page): "a step ran out of time".
                escape(error_words({"Error": s["error"]}) if s.get("error") else ""),
            )
        console.print(states)
    if not brief and record.get("steps"):
        done = [s["name"] for s in record["steps"] if s["done"]]
        to_do = [s["name"] for s in record["steps"] if not s["done"]]
        console.print(f"  steps done: {escape(', '.join(done) or 'none')}")
        if to_do:
            console.print(f"  steps not done: {escape(', '.join(to_do))}")
    summary = record.get("summary") or {}
    if summary:
        tables = Table(
            "table", "extracted", "curated", "rejected", "inserted", "updated", "orphans", box=None
        )
        for name, t in summary.items():
            tables.add_row(
                name,
                *(
                    _fmt(t.get(f))
                    for f in ("extracted", "curated", "rejected", "inserted", "updated", "orphans")
                ),
            )
        console.print(tables)
        quiet = {
            name: t["already_curated"] for name, t in summary.items() if t.get("already_curated")
        }
        if quiet:
            shown = ", ".join(f"{name} {n:,}" for name, n in quiet.items())
            console.print(f"  re-read rows already curated (not transformed again): {shown}")
        deleted = {name: t["deleted"] for name, t in summary.items() if t.get("deleted")}
        if deleted:
            shown = ", ".join(f"{name} {n:,}" for name, n in deleted.items())
            console.print(f"  deleted from curated (their keys left the source): {shown}")
        for name, t in summary.items():
            reasons = ", ".join(
                f"{k} {v:,}" for k, v in (t.get("rejected_by_reason") or {}).items()
            )
            if reasons:
                console.print(f"  rejected in {name}: {reasons}")
            for warning in t.get("warnings") or []:
                console.print(f"  [yellow]warning[/]: {escape(warning)}")
    error = record.get("error")
    if error and not brief:  # after a run, the one `error:` line ending the command says it
        console.print(f"[red]error[/]: {escape(error_words(error))}")
    # A failed run's raw rows are discarded because the next run loads them again (settle.py).
    discarded = {t: n for t, n in (record.get("raw_discarded") or {}).items() if n}
    if discarded:
        shown = ", ".join(f"{t} {n:,}" for t, n in discarded.items())
        console.print(f"  raw rows discarded (the next run loads them again): {shown}")
    if record.get("raw_to_discard"):
        console.print(
            "  raw rows still to discard (the next raw load does it): "
            + ", ".join(record["raw_to_discard"])
        )
