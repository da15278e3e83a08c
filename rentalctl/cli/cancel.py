"""``rentalctl cancel RUN_ID``: stop a running run; it is recorded CANCELLED and settled."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from rentalctl.cli.output import AppState


def cancel(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The id of the run to stop (see `status`).")],
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            metavar="SECONDS",
            min=1,
            help="How long to wait for a local run to stop before giving up.",
        ),
    ] = 60.0,
) -> None:
    """Stop a running run, and record it as cancelled.

    Locally the process that runs it is sent SIGTERM and records the run CANCELLED itself (a
    run whose process is gone is settled here); on AWS its execution is stopped. Either way the
    run is settled as a failed run: the next run reads its rows again. A run that is already
    over is left as it is (exit 0).

    Example: rentalctl cancel 20250301T120000Z-1a2b3c
    """
    from rentalctl.context import Context
    from rentalctl.orchestration.cancel import cancel as cancel_run

    state: AppState = ctx.obj
    outcome = cancel_run(Context(state.settings()), run_id, wait)
    record: dict[str, Any] = outcome["record"]
    status = record.get("status")

    def render(console: Any) -> None:
        if outcome["cancelled"]:
            console.print(f"Run {run_id} cancelled; its rows were settled as a failed run's.")
        else:
            console.print(f"Run {run_id} is already over ({status}): nothing to cancel.")

    state.emit(
        {"run_id": run_id, "status": status, "cancelled": outcome["cancelled"], "run": record},
        render,
    )
