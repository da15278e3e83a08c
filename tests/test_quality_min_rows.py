"""The data-quality gate holds the rejected share only against a table that read at least
``quality.min_rows`` rows (default 100): one bad row in an incremental window of two is 50 %,
and would otherwise stop the table every night. Below the minimum the run merges and its report
carries a warning; at the minimum the gate trips and names table, share and reasons."""

from __future__ import annotations

import pytest

from rentalctl import config
from rentalctl.context import Context
from rentalctl.errors import PipelineFailed
from rentalctl.pipeline.merge import merge
from tests.test_merge import apartments, curated, write_output

ONE_APARTMENT = apartments(
    "(1, 'A', 's', 100, 'EUR', '2024-01-01', true, '2025-01-01 10:00:00', 108)"
)


def context(tmp_path, **overrides: str) -> Context:
    settings = config.load(overrides=overrides, env={"RENTALCTL_HOME": str(tmp_path / "home")})
    ctx = Context(settings)
    ctx.state.ensure()
    return ctx


def stats(read: int, rejected: int) -> dict:
    return {
        "rows_read": read,
        "rejected": rejected,
        "rejected_by_reason": {"missing_date": rejected},
    }


def test_the_default_minimum_is_100_rows() -> None:
    assert config.load(env={}).quality_min_rows == 100


def test_one_bad_row_of_two_is_merged_with_a_warning(tmp_path) -> None:
    ctx = context(tmp_path)
    write_output(ctx, "apartments", "R1", ONE_APARTMENT, None, stats=stats(2, 1))
    report = merge(ctx, "R1", ["apartments"])
    assert report["apartments"]["warnings"] == [
        "apartments rejected 1 of 2 rows (50.0%: missing_date 1), above "
        "quality.max_rejected_share 20% but not held against it: fewer than quality.min_rows "
        "100 rows read"
    ]
    assert curated(ctx, "SELECT id FROM curated.apartments") == [(1,)]


def test_at_the_minimum_the_gate_trips_naming_table_share_and_reasons(tmp_path) -> None:
    ctx = context(tmp_path, **{"quality.min_rows": "4"})
    write_output(ctx, "apartments", "R1", ONE_APARTMENT, None, stats=stats(4, 2))
    with pytest.raises(PipelineFailed) as caught:
        merge(ctx, "R1", ["apartments"])
    assert str(caught.value) == (
        "data-quality gate: apartments rejected 2 of 4 rows (50.0%: missing_date 2), above "
        "quality.max_rejected_share 20%; nothing was merged"
    )
