"""``run --dry-run`` and ``backfill --dry-run``: the plan of the run, and nothing else.

Per table, the window the run would read now, the source rows in it and where the bookmark would
be left; then an estimate of the work. Nothing is written: no lock, no run record, no store
created or seeded, no lake file, no warehouse connection.
"""

from __future__ import annotations

from typing import Any

from rentalctl.cli.output import AppState


def show_plan(
    state: AppState, tables: list[str], since: str | None = None, until: str | None = None
) -> None:
    from rentalctl.context import Context
    from rentalctl.pipeline.plan import plan_run

    context = Context(state.settings())
    with context.state:
        plan = plan_run(context, tables, since, until)
    doc = {"dry_run": True, **plan}

    def render(console: Any) -> None:
        from rich.table import Table

        out = Table("table", "window", "rows", "bookmark now", "bookmark after", box=None)
        for t in plan["tables"]:
            if t["mode"] == "backfill":
                window = f"[{t['since']}, {t['until'] or 'now'}]"
            elif t["mode"] == "full":
                window = f"everything up to {t['high']}"
            else:
                window = f"({t['lower']}, {t['high']}]"
            after = "unchanged" if t["bookmark_after"] == t["bookmark"] else t["bookmark_after"]
            out.add_row(t["table"], window, str(t["rows"]), str(t["bookmark"]), str(after))
        console.print(f"Dry run of a {plan['mode']} run: nothing was written")
        console.print(out)
        est = plan["estimate"]
        line = f"{est['rows']} rows in {est['part_files']} raw files"
        if est["seconds"] is not None:
            line += f", about {est['seconds']:.0f} s (scaled from run {est['based_on_run']})"
        console.print(f"Estimate: {line}")

    state.emit(doc, render)
