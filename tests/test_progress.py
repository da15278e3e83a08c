"""Per-state progress from a Step Functions history: the same tracker reads the local
executor's history and AWS's, where Map iterations run at once and their events interleave."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from rentalctl.orchestration.asl_task import TaskFailed
from rentalctl.orchestration.clock import FakeClock
from rentalctl.orchestration.executor import Executor
from rentalctl.orchestration.progress import StateTracker

GLUE = "arn:aws:states:::glue:startJobRun.sync"
MACHINE = {
    "StartAt": "Plan",
    "States": {
        "Plan": {"Type": "Pass", "Next": "PerTable"},
        "PerTable": {
            "Type": "Map",
            "ItemsPath": "$.tables",
            "ItemProcessor": {
                "StartAt": "Extract",
                "States": {
                    "Extract": {
                        "Type": "Task",
                        "Resource": GLUE,
                        "Parameters": {"JobName": "x", "Arguments": {"--table.$": "$"}},
                        "Next": "Load",
                    },
                    "Load": {"Type": "Pass", "End": True},
                },
            },
            "ResultPath": None,
            "Next": "Merge",
        },
        "Merge": {
            "Type": "Task",
            "Resource": GLUE,
            "Parameters": {"JobName": "m"},
            "Retry": [{"ErrorEquals": ["Blip"], "IntervalSeconds": 1}],
            "End": True,
        },
    },
}


@pytest.mark.parametrize("overlap", [False, True], ids=["one-at-a-time", "at-once"])
def test_a_local_history_gives_every_state_once_in_order(overlap: bool) -> None:
    """The same states whether the iterations ran one after another or at once (a barrier of
    two lets the extracts through only together)."""
    both = threading.Barrier(2)

    def glue(params: Any, task: Any) -> Any:
        name = params.get("Arguments", {}).get("--table", params["JobName"])
        if params["JobName"] == "m" and task.attempt == 1:
            raise TaskFailed("Blip", "transient")
        if overlap and params["JobName"] == "x":
            both.wait(timeout=20)
        return {"Id": f"jr-{name}-{task.attempt}", "JobRunState": "SUCCEEDED"}

    machine = {**MACHINE, "States": {**MACHINE["States"]}}
    machine["States"]["PerTable"] = {**MACHINE["States"]["PerTable"]}
    machine["States"]["PerTable"]["MaxConcurrency"] = 0 if overlap else 1
    tracker = StateTracker(["a", "b"])
    execution = Executor(machine, {GLUE: glue}, clock=FakeClock(), on_event=tracker.feed).execute(
        {"tables": ["a", "b"]}, "R"
    )
    assert execution.status == "SUCCEEDED"
    assert [
        (s["name"], s["status"], s["attempts"], s.get("job_run_id")) for s in tracker.as_list()
    ] == [
        ("Plan", "SUCCEEDED", 0, None),
        ("PerTable", "SUCCEEDED", 0, None),
        ("Extract[a]", "SUCCEEDED", 1, "jr-a-1"),
        ("Load[a]", "SUCCEEDED", 0, None),
        ("Extract[b]", "SUCCEEDED", 1, "jr-b-1"),
        ("Load[b]", "SUCCEEDED", 0, None),
        ("Merge", "SUCCEEDED", 2, "jr-m-2"),
    ]
