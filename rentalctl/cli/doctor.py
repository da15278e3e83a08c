"""``rentalctl doctor``: the effective configuration, versions and a check of every resource."""

from __future__ import annotations

from typing import Any

import typer

from rentalctl.cli.output import AppState
from rentalctl.errors import ExitCode


def doctor(ctx: typer.Context) -> None:
    """Check the setup: settings and where each came from, versions, and each resource.

    Each check shows ✓ or ✗ with the fix; exit 3 when one fails. Only reads: nothing is
    created or locked.
    """
    state: AppState = ctx.obj
    from rentalctl.doctor import diagnose

    report = diagnose(state.settings())
    state.emit(report, lambda console: _render(console, report))
    if not report["ok"]:
        raise typer.Exit(int(ExitCode.UNAVAILABLE))


def _render(console: Any, report: dict[str, Any]) -> None:
    from rich.markup import escape

    console.print(f"config file: {escape(report['config_file'])}")
    console.print(f"home: {escape(report['home'])}")
    console.print("settings (value, and where it came from):")
    # Lines, not a table: a table would cut long URLs short.
    for row in report["settings"]:
        console.print(f"  {row['key']} = {escape(str(row['value']))}  ({escape(row['origin'])})")
    console.print(
        "versions: "
        + ", ".join(f"{k} {v or 'not installed'}" for k, v in report["versions"].items())
    )
    for check in report["checks"]:
        mark = "[green]✓[/]" if check["ok"] else "[red]✗[/]"
        console.print(f"{mark} {check['name']}: {escape(check['detail'])}")
    failed = [c["name"] for c in report["checks"] if not c["ok"]]
    if failed:
        console.print(f"[red]{len(failed)} check(s) failed[/]: {', '.join(failed)}")
    else:
        console.print("[green]all checks passed[/]")
