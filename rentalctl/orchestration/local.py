"""Run the pipeline's state machine in this process: the definition deployed to AWS, executed by
the local executor. Each Glue task runs its job here (the Spark job on a local SparkSession) and
fails as a Glue task does on AWS (``States.TaskFailed``, the job's message in the Cause), so the
same Retry and Catch apply on both targets. SNS notifications go to the run log. This process
holds the pipeline lock throughout; the run's ``begin`` job finds it held by its own run id, and
the run record open.

``LocalRunner`` is the runner of the local target: it checks what no retry can fix before a run
starts (preflight), then runs it here, stopped by Ctrl-C or SIGTERM, or in a process of its own
that it hands the lock to (``run --no-wait``)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from rentalctl import run_records as records
from rentalctl import spark
from rentalctl.context import Context
from rentalctl.errors import RentalctlError
from rentalctl.jobs import run_job
from rentalctl.orchestration.asl_task import TaskContext, TaskFailed
from rentalctl.orchestration.cancel import StopRequest, close_cancelled
from rentalctl.orchestration.clock import Clock
from rentalctl.orchestration.executor import Executor
from rentalctl.orchestration.interrupts import run_stoppable
from rentalctl.orchestration.progress import StateTracker
from rentalctl.orchestration.resume import reopen
from rentalctl.orchestration.runner import Ended, Launch, Progress, Runner, Started
from rentalctl.orchestration.statemachine import GLUE_SYNC, SNS_PUBLISH, render
from rentalctl.pipeline.begin import abandon
from rentalctl.pipeline.child import ChildRunner
from rentalctl.preflight import before_run
from rentalctl.run.layout import log_file
from rentalctl.run_lock import PipelineLock, describe_self, is_stale

log = logging.getLogger(__name__)


def _glue(ctx: Context, stop: StopRequest | None) -> Callable[[Any, TaskContext], Any]:
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
        records.start(
            ctx, run_id, mode=mode, since=since, until=until, tables=tables, target="local"
        )
        tracker = StateTracker(tables)

        def on_event(event: dict[str, Any]) -> None:
            change = tracker.feed(event)
            if change:
                records.update(ctx, run_id, states=tracker.as_list())
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
            records.finish(
                ctx, run_id, "FAILED", error={"Error": execution.error, "Cause": execution.cause}
            )
        logs = [{**entry, "timestamp": str(entry.get("timestamp"))} for entry in execution.logs]
        return records.update(ctx, run_id, states=tracker.as_list(), logs=logs)


class LocalRunner(Runner):
    """Runs on this machine: in this process, or in a process of its own started for the run."""

    resumes_in_background = False  # a resumed run reopens its record under the lock, here

    def __init__(self, context: Context, *, options: list[str], jvm_log: bool) -> None:
        self.context = context
        self.options = options  # the command line's global options, for a background run
        self.jvm_log = jvm_log

    @property
    def where(self) -> str:
        return str(self.context.settings.home)

    def run(self, launch: Launch, progress: Progress | None = None) -> Ended:
        """Run the pipeline in this process; Ctrl-C or SIGTERM cancels the run."""
        before_run(self.context, launch.tables)
        if launch.resume is None:
            return self._run_here(launch, progress)
        # The lock is taken before the record is reopened, so no other run sees it half-done;
        # the run takes the same lock again (same run id) and releases it at its end.
        with PipelineLock(self.context.state, launch.run_id):
            reopen(self.context, launch.run_id)
            return self._run_here(launch, progress)

    def _run_here(self, launch: Launch, progress: Progress | None) -> Ended:
        if self.jvm_log:
            spark.send_jvm_output_to(log_file(self.context.settings.home, launch.run_id))
        stop = StopRequest()
        execute = partial(
            run_local,
            self.context,
            run_id=launch.run_id,
            mode=launch.mode,
            since=launch.since,
            until=launch.until,
            tables=launch.tables,
            progress=progress,
            stop=stop,
        )
        return Ended(run_stoppable(execute, stop), stop.signum)

    def start(self, launch: Launch) -> Started:
        """Start a new run in a process of its own and return at once with its id (a resumed
        run is run here only: ``resumes_in_background``)."""
        before_run(self.context, launch.tables)
        context, run_id = self.context, launch.run_id
        # Fail now, not in the background, when another run holds the lock; and keep holding it
        # until the background process takes it over (under the same run id), so that no other
        # run can start in between.
        recovered = context.state.acquire_lock(describe_self(run_id), is_stale)
        if recovered:
            abandon(context, recovered.get("run_id"), run_id)
        log_path = log_file(context.settings.home, run_id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            sys.executable,
            "-m",
            "rentalctl",
            *self.options,
            # Text: into a file, a run prints one line per state change and then its summary,
            # so the log shows the run's progress, not only its outcome.
            "--output",
            "text",
            "backfill" if launch.mode == "backfill" else "run",
            "--run-id",
            run_id,
            "--tables",
            ",".join(launch.tables),
        ]
        if launch.mode == "backfill":
            argv += ["--since", str(launch.since)] + (
                ["--until", launch.until] if launch.until else []
            )
        try:
            with open(log_path, "ab") as out:
                child = subprocess.Popen(
                    argv,
                    stdout=out,
                    stderr=out,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    env=os.environ.copy(),
                )
        except BaseException:
            context.state.release_lock(run_id)
            raise
        # Until the child takes the lock over, the lock names the child: alive while it runs.
        context.state.acquire_lock(
            describe_self(run_id, child.pid), lambda holder: holder.get("run_id") == run_id
        )
        doc = {
            "run_id": run_id,
            "status": "STARTED",
            "mode": launch.mode,
            "tables": launch.tables,
            "log": str(log_path),
        }
        return Started(
            doc,
            f"Started run {run_id} in the background; follow it with `rentalctl status {run_id}` "
            f"(log: {log_path})",
        )
