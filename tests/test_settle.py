"""What a failed run leaves is put right (rentalctl.pipeline.settle): its raw rows go unless it
had committed them, decided once and finished by a later raw load if the warehouse was down."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from rentalctl import config
from rentalctl import run_records as records
from rentalctl.context import Context
from rentalctl.errors import ResourceUnavailable
from rentalctl.pipeline.settle import discard_pending, settle_failed_run
from rentalctl.run.layout import result_key
from rentalctl.tables import TABLES, table

FAILED_RUN = "20250101T000000Z-aaaaaa"
EARLIER_RUN = "20241231T000000Z-bbbbbb"


@pytest.fixture
def ctx(home: Path) -> Context:
    context = Context(config.load(env={"RENTALCTL_HOME": str(home)}))
    context.state.ensure()
    context.state.seed(TABLES)
    with context.warehouse() as w:
        w.ensure_raw([table(t) for t in TABLES])
        for t in TABLES:
            spec = table(t)
            for run, n in ((EARLIER_RUN, 3), (FAILED_RUN, 2)):
                values = ", ".join(["NULL"] * len(spec.columns) + ["?", "TIMESTAMP '2025-01-01'"])
                for _ in range(n):
                    w.execute_transaction([(f'INSERT INTO raw."{t}" VALUES ({values})', [run])])
    records.start(
        context,
        FAILED_RUN,
        mode="incremental",
        since=None,
        until=None,
        tables=list(TABLES),
        target="local",
    )
    records.finish(context, FAILED_RUN, "FAILED", error={"Error": "X", "Cause": "y"})
    return context


def raw_counts(ctx: Context) -> dict[str, dict[str, int]]:
    with ctx.warehouse() as w:
        return {
            t: dict(w.query(f'SELECT "_run_id", COUNT(*) FROM raw."{t}" GROUP BY ALL ORDER BY 1'))
            for t in TABLES
        }


def test_a_failed_runs_raw_rows_are_discarded_once(ctx: Context) -> None:
    settle_failed_run(ctx, FAILED_RUN)
    assert raw_counts(ctx) == {t: {EARLIER_RUN: 3} for t in TABLES}
    record = ctx.state.get_run(FAILED_RUN) or {}
    assert record["raw_to_discard"] == []
    assert record["raw_discarded"] == {t: 2 for t in TABLES}
    settle_failed_run(ctx, FAILED_RUN)  # again: nothing more to do, the counts stay
    assert (ctx.state.get_run(FAILED_RUN) or {})["raw_discarded"] == {t: 2 for t in TABLES}


def test_tables_whose_bookmark_the_run_moved_keep_their_rows(ctx: Context) -> None:
    ctx.state.commit_bookmark("apartments", None, "2025-01-01 00:00:00.000000", FAILED_RUN)
    settle_failed_run(ctx, FAILED_RUN)
    counts = raw_counts(ctx)
    assert counts["apartments"] == {EARLIER_RUN: 3, FAILED_RUN: 2}
    assert {t: c for t, c in counts.items() if t != "apartments"} == {
        t: {EARLIER_RUN: 3} for t in TABLES if t != "apartments"
    }


def test_a_run_that_committed_keeps_its_rows_and_has_its_files_archived(ctx: Context) -> None:
    ctx.lake.put_bytes(result_key(FAILED_RUN, "commit-bookmarks"), b"{}")
    ctx.lake.put_bytes(f"raw/bookings/run_id={FAILED_RUN}/part-00000.csv.gz", b"x")
    settle_failed_run(ctx, FAILED_RUN)
    assert raw_counts(ctx) == {t: {EARLIER_RUN: 3, FAILED_RUN: 2} for t in TABLES}
    assert ctx.lake.list("raw/") == []
    assert ctx.lake.list("archive/") == [
        f"archive/raw/bookings/run_id={FAILED_RUN}/part-00000.csv.gz"
    ]


def test_an_unreachable_warehouse_leaves_the_discard_to_the_next_raw_load(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> None:
        raise ResourceUnavailable("warehouse down")

    with monkeypatch.context() as m:
        m.setattr(ctx, "warehouse", unreachable)
        settle_failed_run(ctx, FAILED_RUN)  # does not raise: the failure is still recorded
    record = ctx.state.get_run(FAILED_RUN) or {}
    assert record["raw_to_discard"] == list(TABLES)
    assert raw_counts(ctx)["bookings"] == {EARLIER_RUN: 3, FAILED_RUN: 2}

    discard_pending(ctx, "bookings")
    counts = raw_counts(ctx)
    assert counts["bookings"] == {EARLIER_RUN: 3}
    assert counts["apartments"] == {EARLIER_RUN: 3, FAILED_RUN: 2}  # its own load will do it
    record = ctx.state.get_run(FAILED_RUN) or {}
    assert record["raw_to_discard"] == [t for t in TABLES if t != "bookings"]
    assert record["raw_discarded"] == {"bookings": 2}


def test_a_failure_recorded_without_a_decision_is_settled_table_by_table_by_the_raw_loads(
    ctx: Context,
) -> None:
    """A load settles only its own table: the other tables' loads run at the same time."""
    discard_pending(ctx, "user_viewing")  # the failed run has no raw_to_discard yet
    assert raw_counts(ctx) == {
        "apartments": {EARLIER_RUN: 3, FAILED_RUN: 2},
        "apartment_attributes": {EARLIER_RUN: 3, FAILED_RUN: 2},
        "user_viewing": {EARLIER_RUN: 3},
        "bookings": {EARLIER_RUN: 3, FAILED_RUN: 2},
    }
    record = ctx.state.get_run(FAILED_RUN) or {}
    assert record["raw_to_discard"] == ["apartments", "apartment_attributes", "bookings"]
    assert record["raw_discarded"] == {"user_viewing": 2}


def test_the_raw_loads_of_all_tables_settle_a_failed_run_at_once(ctx: Context) -> None:
    """Four loads at once (as the Map runs them), each settling its table of an undecided
    failed run: one decision, every table's rows discarded once, every count recorded."""
    barrier = threading.Barrier(len(TABLES))
    errors: list[BaseException] = []

    def load(name: str) -> None:
        try:
            barrier.wait(timeout=20)
            discard_pending(ctx, name)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(t,)) for t in TABLES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert raw_counts(ctx) == {t: {EARLIER_RUN: 3} for t in TABLES}
    record = ctx.state.get_run(FAILED_RUN) or {}
    assert record["raw_to_discard"] == []
    assert record["raw_discarded"] == {
        "apartments": 2,
        "apartment_attributes": 2,
        "user_viewing": 2,
        "bookings": 2,
    }


def test_runs_before_a_successful_run_are_left_alone(ctx: Context) -> None:
    later = "20250102T000000Z-cccccc"
    records.start(
        ctx, later, mode="incremental", since=None, until=None, tables=list(TABLES), target="local"
    )
    records.finish(ctx, later, "SUCCEEDED")
    discard_pending(ctx, "bookings")
    assert raw_counts(ctx)["bookings"] == {EARLIER_RUN: 3, FAILED_RUN: 2}
