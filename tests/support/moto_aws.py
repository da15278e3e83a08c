"""What the AWS tests (and scripts/moto_e2e.py) share: moto's account and region, the names
the configurations use, and the one stand-in moto needs.

moto's ``glue:startJobRun.sync`` integration is broken in 5.2.x (ARCHITECTURE.md), but its plain
``startJobRun`` works against moto's Glue (runs complete without running a script). So a test
deploys or executes the definition with each Glue ``.sync`` task turned into the plain call:
everything else (parameters, Map, Retry, Catch, the SNS task, Fail) runs as the product renders
it. The ResultSelector goes, as a plain call's result has no JobRunState.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"
NAME = "rentalctl-pipeline"
SM_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{NAME}"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/rentalctl-sfn"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:rentalctl-alerts"
GLUE_SYNC = "arn:aws:states:::glue:startJobRun.sync"
GLUE_REQUEST_RESPONSE = "arn:aws:states:::glue:startJobRun"


def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> str:
    """Fake AWS credentials and region for tests on moto; returns the region.

    moto intercepts the calls in process, so the credentials need only exist. Nothing real may
    leak into a test: a developer's profile, session token or credentials would authenticate
    against AWS, and an endpoint override (AWS_ENDPOINT_URL or a per-service
    AWS_ENDPOINT_URL_*) would send the calls past moto to a real server.
    """
    for var in list(os.environ):
        if var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL") or var.startswith(
            "AWS_ENDPOINT_URL_"
        ):
            monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    return REGION


@contextmanager
def moto_executing_state_machines() -> Iterator[None]:
    """moto intercepting every AWS call, its Step Functions running each execution's states (by
    default moto only records an execution as started). Needs ``fake_aws_credentials``."""
    from moto import mock_aws

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield


def glue_sync_stand_in(node: Any) -> tuple[Any, int]:
    """The definition with each Glue ``.sync`` task made a plain ``startJobRun``, and how many
    tasks were changed."""
    if isinstance(node, list):
        pairs = [glue_sync_stand_in(v) for v in node]
        return [p[0] for p in pairs], sum(p[1] for p in pairs)
    if not isinstance(node, dict):
        return node, 0
    out, replaced = {}, 0
    for key, value in node.items():
        out[key], n = glue_sync_stand_in(value)
        replaced += n
    if out.get("Resource") == GLUE_SYNC:
        out["Resource"] = GLUE_REQUEST_RESPONSE
        out.pop("ResultSelector", None)
        replaced += 1
    return out, replaced


@contextmanager
def jobs_run_in_process(
    ctx: Any, jobs: tuple[str, ...] = ("begin", "record-failure")
) -> Iterator[None]:
    """moto's Glue completes a job run without running anything; inside this block a run of one
    of ``jobs`` also runs that rentalctl job here, with the run's arguments, as Glue would. (The
    other jobs need the source and the warehouse, which moto does not have.)"""
    from moto.glue.models import GlueBackend

    from rentalctl.jobs import run_job

    real = GlueBackend.start_job_run
    prefix = ctx.settings.aws.glue_job_prefix + "-"

    def start_job_run(self: Any, name: str, arguments: Any, *args: Any, **kwargs: Any) -> str:
        job = name.removeprefix(prefix)
        if job in jobs:
            run_job(ctx, job, dict(arguments or {}))
        return real(self, name, arguments, *args, **kwargs)

    GlueBackend.start_job_run = start_job_run  # type: ignore[method-assign]
    try:
        yield
    finally:
        GlueBackend.start_job_run = real  # type: ignore[method-assign]
