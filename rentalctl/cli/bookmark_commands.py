"""``rentalctl bookmarks``: show the bookmarks and their history; set or rewind one.

A change takes the pipeline lock for its duration, like a run, so no run can start halfway and
commit over it (or be overwritten by it); a run already going makes it exit 4. The value is read
again under the lock and written conditionally on it, with its history entry in the same write
(``StateStore.set_bookmark``). A value ahead of the source's high mark is refused: the next run
would then skip the rows between, silently.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

import typer

from rentalctl.cli.examples import examples
from rentalctl.cli.output import AppState
from rentalctl.errors import ConfigError

app = typer.Typer(
    help="Inspect, set and rewind the bookmarks, with the history of every change.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)

DryRunOption = Annotated[
    bool,
    typer.Option("--dry-run", help="Show the change and the rows the next run would read."),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _shown(value: Any) -> str:
    return "(none: full extract)" if value is None else str(value)


@app.command("show", epilog=examples("bookmarks show"))
def show(ctx: typer.Context) -> None:
    """Every table's bookmark, when it last moved and by which run or command."""
    state: AppState = ctx.obj
    from rentalctl.context import Context

    with Context(state.settings()).state as store:
        marks = store.bookmarks()
        last = {c.table: c for c in store.history()}  # oldest first: the last one wins
    entries: dict[str, dict[str, Any]] = {}
    doc = {"store": store.name, "bookmarks": entries}
    for name, b in sorted(marks.items()):
        change = last.get(name)
        entries[name] = {
            "value": b.value,
            "updated_at": b.updated_at,
            "run_id": b.run_id,
            "by": None if change is None else (change.run_id or change.command),
        }

    def render(console: Any) -> None:
        from rich.table import Table

        out = Table("table", "bookmark", "updated at", "by", box=None)
        for name, entry in entries.items():
            out.add_row(name, _shown(entry["value"]), entry["updated_at"] or "", entry["by"] or "")
        console.print(out)

    state.emit(doc, render)


@app.command("history", epilog=examples("bookmarks history"))
def history(
    ctx: typer.Context,
    table_name: Annotated[str | None, typer.Argument(metavar="[TABLE]")] = None,
) -> None:
    """Every change of the bookmarks (of TABLE only), oldest first.

    Each with its old and new value, the run or the command, host, user and time.
    """
    state: AppState = ctx.obj
    from rentalctl.context import Context
    from rentalctl.tables import table

    name = table(table_name).name if table_name else None
    with Context(state.settings()).state as store:
        changes = store.history(name)
    doc = {
        "store": store.name,
        "changes": [
            {"table": c.table, "old": c.old, "new": c.new, "at": c.at, "run_id": c.run_id,
             "command": c.command, "host": c.host, "user": c.user}
            for c in changes
        ],
    }  # fmt: skip

    def render(console: Any) -> None:
        from rich.markup import escape
        from rich.table import Table

        if not changes:
            console.print("No bookmark has changed yet.")
            return
        out = Table("at", "table", "old", "new", "by", "host", "user", box=None)
        for c in changes:
            by = c.run_id or escape(c.command or "")
            out.add_row(c.at, c.table, _shown(c.old), _shown(c.new), by, c.host, c.user)
        console.print(out)

    state.emit(doc, render)


@app.command("set", epilog=examples("bookmarks set"))
def set_(
    ctx: typer.Context,
    table_name: Annotated[str, typer.Argument(metavar="TABLE")],
    value: Annotated[str, typer.Argument(help="A timestamp, or an id for user_viewing.")],
    dry_run: DryRunOption = False,
    yes: YesOption = False,
) -> None:
    """Set TABLE's bookmark to VALUE: the next run reads from VALUE minus the lookback.

    Refused while a run holds the lock (exit 4) and for a value ahead of the source's high mark.
    """
    from rentalctl.tables import table

    spec = table(table_name)
    new = _watermark(spec, value, "VALUE")
    _change(ctx, spec.name, lambda _: new, f"bookmarks set {spec.name} {value}", dry_run, yes)


