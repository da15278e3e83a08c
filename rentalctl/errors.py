"""The error types rentalctl raises on purpose, each with the exit code the CLI maps it to.

Anything else that escapes is a bug: the CLI reports it as an internal error (exit 1) and shows
the traceback only with --verbose.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """Documented exit codes (docs/contract.md, "Exit codes")."""

    OK = 0
    PIPELINE_FAILED = 1
    USAGE = 2
    UNAVAILABLE = 3
    LOCKED = 4
    INTERRUPTED = 130  # 128 + SIGINT, as shells report a process Ctrl-C stopped
    TERMINATED = 143  # 128 + SIGTERM


class RentalctlError(Exception):
    """Base of every expected error; the message is shown to the user as one line."""

    exit_code: ExitCode = ExitCode.PIPELINE_FAILED
    kind = "error"


class PipelineFailed(RentalctlError):
    """The pipeline ran and a step or a data-quality gate failed."""

    exit_code = ExitCode.PIPELINE_FAILED
    kind = "pipeline_failed"


class ConfigError(RentalctlError):
    """Invalid configuration or usage."""

    exit_code = ExitCode.USAGE
    kind = "config_error"


class InvalidSetting(ConfigError):
    """One configuration value is wrong: names the key, the value, where it came from and what
    would be accepted."""

    def __init__(self, key: str, value: object, expected: str, origin: str | None = None) -> None:
        where = f" (from {origin})" if origin else ""
        super().__init__(f"invalid setting {key} = {value!r}{where}: expected {expected}")
        self.key = key
        self.value = value
        self.expected = expected
        self.origin = origin


class ResourceUnavailable(RentalctlError):
    """A database, bucket, table or credential could not be reached."""

    exit_code = ExitCode.UNAVAILABLE
    kind = "resource_unavailable"


class LockHeld(RentalctlError):
    """Another run holds the pipeline lock."""

    exit_code = ExitCode.LOCKED
    kind = "lock_held"


class Cancelled(RentalctlError):
    """The run was stopped by a signal (Ctrl-C: 130, SIGTERM: 143) and recorded CANCELLED."""

    kind = "cancelled"

    def __init__(self, message: str, exit_code: int = ExitCode.INTERRUPTED) -> None:
        super().__init__(message)
        self.exit_code = ExitCode(exit_code)


class StoppedFollowing(RentalctlError):
    """Ctrl-C while following an AWS run: this process stops, the execution goes on."""

    exit_code = ExitCode.INTERRUPTED
    kind = "interrupted"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"did you mean X?"`` for the closest of ``choices`` to a mistyped ``word``, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {' or '.join(close)}?" if close else ""


def unknown_name(what: str, word: str, choices: Iterable[str], listed: bool = True) -> str:
    """The message for a name that is not one of ``choices``: the closest names first, then the
    whole list if it is short enough to read (``listed``).

    ``unknown table 'bokings': did you mean bookings? (expected one of apartments, …)``
    """
    choices = list(choices)
    hint = did_you_mean(word, choices)
    if not listed:
        return f"unknown {what} {word!r}" + (f": {hint}" if hint else "")
    expected = f"expected one of {', '.join(choices)}"
    return f"unknown {what} {word!r}: " + (f"{hint} ({expected})" if hint else expected)


# A run's recorded error is {"Error": NAME, "Cause": TEXT}, the names Step Functions and the jobs
# use (States.TaskFailed, Rentalctl.PipelineFailed). People read the cause; a name alone is said
# in words.
_ERROR_WORDS = {
    "States.Timeout": "a step ran out of time",
    "States.HeartbeatTimeout": "a step stopped answering",
    "States.TaskFailed": "a step failed",
    "Rentalctl.LockHeld": "another run holds the pipeline lock",
    "Rentalctl.ResourceUnavailable": "a resource could not be reached",
    "Rentalctl.ConfigError": "a configuration error",
    "Rentalctl.PipelineFailed": "a step failed",
}
_ERROR_NAME = re.compile(r"^(?:(?:States|Rentalctl)\.[A-Za-z.]+: )+")


def error_words(error: Mapping[str, Any] | None) -> str:
    """A recorded error as the user reads it: its cause without error-name prefixes."""
    error = error or {}
    cause = _ERROR_NAME.sub("", str(error.get("Cause") or "")).strip()
    if cause:
        return cause
    name = str(error.get("Error") or "")
    return _ERROR_WORDS.get(name) or (name.rpartition(".")[2] or "failed")


def failure_kind(error: Mapping[str, Any] | None) -> type[RentalctlError]:
    """The error (and so the exit code) of a run that failed with ``error``: a refusal for the
    lock (4), a resource still unreachable after the retries (3), any other failure (1)."""
    name = str((error or {}).get("Error") or "")
    kinds: dict[str, type[RentalctlError]] = {
        "Rentalctl.LockHeld": LockHeld,
        "Rentalctl.ResourceUnavailable": ResourceUnavailable,
    }
    return kinds.get(name, PipelineFailed)
