"""The runner of each target: the one place that maps ``target`` to a ``Runner``."""

from __future__ import annotations

from rentalctl.context import Context
from rentalctl.orchestration.runner import Runner


def open_runner(
    context: Context, *, options: list[str] | None = None, jvm_log: bool = True
) -> Runner:
    """The runner of the settings' target. A local run started in the background is the
    command run again with the global ``options``; with ``jvm_log`` a local run sends the JVM's
    output to its log file."""
    # Imported when picked: a command loads only its target's runner.
    if context.settings.target == "aws":
        from rentalctl.orchestration.aws_run import StepFunctionsRunner

        return StepFunctionsRunner(context)
    from rentalctl.orchestration.local import LocalRunner

    return LocalRunner(context, options=list(options or []), jvm_log=jvm_log)
