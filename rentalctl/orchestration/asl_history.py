"""The event history of a local execution, shaped like ``GetExecutionHistory``.

Events' ``previousEventId`` is the event before it in its own thread of execution (its strand),
as on AWS: an iteration's first event names MapIterationStarted, which names MapStateStarted;
the Map's closing events name the last event of the history. Events are numbered, recorded and
passed to ``on_event`` one at a time, whichever thread emits them. Event types and detail
fields are AWS's (TaskScheduled/Started/Succeeded/Failed, {Pass,Task,Map,Succeed}StateEntered/
Exited, FailStateEntered, MapStateStarted/Succeeded/Failed, MapIteration*, Execution*); a caught
failure exits its state (StateExited carries the catcher's output), as on AWS.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rentalctl.orchestration.clock import Clock

NOT_TRUNCATED = {"truncated": False}  # the inputDetails/outputDetails of every event


class Stopped(Exception):
    """A strand stopped because the execution was stopped, or another iteration of its Map (or
    of an enclosing one) failed. Not a failure: no Retry or Catch sees it."""


@dataclass
class Strand:
    """One thread of execution: the top level, or one Map iteration. Its next event names
    ``last_event`` as its previous one; ``stops`` are the stop signals of the Maps it runs in
    (and of the execution)."""

    last_event: int = 0
    stops: tuple[threading.Event, ...] = ()

    def check(self) -> None:
        if any(stop.is_set() for stop in self.stops):
            raise Stopped()


class History:
    """The events of one execution. One lock over the events and whatever is recorded along with
    them (the tasks' logs): events get their ids in the order they are recorded and reach
    ``on_event`` one at a time."""

    def __init__(
        self,
        events: list[dict[str, Any]],
        clock: Clock,
        on_event: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.events = events
        self.clock = clock
        self.on_event = on_event
        self.lock = threading.RLock()
        self._local = threading.local()  # .strand: the strand the current thread runs

    @property
    def strand(self) -> Strand:
        strand: Strand = self._local.strand
        return strand

    def enter(self, strand: Strand) -> None:
        """The current thread runs ``strand`` from now on."""
        self._local.strand = strand

    def emit(self, type_: str, details: dict[str, Any] | None, key: str = "") -> int:
        event: dict[str, Any] = {"timestamp": self.clock.now(), "type": type_}
        if details is not None:  # a copy each: consumers may keep or change events
            event[key or type_[0].lower() + type_[1:] + "EventDetails"] = copy.deepcopy(details)
        with self.lock:
            event = {"id": len(self.events) + 1, "previousEventId": self.strand.last_event, **event}
            self.events.append(event)
            self.strand.last_event = event["id"]
            if self.on_event is not None:
                self.on_event(event)
        return int(event["id"])

    def catch_up(self, strand: Strand) -> None:
        """``strand``'s next event follows the last one recorded, whichever strand wrote it."""
        with self.lock:
            strand.last_event = len(self.events)


def iso(moment: datetime) -> str:
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def resource_parts(arn: str, region: str) -> tuple[str, str, str]:
    """(resourceType, resource, region) as TaskScheduled shows them."""
    parts = arn.split(":")
    if len(parts) >= 7 and parts[2] == "states":  # arn:aws:states:::glue:startJobRun.sync
        return parts[5], ":".join(parts[6:]), parts[3] or region
    if len(parts) >= 4:
        return parts[2], arn, parts[3] or region
    return "unknown", arn, region
