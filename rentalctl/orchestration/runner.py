"""Where a run goes: one interface over the two places that run the pipeline, picked from the
settings in one place (``targets.open_runner``), as the Context picks adapters.

``LocalRunner`` (local.py) runs the state machine in this process, or in a process of its own
started for it; ``StepFunctionsRunner`` (aws_run.py) starts an execution of the deployed state
machine and follows its history. A command says what to run (``Launch``) and whether to wait;
which target runs it, and how, is the runner's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rentalctl.context import Context
from rentalctl.orchestration.resume import check_resumable

#: ``progress(state name, what happened, every state so far)``, at each state change
Progress = Callable[[str, str, dict[str, dict[str, Any]]], None]


@dataclass(frozen=True)
class Launch:
    """What a run is to do: its id, mode, window and tables."""

    run_id: str
    mode: str
    since: str | None
    until: str | None
    tables: list[str]
    #: the resume's number (1 for a run's first resume), or None for a new run
    resume: int | None = None


def resumed_launch(context: Context, run_id: str) -> Launch:
    """A failed run's launch again, as it was (or ConfigError saying why it cannot be)."""
    record = check_resumable(context, run_id)
    return Launch(
        run_id,
        record.get("mode") or "incremental",
        record.get("since"),
        record.get("until"),
        list(record.get("tables") or []),
        resume=len(record.get("attempts") or []) + 1,
    )


@dataclass(frozen=True)
class Started:
    """A run left to go on by itself: its document (id, STARTED, mode, tables and where to
    look) and the same in words."""

    doc: dict[str, Any]
    words: str


@dataclass(frozen=True)
class Ended:
    """A run followed to its end: its record, and the signal that cancelled it, if one did."""

    record: dict[str, Any]
    signum: int | None = None


class Runner(ABC):
    #: whether a resumed run can be left to go on by itself (``run --resume --no-wait``)
    resumes_in_background: bool

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the runs it starts are recorded, as the operator knows the place."""

    @abstractmethod
    def start(self, launch: Launch) -> Started:
        """Start the run and return at once."""

    @abstractmethod
    def run(self, launch: Launch, progress: Progress | None = None) -> Ended:
        """Start the run and follow it to its end, calling ``progress`` at each state change."""
