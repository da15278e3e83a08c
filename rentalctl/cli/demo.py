"""``rentalctl demo-data``: fill the configured source with synthetic marketplace data."""

from __future__ import annotations

from typing import Annotated

import typer

from rentalctl.cli.output import AppState


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
        bool, typer.Option("--replace", help="Delete the existing demo tables' rows first.")
    ] = False,
) -> None:
    """Write deterministic, realistically dirty marketplace data into the source.

    Creates the database and tables when missing. Without --changes or --replace, a source that
    already holds data is left as it is.
    """
    state: AppState = ctx.obj
    settings = state.settings()
    if changes and replace:
        raise typer.BadParameter("use either --changes or --replace", param_hint="--changes")

    from rentalctl.adapters.source import open_source
    from rentalctl.demo.writer import write_demo

    with open_source(settings.source, create=True) as source:
        result = write_demo(
            source,
            scale=scale,
            seed=seed,
            changes=changes,
            replace=replace,
            progress=state.show_progress(),
        )

    def render(console) -> None:
        from rich.table import Table

        console.print(result.summary())
        table = Table("table", "inserted", "updated", "rows now", box=None)
        for name, t in result.tables.items():
            table.add_row(name, f"{t.inserted:,}", f"{t.updated:,}", f"{t.total:,}")
        console.print(table)

    state.emit(result.as_dict(), render)
