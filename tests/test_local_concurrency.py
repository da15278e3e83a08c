"""A local run extracts and loads its tables at once, as many as ``pipeline.max_concurrency``
allows, and ends exactly where a run of one table at a time ends: every warehouse table and
every bookmark the same."""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rentalctl import config, jobs
from rentalctl.context import Context
from rentalctl.orchestration.local import run_local
from rentalctl.pipeline.child import ChildRunner
from rentalctl.tables import TABLES
from tests.reliability.support import bookmarks, warehouse_snapshot
from tests.support.cli import invoke

pytestmark = pytest.mark.slow


class ExtractWatch:
    """Wraps the extract-load job: records when each table's job starts and ends, in the order
    it happens. With ``wait_for_all``, a job that has started waits (up to a timeout) for
    every table's job to start too: run one after another, they would not, and the starts
    and ends then show it."""

    def __init__(self, real: Callable[..., Any], wait_for_all: bool) -> None:
        self.real = real
        self.barrier = threading.Barrier(len(TABLES)) if wait_for_all else None
        self.lock = threading.Lock()
        self.events: list[tuple[str, str]] = []
        self.children: list[tuple[str, ...]] = []

    def __call__(self, ctx: Context, args: dict[str, str], *rest: Any) -> Any:
        table = args["--table"]
        with self.lock:
            self.events.append(("start", table))
        if self.barrier is not None:
            with contextlib.suppress(threading.BrokenBarrierError):  # the events will say so
                self.barrier.wait(timeout=30)
        try:
            return self.real(ctx, args, *rest)
        finally:
            with self.lock:
                self.events.append(("end", table))


def run(
    home: Path,
    max_concurrency: int,
    monkeypatch: pytest.MonkeyPatch,
    parallel_min_rows: int,
    run_id: str = "R1",
) -> ExtractWatch:
    """A run of every table, its extracts and its transform in child processes from
    ``parallel_min_rows`` rows on; the watch also lists the steps that ran in children."""
    settings = config.load(
        overrides={
            "pipeline.max_concurrency": str(max_concurrency),
            "transform.parallel_min_rows": str(parallel_min_rows),
            "extract.parallel_min_rows": str(parallel_min_rows),
        },
        env={"RENTALCTL_HOME": str(home)},
    )
    ctx = Context(settings)
    ctx.state.ensure()
    ctx.state.seed(settings.tables)
    watch = ExtractWatch(jobs.JOBS["extract-load"], wait_for_all=max_concurrency != 1)
    in_child = ChildRunner.run

    def recorded(runner: ChildRunner, settings: Any, fn: Callable[..., Any], *args: Any) -> Any:
        with watch.lock:
            watch.children.append((fn.__name__, *map(str, args)))
        return in_child(runner, settings, fn, *args)

    with monkeypatch.context() as m:
        m.setitem(jobs.JOBS, "extract-load", watch)
        m.setattr(ChildRunner, "run", recorded)
        record = run_local(
            ctx, run_id=run_id, mode="incremental", since=None, until=None, tables=list(TABLES)
        )
    ctx.state.close()
    assert record["status"] == "SUCCEEDED", record.get("error")
    per_table = [s for s in record["states"] if s["name"].endswith("]")]
    assert {s["name"].split("[")[1] for s in per_table} == {f"{t}]" for t in TABLES}
    assert {s["status"] for s in per_table} == {"SUCCEEDED"}
    return watch


def test_tables_at_once_end_where_one_at_a_time_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    at_once, one_by_one = tmp_path / "at-once", tmp_path / "one-by-one"
    monkeypatch.setenv("RENTALCTL_HOME", str(at_once))
    result = invoke("demo-data", "--scale", "0.002")
    assert result.exit_code == 0, result.stderr
    one_by_one.mkdir()
    shutil.copy(at_once / "source.db", one_by_one / "source.db")

    # At once, the transform too: in child processes, whatever the number of rows.
    concurrent = run(at_once, 4, monkeypatch, parallel_min_rows=0)
    sequential = run(one_by_one, 1, monkeypatch, parallel_min_rows=0)
    transformed_apart = sorted(c[1] for c in concurrent.children if c[0] == "_transform_table")
    assert transformed_apart == sorted(TABLES)
    assert sequential.children == []

    # At once: every extract started before any ended, so each pair of them overlapped.
    kinds = [kind for kind, _ in concurrent.events]
    assert kinds == ["start"] * 4 + ["end"] * 4
    assert sorted(t for _, t in concurrent.events[:4]) == sorted(TABLES)
    # One at a time: each extract ended before the next started.
    assert [kind for kind, _ in sequential.events] == ["start", "end"] * 4

    snapshot = warehouse_snapshot(at_once)
    assert {name for name, rows in snapshot.items() if rows} >= {
        f"{layer}.{t}" for layer in ("raw", "curated") for t in TABLES
    }
    assert snapshot == warehouse_snapshot(one_by_one)
    marks = bookmarks(at_once)
    assert set(marks) == set(TABLES) and None not in marks.values()
    assert marks == bookmarks(one_by_one)


def test_a_transform_of_few_rows_stays_in_the_run_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below ``transform.parallel_min_rows``, child processes would cost more than they save:
    the tables are extracted in children (the first run reads every key), and transformed in
    the run's process. The next run's extracts read few rows, and stay in the run's process
    too, side by side all the same."""
    monkeypatch.setenv("RENTALCTL_HOME", str(tmp_path))
    result = invoke("demo-data", "--scale", "0.002")  # about 2,400 rows
    assert result.exit_code == 0, result.stderr
    watch = run(tmp_path, 4, monkeypatch, parallel_min_rows=2500)
    assert [c[0] for c in watch.children] == ["_extract"] * 4

    again = run(tmp_path, 4, monkeypatch, parallel_min_rows=2500, run_id="R2")
    assert again.children == []
    assert [kind for kind, _ in again.events] == ["start"] * 4 + ["end"] * 4
