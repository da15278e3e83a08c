"""How a state fails in the local executor, and which Retry or Catch sees the failure.

- Path, template and intrinsic failures are ``States.Runtime``, which no Retry or Catch sees
  (AWS: "A retry or catch on States.ALL won't catch States.Runtime errors").
- ``States.TaskFailed`` in ErrorEquals matches every error but ``States.Timeout``, as AWS
  documents; ``States.ALL`` matches every error (but never ``States.Runtime``).
- Retry back-off goes through the executor's injectable clock, so tests never sleep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RUNTIME = "States.Runtime"
TIMEOUT = "States.Timeout"


class Failure(Exception):
    """A state failed with a Step Functions error name (and a cause)."""

    def __init__(self, error: str | None, cause: str | None) -> None:
        super().__init__(error, cause)
        self.error = error
        self.cause = cause


def matches(error_equals: list[str], error: str | None) -> bool:
    for name in error_equals:
        if name == "States.ALL" or name == error:
            return True
        # AWS: "States.TaskFailed acts as a wildcard that matches any known error name except
        # for States.Timeout".
        if name == "States.TaskFailed" and error != TIMEOUT:
            return True
    return False


def backoff(retrier: Mapping[str, Any], attempt: int) -> float:
    """Seconds to wait before ``attempt`` (1 for the first retry) of ``retrier``."""
    delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** (attempt - 1)
    if "MaxDelaySeconds" in retrier:
        delay = min(delay, retrier["MaxDelaySeconds"])
    return float(delay)
