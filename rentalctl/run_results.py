"""Where a run's step results live in the lake: ``runs/run_id=<id>/<step>[.<table>].json``, and
its failure markers under ``failed/``. The jobs write them; settling, resuming, the transform's
shortcut and ``status`` read them, so the layout sits below all of them."""

from __future__ import annotations

# Steps whose results ``status`` shows, per table or once per run, in the order they run.
TABLE_STEPS = ("extract", "load-raw")
RUN_STEPS = ("transform", "merge", "presentation", "commit-bookmarks", "archive")


def run_folder(run_id: str) -> str:
    """Where a run's step results and failure markers live."""
    return f"runs/run_id={run_id}/"


def result_key(run_id: str, job: str, table: str | None = None) -> str:
    return f"{run_folder(run_id)}{job}{'.' + table if table else ''}.json"


def failure_key(run_id: str, job: str, table: str | None = None) -> str:
    return result_key(run_id, f"failed/{job}", table)
