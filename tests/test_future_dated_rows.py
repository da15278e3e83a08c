"""A row dated in the future (a clock gone wrong, a 2038 or 9999 placeholder) is extracted and
processed like any other, but no bookmark follows it past the source's clock plus
``extract.max_clock_skew_seconds``: rows written afterwards with real timestamps still arrive.
The run's quality report carries a warning naming the table, the rows and where the bookmark
stayed. On SQLite and on a real MariaDB."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from rentalctl.pipeline import plan, quality
from rentalctl.run.manifest import read_manifest
from tests.test_extract_raw import Pipeline, apt, make_pipeline

__all__ = ["make_pipeline"]  # the fixture, shared with the extract tests

PAST = "2025-01-01 10:00:00.000000"
LATER = "2025-06-01 00:00:00.000000"


def ids(p: Pipeline, run_id: str) -> list[int]:
    rows = p.raw("SELECT id FROM raw.apartments WHERE _run_id = ? ORDER BY id", (run_id,))
    return [r[0] for r in rows]


def test_rows_dated_in_the_future_do_not_carry_the_bookmark(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(**{"lookback.apartments": "0"})
    p.insert(
        "apartments",
        [apt(1, PAST), apt(2, "2038-01-19 03:14:08.000000"), apt(3, "9999-12-31 23:59:59.000000")],
    )
    p.run("R1", ("apartments",))
    assert ids(p, "R1") == [1, 2, 3]  # every row is read
    assert p.bookmark("apartments") == PAST

    p.insert("apartments", [apt(4, LATER)])  # written afterwards, with a real timestamp
    assert plan.plan_run(p.ctx, ["apartments"])["tables"][0]["bookmark_after"] == LATER
    p.run("R2", ("apartments",))
    assert ids(p, "R2") == [2, 3, 4]  # the future rows again (already curated), and the new one
    assert p.bookmark("apartments") == LATER

    manifest = read_manifest(p.ctx.lake, "apartments", "R2")
    assert (manifest.high, manifest.bookmark_high, manifest.future_rows) == (
        "9999-12-31 23:59:59.000000",
        LATER,
        2,
    )
    limit = manifest.future_after
    assert limit is not None and LATER < limit < "2038"
    report: dict[str, dict] = {"apartments": {"rows_read": 3}}
    quality.add_warnings(p.ctx, "R2", report)
    assert report == {
        "apartments": {
            "rows_read": 3,
            "future_dated": 2,
            "warnings": [
                f"apartments: 2 row(s) with last_modified_timestamp after {limit} (the source's "
                "clock plus extract.max_clock_skew_seconds); processed, but the bookmark stays "
                f"at {LATER}"
            ],
        }
    }


def test_a_table_of_future_rows_only_keeps_no_bookmark(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline()
    p.insert("apartments", [apt(1, "9999-12-31 23:59:59.999999")])
    p.run("R1", ("apartments",))
    assert (ids(p, "R1"), p.bookmark("apartments")) == ([1], None)
    p.insert("apartments", [apt(2, PAST)])
    p.run("R2", ("apartments",))  # a full extract again, which finds the new row
    assert (ids(p, "R2"), p.bookmark("apartments")) == ([1, 2], PAST)


def test_a_skew_setting_lets_a_near_future_row_carry_the_bookmark(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    p = make_pipeline(**{"extract.max_clock_skew_seconds": "86400"})
    with p.ctx.source() as source, source.snapshot() as snap:
        now = datetime.fromisoformat(str(snap.query("SELECT CURRENT_TIMESTAMP")[0][0]))
    soon = (now + timedelta(hours=20)).isoformat(sep=" ", timespec="microseconds")
    p.insert("apartments", [apt(1, soon)])  # 20 hours ahead: inside a day of allowed skew
    p.run("R1", ("apartments",))
    assert p.bookmark("apartments") == soon
