"""The state machine: rendered from ``step-functions/pipeline.asl.json`` and the settings, and
checked before it is used or deployed.

The template holds the shape (step order, Map over tables, Retry and Catch on every task); the
settings fill in job names, the configured tables, how many tables run at once, the retry
policy and the SNS topic. Without
a topic on AWS, the Notify state is left out; locally the topic is a stand-in whose messages go
to the run log.
"""

from __future__ import annotations

import json
from typing import Any

from rentalctl import resources
from rentalctl.config import Settings
from rentalctl.jobs import JOB_TYPES
from rentalctl.orchestration import asl_checks

GLUE_SYNC = "arn:aws:states:::glue:startJobRun.sync"
SNS_PUBLISH = "arn:aws:states:::sns:publish"
LOCAL_TOPIC = "arn:aws:sns:local:000000000000:rentalctl-run-log"
# What a Retry matches: on AWS a failed Glue ``.sync`` run (whatever its reason) and a Glue or
# SNS throttling error all reach the state machine as ``States.TaskFailed``, which in ErrorEquals
# matches every error but ``States.Timeout``. A failure no retry can fix is made cheap by the
# jobs themselves: a retried attempt finds it recorded and fails at once (``rentalctl.jobs``).
RETRY_ERRORS = ["States.TaskFailed"]


def job_names(settings: Settings) -> dict[str, str]:
    """Glue job name of each job: ``<prefix>-<job>``."""
    return {job: f"{settings.aws.glue_job_prefix}-{job}" for job in JOB_TYPES}


def render(settings: Settings) -> dict[str, Any]:
    template = json.loads(resources.shipped("step-functions/pipeline.asl.json").read_text())
    retry = settings.retry
    topic = settings.aws.sns_topic_arn or (LOCAL_TOPIC if settings.target == "local" else None)
    values: dict[str, Any] = {
        "tables": list(settings.tables),
        "job_prefix": settings.aws.glue_job_prefix,
        "max_concurrency": settings.max_concurrency,
        "sns_topic_arn": topic,
        "retry": [
            {
                "ErrorEquals": RETRY_ERRORS,
                "IntervalSeconds": retry.interval_seconds,
                "MaxAttempts": retry.max_attempts,
                "BackoffRate": retry.backoff_rate,
                "MaxDelaySeconds": retry.max_delay_seconds,
            }
        ],
    }
    definition = resources.fill(template, values)
    if topic is None:  # no topic to notify: a failure is recorded, then the run fails
        states = definition["States"]
        del states["Notify"]
        states["RecordFailure"]["Next"] = "Failed"
        states["RecordFailure"]["Catch"][0]["Next"] = "Failed"
    problems = validate(definition, settings)
    if problems:
        raise ValueError("rendered state machine is invalid: " + "; ".join(problems))
    return definition


def _walk(
    states: dict[str, Any], scope: str = ""
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(path, state, its sibling states) for every state, nested ones included."""
    out = []
    for name, state in states.items():
        out.append((f"{scope}{name}", state, states))
        if "ItemProcessor" in state:
            out += _walk(state["ItemProcessor"]["States"], f"{scope}{name}/")
    return out


def validate(definition: dict[str, Any], settings: Settings) -> list[str]:
    """Static checks: what the local executor can run (the same definition deploys to AWS),
    the shape the pipeline relies on, and what AWS would refuse."""
    problems = asl_checks.validate(definition, {GLUE_SYNC, SNS_PUBLISH})
    if problems:  # the pipeline's own checks below assume a well-formed definition
        return problems
    top = definition["States"]
    names = set(job_names(settings).values())
    for path, state, _ in _walk(top):
        if state.get("Type") != "Task":
            continue
        if not state.get("Retry"):
            problems.append(f"{path}: a task without Retry")
        if "/" not in path and not state.get("Catch"):
            problems.append(f"{path}: a task without Catch")
        resource = state.get("Resource", "")
        if resource == GLUE_SYNC:
            job = state.get("Parameters", {}).get("JobName")
            if job not in names:
                problems.append(f"{path}: job {job!r} is not one of rentalctl's jobs")
            if set(state.get("ResultSelector", {})) != {"JobRunState.$", "Id.$"}:
                problems.append(f"{path}: keep only JobRunState and Id of the Glue job run")
            if not any(
                {"States.TaskFailed", "States.ALL"} & set(rule.get("ErrorEquals", []))
                for rule in state.get("Retry", [])
            ):
                problems.append(f"{path}: its Retry must cover States.TaskFailed (a failed job)")
            problems += asl_checks.reserved_glue_arguments(path, state)
    for path, state, _ in _walk(top):
        if state.get("Type") == "Map" and "/" not in path and not state.get("Catch"):
            problems.append(f"{path}: a Map without Catch")
    return problems