@app.command("rewind", epilog=examples("bookmarks rewind"))
def rewind(
    ctx: typer.Context,
    table_name: Annotated[str, typer.Argument(metavar="TABLE")],
    by: Annotated[
        str | None,
        typer.Option("--by", help="How far back: 30m, 2h, 1d (user_viewing: a number of ids)."),
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", metavar="TIMESTAMP", help="Back to this value.")
    ] = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
) -> None:
    """Move TABLE's bookmark back, so the next run reads those rows again.

    Refused while a run holds the lock (exit 4). Rows read again are merged idempotently.
    """
    from rentalctl.tables import Kind, table

    spec = table(table_name)
    if (by is None) == (to is None):
        raise ConfigError("rewind needs exactly one of --by and --to")
    ids = spec.watermark_kind is Kind.INTEGER
    if by is not None:
        step = _DURATION.fullmatch(by.strip()) if not ids else None
        if not (by.strip().isdigit() if ids else step):
            expected = "a number of ids" if ids else "a number and a unit: 30m, 2h, 1d"
            raise ConfigError(f"--by {by!r}: expected {expected}")

    def target(current: Any) -> Any:
        if current is None:
            raise ConfigError(f"{spec.name} has no bookmark: its next run reads everything")
        if to is not None:
            new = _watermark(spec, to, "--to")
        elif ids:
            new = max(int(current) - int(str(by)), 0)
        else:
            amount, unit = _DURATION.fullmatch(str(by).strip()).groups()  # type: ignore[union-attr]
            moment = datetime.fromisoformat(current) - timedelta(**{_UNIT[unit]: int(amount)})
            new = _watermark(spec, moment.isoformat(sep=" "), "--by")
        if new > current:
            raise ConfigError(
                f"--to {to} is after {spec.name}'s bookmark {current}: a rewind moves back "
                "(use `rentalctl bookmarks set` to move it forward)"
            )
        return new

    how = f"--by {by}" if by is not None else f"--to {to}"
    _change(ctx, spec.name, target, f"bookmarks rewind {spec.name} {how}", dry_run, yes)


def _watermark(spec: Any, text: str, where: str) -> Any:
    from rentalctl.pipeline.extract import watermark_value
    from rentalctl.tables import Kind

    try:
        return watermark_value(spec, text)
    except ValueError as exc:
        ids = spec.watermark_kind is Kind.INTEGER
        what = "an integer id" if ids else "a timestamp YYYY-MM-DD[ HH:MM:SS]"
        raise ConfigError(f"{where} {text!r} for {spec.name}: expected {what} ({exc})") from None


def _change(
    ctx: typer.Context, name: str, target: Any, command: str, dry_run: bool, yes: bool
) -> None:
    """Compute the new value from the current one, check it against the source, show what the
    next run would read, and (unless a dry run) confirm and write it under the pipeline lock."""
    state: AppState = ctx.obj
    if not dry_run and not yes and not state.can_ask():
        raise ConfigError("changing a bookmark needs confirmation: add --yes in scripts")
    from rentalctl.context import Context

    context = Context(state.settings())
    with context.state as store:
        doc = _apply(context, store, name, target, command, dry_run, yes)
    render_change(state, doc)


def _apply(
    context: Any, store: Any, name: str, target: Any, command: str, dry_run: bool, yes: bool
) -> dict[str, Any]:
    from rentalctl.errors import LockHeld
    from rentalctl.pipeline.begin import holder_is_stale
    from rentalctl.pipeline.plan import plan_table
    from rentalctl.run.ids import new_run_id
    from rentalctl.run_lock import PipelineLock

    marks = store.bookmarks()
    if name not in marks:
        raise ConfigError(f"{name} has no bookmark entry yet: run `rentalctl seed-bookmarks`")
    current = marks[name].value
    new = target(current)
    now, after = plan_table(context, name, current), plan_table(context, name, new)
    if after.high is None or new > after.high:
        raise ConfigError(
            f"{new} is ahead of {name}'s highest value in the source ({after.high}): the next "
            "run would skip the rows in between. Nothing changed"
        )
    doc = {
        "table": name,
        "before": current,
        "after": new,
        "high": after.high,
        "window": {"lower": after.lower, "upper": after.high},
        "rows_next_run": after.rows,
        "rows_next_run_unchanged": now.rows,
        "dry_run": dry_run,
        "changed": False,
    }
    if not dry_run and not yes:
        question = (
            f"Set the bookmark of {name} from {_shown(current)} to {new}? Its next run reads "
            f"{after.rows} rows (now {now.rows})"
        )
        if not typer.confirm(question, err=True):
            raise ConfigError("not confirmed: no bookmark changed")
    if not dry_run:
        holder = f"bookmarks-{new_run_id()}"
        try:
            with PipelineLock(store, holder, holder_is_stale(context)):
                store.set_bookmark(name, current, new, command)
        except LockHeld as exc:
            raise LockHeld(f"{exc}; no bookmark changed, try again when it ends") from None
        doc["changed"] = True
    return doc


def render_change(state: AppState, doc: dict[str, Any]) -> None:
    def render(console: Any) -> None:
        verb = "Would set" if doc["dry_run"] else "Set"
        console.print(
            f"{verb} the bookmark of {doc['table']}: {_shown(doc['before'])} -> {doc['after']}"
        )
        window = f"({doc['window']['lower']}, {doc['window']['upper']}]"
        console.print(
            f"The next run reads {doc['rows_next_run']} rows of {doc['table']} ({window}); "
            f"without the change it would read {doc['rows_next_run_unchanged']}"
        )

    state.emit(doc, render)
