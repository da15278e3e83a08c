"""``rentalctl report``: one self-contained HTML file of the KPIs, the pipeline and its runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rentalctl.cli.output import AppState


def report(
    ctx: typer.Context,
    output_file: Annotated[
        Path | None,
        typer.Option(
            "--output-file",
            "-f",
            metavar="PATH",
            help="Where to write the report (default: <home>/report.html).",
            show_default=False,
        ),
    ] = None,
    open_: Annotated[
        bool, typer.Option("--open", help="Open the report in the default web browser.")
    ] = False,
) -> None:
    """Write an HTML report of the KPIs, the state machine and the recent runs.

    The file is self-contained: it opens from disk with no network (no scripts, fonts or styles
    fetched). It reads through the warehouse and the state store, locally and on AWS alike.
    """
    state: AppState = ctx.obj
    settings = state.settings()
    from rentalctl.report.build import write_report

    path = (output_file or settings.home / "report.html").resolve()
    summary = write_report(settings, path)
    opened = False
    if open_:
        import webbrowser

        # False when no browser can be found (a server without a desktop): say so, not fail.
        opened = webbrowser.open(path.as_uri())
    doc = {**summary, "path": str(path), "opened": opened}

    def render(console: Any) -> None:
        size = f"{summary['bytes'] / 1024:,.0f} KB, {summary['runs']} runs"
        console.print(f"Report written: {path} ({size})")
        if open_ and not opened:
            console.print("No web browser found to open it: open the file yourself.")

    state.emit(doc, render)
