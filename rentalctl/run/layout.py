"""Where a run's files live in the lake: its raw files of a table under
``raw/<table>/run_id=<id>/`` with their manifest, its step results in
``runs/run_id=<id>/<step>[.<table>].json`` and its failure markers under ``failed/``. The jobs
write them; settling, resuming, the transform's shortcut, the warehouse's raw load and
``status`` read them, so the layout sits below all of them. Outside the lake, a local run's log
file is ``<home>/logs/<id>.log``."""

from __future__ import annotations

from pathlib import Path

#: the manifest of a table's extract, in the run's raw folder of that table
MANIFEST = "_manifest.json"


def log_file(home: Path, run_id: str) -> Path:
    """A local run's log file under the home: a background run's output, and the JVM's (the
    run writes it; it may not exist)."""
    return home / "logs" / f"{run_id}.log"


def run_prefix(table: str, run_id: str, area: str = "raw") -> str:
    """Where a run's files of a table live: ``raw/<table>/run_id=<id>/``."""
    return f"{area}/{table}/run_id={run_id}/"


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
