"""``rentalctl cancel`` of an AWS run, on moto: the execution is stopped, and the record closed
CANCELLED and settled (a stopped execution runs no RecordFailure), the lock given up."""

from __future__ import annotations

from pathlib import Path

from rentalctl.context import Context
from tests.support.cli import ok_json
from tests.support.moto_aws import jobs_run_in_process
from tests.test_aws_run import (  # noqa: F401 - ctx is a fixture used by name
    TABLES,
    assert_lock_free,
    ctx,
    deploy,
    start,
    wait_for_record,
    wait_until_ended,
)


def test_cancel_stops_the_execution_and_settles_the_run(
    ctx: Context,  # noqa: F811
    tmp_path: Path,
) -> None:
    config_file = str(tmp_path / "aws.yaml")  # the fixture's configuration
    deploy(ctx, hold_after_begin=True)
    with jobs_run_in_process(ctx):
        arn = start(ctx, "cancel-1")
        assert wait_for_record("cancel-1", ctx)["status"] == "RUNNING"
        doc = ok_json("--config", config_file, "cancel", "cancel-1")
        assert wait_until_ended(arn)["status"] == "ABORTED"

    assert (doc["run_id"], doc["status"], doc["cancelled"]) == ("cancel-1", "CANCELLED", True)
    record = ctx.state.get_run("cancel-1") or {}
    assert record["status"] == "CANCELLED"
    assert record["error"] == {
        "Error": "Rentalctl.Cancelled",
        "Cause": "cancelled with `rentalctl cancel`",
    }
    # Settled as a failed run: nothing committed, so every table's raw rows are to go (the
    # warehouse is out of reach here, so they wait for the next raw load).
    assert record["raw_to_discard"] == TABLES
    assert record["ended_at"]
    assert_lock_free(ctx)
    # Asked again: the run is over, nothing changes.
    again = ok_json("--config", config_file, "cancel", "cancel-1")
    assert (again["status"], again["cancelled"]) == ("CANCELLED", False)
    assert ctx.state.get_run("cancel-1") == record
