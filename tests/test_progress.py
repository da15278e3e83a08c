"""Per-state progress from a Step Functions history: the same tracker reads the local
executor's history (Map iterations one after another) and AWS's (iterations interleaved)."""

from __future__ import annotations

from typing import Any

from rentalctl.orchestration.executor import Executor, FakeClock, TaskFailed
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


def test_a_local_history_gives_every_state_once_in_order() -> None:
    calls: list[str] = []

    def glue(params: Any, task: Any) -> Any:
        calls.append(params["JobName"])
        if params["JobName"] == "m" and task.attempt == 1:
            raise TaskFailed("Blip", "transient")
        return {"Id": f"jr{len(calls)}", "JobRunState": "SUCCEEDED"}

    tracker = StateTracker(["a", "b"])
    execution = Executor(MACHINE, {GLUE: glue}, clock=FakeClock(), on_event=tracker.feed).execute(
        {"tables": ["a", "b"]}, "R"
    )
    assert execution.status == "SUCCEEDED"
    assert [
        (s["name"], s["status"], s["attempts"], s.get("job_run_id")) for s in tracker.as_list()
    ] == [
        ("Plan", "SUCCEEDED", 0, None),
        ("PerTable", "SUCCEEDED", 0, None),
        ("Extract[a]", "SUCCEEDED", 1, "jr1"),
        ("Load[a]", "SUCCEEDED", 0, None),
        ("Extract[b]", "SUCCEEDED", 1, "jr2"),
        ("Load[b]", "SUCCEEDED", 0, None),
        ("Merge", "SUCCEEDED", 2, "jr4"),
    ]
