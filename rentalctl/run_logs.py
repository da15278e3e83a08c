"""A run's log, as ``rentalctl logs`` shows it: the run's state transitions with their times,
what each task logged, then the log file under the home (a detached run's output and the JVM's),
or on AWS the Glue job runs' CloudWatch log streams.

The transitions come from the run record, which a local run (detached or not) updates at each
change of state, and an AWS run's from its execution history: so the log of a run still going
shows how far it got.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rentalctl import aws
from rentalctl.errors import ConfigError
from rentalctl.orchestration import aws_run

# Where Glue writes a job run's output and errors; the stream is named after the job run id.
GLUE_LOG_GROUPS = (
    "/aws-glue/python-jobs/output",
    "/aws-glue/python-jobs/error",
    "/aws-glue/jobs/output",
    "/aws-glue/jobs/error",
)


def run_record(context: Any, run_id: str) -> dict[str, Any]:
    """The run's record, an AWS run's brought up to date from its execution history."""
    record = None if context.state.known_empty() else context.state.get_run(run_id)
    if record is None:
        raise ConfigError(f"no run {run_id!r} (see `rentalctl status` for recent runs)")
    if record.get("execution_arn"):
        record = aws_run.refresh_status(context, record)
    return record


def events(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's transitions and task messages, oldest first: ``{"at", "state", "text"}``."""
    out: list[dict[str, Any]] = []
    if record.get("started_at"):
        out.append({"at": str(record["started_at"]), "state": None, "text": "run started"})
    for s in record.get("states") or []:
        if s.get("started_at"):
            out.append({"at": str(s["started_at"]), "state": s["name"], "text": "started"})
        if s.get("ended_at"):
            error = s.get("error")
            text = str(s.get("status"))
            if error:
                text += f": {error}" + (f": {s['cause']}" if s.get("cause") else "")
            out.append({"at": str(s["ended_at"]), "state": s["name"], "text": text})
    for entry in record.get("logs") or []:
        out.append(
            {
                "at": str(entry.get("timestamp")),
                "state": entry.get("state"),
                "text": str(entry.get("message")),
            }
        )
    if record.get("ended_at") and record.get("status") != "RUNNING":
        out.append(
            {"at": str(record["ended_at"]), "state": None, "text": f"run {record.get('status')}"}
        )
    # ISO timestamps of one clock: their text sorts as their times do.
    return sorted(out, key=lambda e: _sortable(e["at"]))


def _sortable(at: str) -> str:
    return at.replace("T", " ")


def read_log_file(path: Path, offset: int = 0) -> tuple[str, int]:
    """What the log file holds from ``offset`` on, and the offset after it ("" when absent)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return "", offset
    return data.decode("utf-8", errors="replace"), offset + len(data)


def job_log_events(context: Any, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The CloudWatch log events of the run's Glue job runs: ``{"at", "stream", "text"}``."""
    from botocore.exceptions import ClientError  # imported here: a local run's logs need none

    job_runs = [s["job_run_id"] for s in record.get("states") or [] if s.get("job_run_id")]
    if not job_runs:
        return []
    logs = aws.client("logs", context._session())
    out = []
    for group in GLUE_LOG_GROUPS:
        for job_run in job_runs:
            kwargs: dict[str, Any] = {"logGroupName": group, "logStreamNamePrefix": job_run}
            try:
                with aws.errors(f"reading CloudWatch log group {group}"):
                    for page in logs.get_paginator("filter_log_events").paginate(**kwargs):
                        out += [
                            {
                                "at": _ms(e["timestamp"]),
                                "stream": f"{group}/{e['logStreamName']}",
                                "text": e["message"].rstrip("\n"),
                            }
                            for e in page.get("events", [])
                            # Checked here too: not every implementation applies the prefix.
                            if e["logStreamName"].startswith(job_run)
                        ]
            except ClientError as exc:
                if aws.error_code(exc) != "ResourceNotFoundException":
                    raise
    return sorted(out, key=lambda e: e["at"])


def _ms(timestamp: int) -> str:
    return str(datetime.fromtimestamp(timestamp / 1000, tz=UTC))
