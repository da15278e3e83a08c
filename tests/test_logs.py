"""``rentalctl logs RUN_ID [--follow]``: the run's transitions with their times, what its tasks
logged and its log file; an unknown run is exit 2; --follow prints until the run ends."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rentalctl import config
from rentalctl.context import Context
from tests.support.cli import invoke

RUN = "20261204T120000Z-abc123"


def _record(status: str) -> dict[str, Any]:
    states = [
        {
            "name": "Begin",
            "status": "SUCCEEDED",
            "started_at": "2026-12-04 12:00:01.000000+00:00",
            "ended_at": "2026-12-04 12:00:02.500000+00:00",
        },
        {
            "name": "Transform",
            "status": "FAILED" if status == "FAILED" else "RUNNING",
            "started_at": "2026-12-04 12:00:03.000000+00:00",
            "ended_at": "2026-12-04 12:00:09.000000+00:00" if status == "FAILED" else None,
            "error": "Rentalctl.PipelineFailed" if status == "FAILED" else None,
            "cause": "out of memory" if status == "FAILED" else None,
        },
    ]
    record: dict[str, Any] = {
        "run_id": RUN,
        "mode": "incremental",
        "status": status,
        "started_at": "2026-12-04T12:00:00.000000+00:00",
        "tables": ["bookings"],
        "states": states,
        "logs": [
            {"timestamp": "2026-12-04 12:00:02.000000+00:00", "state": "Begin", "message": "hi"}
        ],
    }
    if status != "RUNNING":
        record["ended_at"] = "2026-12-04 12:00:10.000000+00:00"
    return record


def _store(home: Path) -> Any:
    context = Context(config.load())
    context.state.ensure()
    return context.state


def test_the_log_shows_transitions_task_output_and_the_log_file(home: Path) -> None:
    _store(home).put_run(_record("FAILED"))
    (home / "logs").mkdir(parents=True)
    (home / "logs" / f"{RUN}.log").write_text("WARN jvm said something\n", encoding="utf-8")
    result = invoke("logs", RUN)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stdout == (
        "2026-12-04 12:00:00.000  run started\n"
        "2026-12-04 12:00:01.000  Begin: started\n"
        "2026-12-04 12:00:02.000  Begin: hi\n"
        "2026-12-04 12:00:02.500  Begin: SUCCEEDED\n"
        "2026-12-04 12:00:03.000  Transform: started\n"
        "2026-12-04 12:00:09.000  Transform: FAILED: Rentalctl.PipelineFailed: out of memory\n"
        "2026-12-04 12:00:10.000  run FAILED\n"
        f"--- {home}/logs/{RUN}.log\n"
        "WARN jvm said something\n"
    )


def test_without_a_log_file_only_the_record_is_shown_and_json_has_it_all(home: Path) -> None:
    _store(home).put_run(_record("FAILED"))
    result = invoke("-o", "json", "logs", RUN)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    doc = json.loads(result.stdout)
    assert doc["log_file"] is None and doc["job_logs"] == [] and doc["status"] == "FAILED"
    assert doc["events"][:2] == [
        {"at": "2026-12-04T12:00:00.000000+00:00", "state": None, "text": "run started"},
        {"at": "2026-12-04 12:00:01.000000+00:00", "state": "Begin", "text": "started"},
    ]
    assert len(doc["events"]) == 7


def test_an_unknown_run_is_exit_2(home: Path) -> None:
    _store(home)
    result = invoke("logs", "nope")
    assert result.exit_code == 2
    assert result.stderr == "error: no run 'nope' (see `rentalctl status` for recent runs)\n"


def test_follow_prints_until_the_run_ends(home: Path) -> None:
    store = _store(home)
    store.put_run(_record("RUNNING"))

    def finish() -> None:
        time.sleep(1.0)
        store.put_run(_record("FAILED"))

    threading.Thread(target=finish, daemon=True).start()
    result = invoke("logs", "--follow", "--interval", "0.2", RUN)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stdout == (
        "2026-12-04 12:00:00.000  run started\n"
        "2026-12-04 12:00:01.000  Begin: started\n"
        "2026-12-04 12:00:02.000  Begin: hi\n"
        "2026-12-04 12:00:02.500  Begin: SUCCEEDED\n"
        "2026-12-04 12:00:03.000  Transform: started\n"
        "2026-12-04 12:00:09.000  Transform: FAILED: Rentalctl.PipelineFailed: out of memory\n"
        "2026-12-04 12:00:10.000  run FAILED\n"
    )


def test_on_aws_the_glue_job_runs_log_streams_are_read(on_moto: str) -> None:
    import boto3

    from rentalctl import run_logs

    logs = boto3.client("logs")
    logs.create_log_group(logGroupName="/aws-glue/python-jobs/output")
    logs.create_log_stream(logGroupName="/aws-glue/python-jobs/output", logStreamName="jr_1")
    logs.create_log_stream(logGroupName="/aws-glue/python-jobs/output", logStreamName="jr_9")
    # CloudWatch refuses events older than 14 days: a time of today, whole seconds.
    now = int(time.time()) * 1000
    for stream, ms, text in [("jr_1", now, "extracted 5 rows\n"), ("jr_9", now, "x")]:
        logs.put_log_events(
            logGroupName="/aws-glue/python-jobs/output",
            logStreamName=stream,
            logEvents=[{"timestamp": ms, "message": text}],
        )
    context = Context(config.load(overrides={"target": "local"}))
    found = run_logs.job_log_events(context, {"states": [{"job_run_id": "jr_1"}, {}]})
    assert found == [
        {
            "at": str(datetime.fromtimestamp(now / 1000, tz=UTC)),
            "stream": "/aws-glue/python-jobs/output/jr_1",
            "text": "extracted 5 rows",
        }
    ]
