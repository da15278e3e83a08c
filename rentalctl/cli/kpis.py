"""``rentalctl kpis [TABLE]``: a KPI table of the presentation layer, as text, JSON or CSV."""

from __future__ import annotations

import csv
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer

from rentalctl.cli.output import AppState, to_json


class KpiFormat(StrEnum):
    text = "text"
    json = "json"
    csv = "csv"


def kpis(
    ctx: typer.Context,
    table: Annotated[
        str | None,
        typer.Argument(
            metavar="TABLE", help="A KPI table, e.g. occupancy_rate; default: list the seven."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(metavar="DATE", help="Only periods starting on or after DATE (YYYY-MM-DD)."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="At most N rows (newest periods first).")
    ] = None,
    output: Annotated[
        KpiFormat | None,
        typer.Option(
            "--output",
            "-o",
            help="text, json or csv (for spreadsheets); default: the global --output.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print a KPI table, newest period first.

    Without TABLE, lists the seven KPI tables with their rows, latest period and definition.
    """
    state: AppState = ctx.obj
    fmt = output.value if output else state.output
    from rentalctl.report import kpis as catalogue

    chosen = catalogue.kpi(table) if table else None
    since_date = catalogue.parse_since(since)
    from rentalctl.report.sources import open_warehouse

    with open_warehouse(state.settings()) as warehouse:
        present = catalogue.existing(warehouse) if warehouse else set()
        if chosen is None:
            columns = ["table", "grain", "rows", "latest", "definition"]
            rows = [_summary(warehouse, k, k.table in present) for k in catalogue.KPIS.values()]
        else:
            columns = list(chosen.columns)
            rows = []
            if warehouse and chosen.table in present:
                rows = catalogue.read(warehouse, chosen, since_date, limit)
    if fmt == "csv":
        _csv(columns, rows)
    elif fmt == "json":
        doc = (
            {"table": chosen.table, "columns": columns, "rows": rows}
            if chosen
            else {"tables": rows}
        )
        sys.stdout.write(to_json(doc) + "\n")
    else:
        _text(state.stdout(), columns, rows)


def _summary(warehouse: Any, k: Any, present: bool) -> dict[str, Any]:
    count, latest = 0, None
    if present:  # identifiers from the catalogue
        sql = f"SELECT COUNT(*), MAX({k.period}) FROM presentation.{k.table}"
        count, latest = warehouse.query(sql)[0]
    return {
        "table": k.table,
        "grain": k.grain,
        "rows": int(count),
        "latest": latest,
        "definition": k.definition,
    }


def _cell(value: Any) -> str:
    """A CSV/text cell: exact numbers (a float as its shortest round-trip form), ISO dates."""
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])


def _text(console: Any, columns: list[str], rows: list[dict[str, Any]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    if not rows:
        console.print("No KPIs yet: run the pipeline first (`rentalctl run`).")
        return
    out = Table(*columns, box=None)
    for row in rows:
        out.add_row(*(escape(_shown(row[c])) for c in columns))
    console.print(out)


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return _cell(value)
