"""``rentalctl logs RUN_ID [--follow]``: a run's log."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from rentalctl.cli.output import AppState, to_json


def logs(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id (see `rentalctl status`).")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, max=600, help="Seconds between looks with --follow.")
    ] = 2.0,
) -> None:
    """Show a run's log: its state transitions with their times, what each task logged, then
    the run's log file (a background run's output, the JVM's) or, on AWS, its Glue job runs'
    CloudWatch log streams.
    """
    state: AppState = ctx.obj
    from rentalctl import run_logs
    from rentalctl.context import Context
    from rentalctl.run.layout import log_file

    context = Context(state.settings())
    path = log_file(context.settings.home, run_id)
    record = run_logs.run_record(context, run_id)
    # Printed events by content: a task's messages reach the record when the run ends, dated
    # earlier than transitions already printed.
    shown: set[tuple[str, Any, str]] = set()
    offset = 0
    while True:
        events = run_logs.events(record)
        if not state.json:
            for event in events:
                if (key := (event["at"], event["state"], event["text"])) not in shown:
                    shown.add(key)
                    _line(event)
            # The log file's new lines, as they are written (a background run's, the JVM's).
            text, after = run_logs.read_log_file(path, offset)
            if text:
                header = "" if offset else f"--- {path}\n"
                sys.stdout.write(header + text + ("" if text.endswith("\n") else "\n"))
            offset = after
            sys.stdout.flush()
        if not follow or record.get("status") != "RUNNING":
            break
        time.sleep(interval)
        record = run_logs.run_record(context, run_id)
    jobs = run_logs.job_log_events(context, record) if record.get("execution_arn") else []
    if state.json:
        file_text, _ = run_logs.read_log_file(path)
        sys.stdout.write(
            to_json(
                {
                    "run_id": run_id,
                    "status": record.get("status"),
                    "events": run_logs.events(record),
                    "log_file": str(path) if path.exists() else None,
                    "log_file_text": file_text if path.exists() else None,
                    "job_logs": jobs,
                }
            )
            + "\n"
        )
        return
    for entry in jobs:
        sys.stdout.write(f"{entry['at'][:23]}  {entry['stream']}  {entry['text']}\n")


def _line(event: dict[str, Any]) -> None:
    at = event["at"].replace("T", " ")[:23]
    where = f"{event['state']}: " if event["state"] else ""
    sys.stdout.write(f"{at}  {where}{event['text']}\n")
