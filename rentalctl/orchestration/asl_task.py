"""What a Task state's handler receives and may raise: the contract between the local executor
and the code that does a task's work (``local.py`` wires the pipeline's jobs to it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class TaskFailed(Exception):
    """Raised by a task handler: the task fails with this error name and cause."""

    def __init__(self, error: str, cause: str = "") -> None:
        super().__init__(f"{error}: {cause}" if cause else error)
        self.error = error
        self.cause = cause


@dataclass(frozen=True)
class TaskContext:
    state_name: str
    execution_name: str
    attempt: int  # 1 for the first try, 2 for the first retry, ...
    resource: str
    log: Callable[[str], None]


Handler = Callable[[Any, TaskContext], Any]
