"""Run the pipeline's state machine in this process: the definition deployed to AWS, executed by
the local executor. Each Glue task runs its job here (the Spark job on a local SparkSession) and
fails as a Glue task does on AWS (``States.TaskFailed``, the job's message in the Cause), so the
same Retry and Catch apply on both targets. SNS notifications go to the run log. This process
holds the pipeline lock throughout; the run's ``begin`` job finds it held by its own run id, and
the run record open."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from rentalctl.context import Context
from rentalctl.errors import RentalctlError
from rentalctl.orchestration import runs
from rentalctl.orchestration.cancel import StopRequest, close_cancelled
from rentalctl.orchestration.executor import Clock, Executor, TaskContext, TaskFailed
from rentalctl.orchestration.lock import PipelineLock
from rentalctl.orchestration.progress import StateTracker
from rentalctl.orchestration.statemachine import GLUE_SYNC, SNS_PUBLISH, render

log = logging.getLogger(__name__)

Progress = Callable[[str, str, dict[str, dict[str, Any]]], None]


def _glue(ctx: Context, stop: StopRequest | None) -> Callable[[Any, TaskContext], Any]:
    from rentalctl.jobs import run_job
    from rentalctl.pipeline.child import ChildRunner

    prefix = ctx.settings.aws.glue_job_prefix + "-"
    # Tables extracted side by side (max_concurrency 0 is all at once) each get a process: their
    # work holds the interpreter lock, so threads would share one core. One at a time, the run's
    # own process does it.
    children = (
        ChildRunner(lambda: bool(stop and stop.requested))
        if ctx.settings.max_concurrency != 1
        else None
    )

    def handle(params: Any, task: TaskContext) -> Any:
        job = str(params["JobName"]).removeprefix(prefix)
        try:
            # No session is made here: the transform makes one only when it has rows to
            # transform (a run that brings nothing new never starts an engine).
            result = run_job(ctx, job, params.get("Arguments", {}), children=children)
        except RentalctlError as exc:
            # As Glue reports a failed job run to Step Functions: the error is the task's, the
            # job's own words are in the Cause (and in the lake for RecordFailure).
            raise TaskFailed("States.TaskFailed", f"{job}: {exc}") from None
        return {
            "JobName": params["JobName"],
            "Id": "_".join(
                str(part)
                for part in (
                    "local",
                    task.execution_name,
                    job,
                    params.get("Arguments", {}).get("--table"),
                    task.attempt,
                )
                if part
            ),
            "JobRunState": "SUCCEEDED",
            "Result": result,
        }

    return handle


def _sns(run_id: str) -> Callable[[Any, TaskContext], Any]:
    def handle(params: Any, task: TaskContext) -> Any:
        # The failure itself ends the command as one `error:` line; the notification is for the
        # log (and the terminal with --verbose).
        log.info("notification: %s: %s", params.get("Subject"), params.get("Message"))
        task.log(f"notification: {params.get('Subject')}: {params.get('Message')}")
        return {"MessageId": f"local-{run_id}"}

    return handle


def run_local(
    ctx: Context,
    *,
    run_id: str,
    mode: str,
    since: str | None,
    until: str | None,
    tables: list[str],
    progress: Progress | None = None,
    clock: Clock | None = None,
    stop: StopRequest | None = None,
) -> dict[str, Any]:
    """Run to the end, or until ``stop`` is requested (then the run is closed CANCELLED and
    settled); returns the final run record."""
    with PipelineLock(ctx.state, run_id):
        # Opened here too (Begin finds it open), so that a run killed before Begin is recorded.
        runs.start(ctx, run_id, mode=mode, since=since, until=until, tables=tables, target="local")
        tracker = StateTracker(tables)

        def on_event(event: dict[str, Any]) -> None:
            change = tracker.feed(event)
            if change:
                runs.update(ctx, run_id, states=tracker.as_list())
                if progress:
                    progress(change[0], change[1], tracker.states)

        executor = Executor(
            render(ctx.settings),
            {GLUE_SYNC: _glue(ctx, stop), SNS_PUBLISH: _sns(run_id)},
            clock=clock,
            on_event=on_event,
            state_machine_name="rentalctl-pipeline",
        )
        execution = executor.execute(
            {"run_id": run_id, "mode": mode, "since": since, "until": until, "tables": tables},
            name=run_id,
            stop=stop.event if stop else None,
        )
        record = ctx.state.get_run(run_id) or {}
        if execution.status == "ABORTED" and record.get("status") == "RUNNING":
            close_cancelled(ctx, run_id, (stop.reason if stop else None) or "cancelled")
        elif execution.status != "SUCCEEDED" and record.get("status") != "FAILED":
            # The failure path could not record it (the state store itself may be the problem).
            runs.finish(
                ctx, run_id, "FAILED", error={"Error": execution.error, "Cause": execution.cause}
            )
        logs = [{**entry, "timestamp": str(entry.get("timestamp"))} for entry in execution.logs]
        return runs.update(ctx, run_id, states=tracker.as_list(), logs=logs)
