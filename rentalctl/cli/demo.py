"""``rentalctl demo-data``: fill the configured source with synthetic marketplace data."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rentalctl.cli.output import AppState
from rentalctl.errors import ConfigError, LockHeld


def demo_data(
    ctx: typer.Context,
    scale: Annotated[
        float,
        typer.Option(
            min=0.0001,
            max=10.0,
            help="Size: 1 = 200k apartments and attribute rows, 300k viewings, 500k bookings.",
        ),
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 42,
    changes: Annotated[
        bool,
        typer.Option(
            "--changes",
            help="Apply one incremental batch of business on top of the existing data: "
            "new rows, updates, status changes, a few bad and late changes.",
        ),
    ] = False,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Start over: replace the source's rows with new demo data, and delete what was "
            "built from the old data (bookmarks emptied, run records, the lake's data, the "
            "warehouse's layers). Asks first.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before --replace.")] = False,
) -> None:
    """Write deterministic, realistically dirty marketplace data into the source.

    Creates the database and tables when missing. Without --changes or --replace, a source that
    already holds data is left as it is. --replace refuses while a run holds the pipeline lock
    (exit 4).
    """
    state: AppState = ctx.obj
    settings = state.settings()
    if changes and replace:
        raise typer.BadParameter("use either --changes or --replace", param_hint="--changes")
    if replace and not yes:
        if not state.can_ask():
            raise ConfigError("--replace needs confirmation: add --yes to confirm in scripts")
        if not typer.confirm(
            f"Replace the data in {settings.source} and delete everything built from it "
            f"(bookmarks, run records, the lake's data in {settings.lake}, the warehouse's "
            "layers)?",
            err=True,
        ):
            raise ConfigError("not confirmed: nothing changed")

    from rentalctl.adapters.factories import open_source
    from rentalctl.demo.writer import write_demo

    def write() -> Any:
        with open_source(settings.source, create=True) as source:
            return write_demo(
                source,
                scale=scale,
                seed=seed,
                changes=changes,
                replace=replace,
                progress=state.show_progress(),
            )

    reset: dict[str, Any] | None = None
    if replace:
        from rentalctl.context import Context
        from rentalctl.orchestration.reset import reset_built
        from rentalctl.pipeline.begin import holder_is_stale
        from rentalctl.run.ids import new_run_id
        from rentalctl.run_lock import PipelineLock

        context = Context(settings)
        with context.state as store:
            store.ensure()
            try:
                lock = PipelineLock(store, f"demo-data-{new_run_id()}", holder_is_stale(context))
                with lock:
                    result = write()
                    reset = reset_built(context, "demo-data --replace")
            except LockHeld as exc:
                raise LockHeld(f"{exc}; nothing replaced, try again when it ends") from None
    else:
        result = write()

    def render(console) -> None:
        from rich.table import Table

        console.print(result.summary())
        if reset is not None:
            console.print(
                f"Started over: {len(reset['bookmarks_reset'])} bookmarks emptied, "
                f"{reset['run_records_deleted']} run records and "
                f"{reset['lake_objects_deleted']} lake objects deleted, warehouse layers dropped"
            )
        table = Table("table", "inserted", "updated", "rows now", box=None)
        for name, t in result.tables.items():
            table.add_row(name, f"{t.inserted:,}", f"{t.updated:,}", f"{t.total:,}")
        console.print(table)

    doc = result.as_dict()
    if reset is not None:
        doc["reset"] = reset
    state.emit(doc, render)
