"""``rentalctl seed-bookmarks``: create the bookmark store and its entries; reset on request."""

from __future__ import annotations

from typing import Annotated

import typer

from rentalctl.cli.output import AppState
from rentalctl.errors import ConfigError


def seed_bookmarks(
    ctx: typer.Context,
    reset: Annotated[
        list[str] | None,
        typer.Option(
            "--reset",
            metavar="TABLE",
            help="Set TABLE's bookmark back to empty: its next extract reads the whole "
            "table again (repeatable).",
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask for confirmation of --reset.")
    ] = False,
) -> None:
    """Create the bookmark store and an entry for every configured table.

    Adds an entry only for a table that has none; existing bookmarks are never changed, except
    by an explicit --reset.
    """
    state: AppState = ctx.obj
    settings = state.settings()
    from rentalctl.context import Context
    from rentalctl.tables import table

    to_reset = [table(name).name for name in dict.fromkeys(reset or [])]
    interactive = state.can_ask()
    if to_reset and not yes and not interactive:
        # Refused before anything is created: a failed command leaves no trace.
        raise ConfigError("--reset needs confirmation: add --yes to confirm in scripts")
    with Context(settings).state as store:
        created = store.ensure()
        added = store.seed(settings.tables)
        current = store.bookmarks()
        if to_reset and not yes:
            shown = ", ".join(
                f"{t} (now {current[t].value if t in current else None})" for t in to_reset
            )
            if not typer.confirm(
                f"Reset the bookmarks of {shown}? Their next runs re-extract the whole tables",
                err=True,
            ):
                raise ConfigError("reset not confirmed: no bookmark changed")
        for name in to_reset:
            store.reset(name, f"seed-bookmarks --reset {name}")
        bookmarks = store.bookmarks()
    doc = {
        "store": store.name,
        "created": created,
        "added": added,
        "reset": to_reset,
        "bookmarks": {
            name: {"value": b.value, "updated_at": b.updated_at, "run_id": b.run_id}
            for name, b in sorted(bookmarks.items())
        },
    }

    def render(console) -> None:
        from rich.table import Table

        verb = "Created" if created else "Using"
        console.print(f"{verb} bookmark store {store.name}")
        if added:
            console.print(f"Added entries for: {', '.join(added)}")
        if to_reset:
            console.print(f"Reset: {', '.join(to_reset)}")
        out = Table("table", "bookmark", "updated at", "by run", box=None)
        for name, b in sorted(bookmarks.items()):
            value = "(none: next extract is full)" if b.value is None else str(b.value)
            out.add_row(name, value, b.updated_at or "", b.run_id or "")
        console.print(out)

    state.emit(doc, render)
