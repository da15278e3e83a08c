"""What ``deploy-sfn`` manages, as values: the state machine and its EventBridge Scheduler
schedule as the configuration asks for them (rendered and checked), and as read back from AWS,
compared field by field (``rentalctl.deploy.sfn`` plans and executes the difference).

What is compared: the definition (parsed JSON, so key order and whitespace do not matter), the
role, the logging configuration and tracing (kept off). Logging sends errors only and never the
execution data, which may carry row samples, to the configured log group.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from rentalctl.config import Settings
from rentalctl.errors import ConfigError
from rentalctl.orchestration import statemachine

#: Input of a scheduled execution. The state machine's Plan state fills in the rest (run id from
#: the execution name, the configured tables).
SCHEDULE_INPUT = {"mode": "incremental"}


@dataclass(frozen=True)
class Logging:
    """The state machine's logging: ERROR level, without execution data, to the log group."""

    level: str
    include_execution_data: bool
    log_group_arn: str | None

    @classmethod
    def for_settings(cls, settings: Settings) -> Logging:
        arn = settings.aws.state_machine_log_group_arn
        if not arn:
            return cls("OFF", False, None)
        # Step Functions wants the ARN of the log group's streams: the group's ARN plus ":*".
        return cls("ERROR", False, arn if arn.endswith(":*") else f"{arn}:*")

    @classmethod
    def from_api(cls, doc: dict[str, Any] | None) -> Logging:
        doc = doc or {}
        groups = [
            d.get("cloudWatchLogsLogGroup", {}).get("logGroupArn")
            for d in doc.get("destinations") or []
        ]
        return cls(
            str(doc.get("level", "OFF")),
            bool(doc.get("includeExecutionData", False)),
            groups[0] if groups else None,
        )

    def api(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "level": self.level,
            "includeExecutionData": self.include_execution_data,
        }
        if self.log_group_arn:
            doc["destinations"] = [{"cloudWatchLogsLogGroup": {"logGroupArn": self.log_group_arn}}]
        return doc


@dataclass(frozen=True)
class StateMachineSpec:
    """A state machine as rentalctl manages it (desired, or read back from AWS)."""

    name: str
    definition: str  # JSON text, as sent to (or returned by) Step Functions
    role_arn: str
    logging: Logging
    tracing: bool = False
    type: str = "STANDARD"

    def document(self) -> dict[str, Any]:
        return dict(json.loads(self.definition))

    def pretty(self) -> str:
        """The definition pretty-printed with sorted keys: what the diff compares."""
        return json.dumps(self.document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def differences(self, other: StateMachineSpec) -> tuple[str, ...]:
        """The managed fields in which ``other`` differs from this one."""
        pairs = {
            "definition": (self.document(), other.document()),
            "role_arn": (self.role_arn, other.role_arn),
            "logging": (self.logging, other.logging),
            "tracing": (self.tracing, other.tracing),
        }
        return tuple(name for name, (mine, theirs) in pairs.items() if mine != theirs)

    def public(self) -> dict[str, Any]:
        return {
            "role_arn": self.role_arn,
            "logging": asdict(self.logging),
            "tracing": self.tracing,
            "type": self.type,
        }


@dataclass(frozen=True)
class ScheduleSpec:
    """An EventBridge Scheduler schedule that starts the state machine."""

    name: str
    expression: str
    target_arn: str
    role_arn: str
    input: str  # JSON text
    state: str = "ENABLED"

    def differences(self, other: ScheduleSpec) -> tuple[str, ...]:
        mine, theirs = self.public(), other.public()  # the input compared as parsed JSON
        return tuple(name for name in mine if mine[name] != theirs[name])

    def public(self) -> dict[str, Any]:
        return {
            "expression": self.expression,
            "target_arn": self.target_arn,
            "role_arn": self.role_arn,
            "input": _json_or_text(self.input),
            "state": self.state,
        }


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def desired_state_machine(settings: Settings) -> StateMachineSpec:
    """The state machine the configuration asks for (rendered and validated)."""
    if settings.target != "aws":
        raise ConfigError(
            f"deploy-sfn deploys to AWS Step Functions: set target: aws (the profile "
            f"{settings.config_file} has target: {settings.target})"
        )
    role = settings.aws.state_machine_role_arn
    if not role:
        raise ConfigError(
            "aws.state_machine_role_arn is required to deploy the state machine: the IAM role "
            "Step Functions runs it with (`rentalctl iam-policy state-machine` prints its policy)"
        )
    try:
        definition = statemachine.render(settings)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return StateMachineSpec(
        name=settings.aws.state_machine_name,
        definition=json.dumps(definition, indent=2, ensure_ascii=False),
        role_arn=role,
        logging=Logging.for_settings(settings),
    )


def desired_schedule(settings: Settings, state_machine_arn: str) -> ScheduleSpec | None:
    """The schedule the configuration asks for, or None when ``aws.schedule`` is not set."""
    expression = settings.aws.schedule
    if not expression:
        return None
    if not settings.aws.scheduler_role_arn:
        raise ConfigError(
            "aws.scheduler_role_arn is required with aws.schedule: the IAM role EventBridge "
            "Scheduler starts the state machine with (it needs states:StartExecution on "
            f"{state_machine_arn})"
        )
    return ScheduleSpec(
        name=settings.aws.state_machine_name,
        expression=expression,
        target_arn=state_machine_arn,
        role_arn=settings.aws.scheduler_role_arn,
        input=json.dumps(SCHEDULE_INPUT),
    )
