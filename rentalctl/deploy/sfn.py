"""``deploy-sfn``: put the state machine rendered from config (and its optional schedule) on AWS.

As in chalice's deployer, the work is split in two: ``plan`` reads what is deployed and decides,
for the state machine and for its EventBridge Scheduler schedule, to create, update, delete or
leave alone (frozen dataclasses, no side effect); ``execute`` carries the plan out. ``--dry-run``
is the same code without ``execute``.

The desired and deployed resources are the values of ``rentalctl.deploy.sfn_specs``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from rentalctl import aws
from rentalctl.config import Settings
from rentalctl.deploy.clients import Clients
from rentalctl.deploy.sfn_specs import (
    Logging,
    ScheduleSpec,
    StateMachineSpec,
    desired_schedule,
    desired_state_machine,
)
from rentalctl.errors import ConfigError, ResourceUnavailable

# Codes meaning AWS refused a value that comes from the configuration (exit 2).
_INVALID = {
    "InvalidDefinition",
    "InvalidLoggingConfiguration",
    "InvalidTracingConfiguration",
    "InvalidArn",
    "InvalidName",
    "ValidationException",
    "StateMachineTypeNotSupported",
}


@dataclass(frozen=True)
class Action:
    """What the plan does to one resource: create, update, unchanged, delete or none."""

    resource: str  # "state machine" or "schedule"
    name: str
    verb: str
    changes: tuple[str, ...] = ()
    note: str = ""  # something the user should know, e.g. a check that could not be made


@dataclass(frozen=True)
class DeployPlan:
    arn: str  # of the state machine, deployed or to be
    desired: StateMachineSpec
    deployed: StateMachineSpec | None
    state_machine: Action
    schedule_desired: ScheduleSpec | None
    schedule_deployed: ScheduleSpec | None
    schedule: Action
    diff: str  # unified diff of the deployed definition against the rendered one

    @property
    def changes_anything(self) -> bool:
        return any(a.verb not in ("unchanged", "none") for a in (self.state_machine, self.schedule))


# ---------------------------------------------------------------------------------------- plan


def plan(settings: Settings, clients: Clients) -> DeployPlan:
    """Compare what the configuration asks for with what is deployed; changes nothing."""
    desired = desired_state_machine(settings)
    desired_schedule(settings, "the state machine")  # a missing setting fails before any call
    arn = aws.state_machine_arn(clients.session, desired.name)
    deployed = read_state_machine(clients, arn)
    if deployed is None:
        sm_action = Action("state machine", desired.name, "create")
    else:
        if deployed.type != desired.type:
            raise ConfigError(
                f"state machine {arn} is of type {deployed.type}; rentalctl deploys a "
                f"{desired.type} state machine: delete it, or set aws.state_machine_name to "
                f"another name"
            )
        changes = deployed.differences(desired)
        sm_action = Action(
            "state machine", desired.name, "update" if changes else "unchanged", changes
        )

    schedule_desired = desired_schedule(settings, arn)
    name = settings.aws.state_machine_name
    if schedule_desired is None:
        # No schedule wanted: only a leftover one matters, and credentials that may not read
        # schedules (a deployer who never uses them) must not block the deploy.
        try:
            schedule_deployed = read_schedule(clients, name)
        except ResourceUnavailable as exc:
            schedule_deployed = None
            note = f"could not check for a schedule {name} to delete: {exc}"
            schedule_action = Action("schedule", name, "none", note=note)
        else:
            verb = "delete" if schedule_deployed is not None else "none"
            schedule_action = Action("schedule", name, verb)
    else:
        schedule_deployed = read_schedule(clients, name)
        if schedule_deployed is None:
            schedule_action = Action("schedule", name, "create")
        else:
            changes = schedule_deployed.differences(schedule_desired)
            verb = "update" if changes else "unchanged"
            schedule_action = Action("schedule", name, verb, changes)

    before = deployed.pretty() if deployed else ""
    diff = "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            desired.pretty().splitlines(keepends=True),
            fromfile=f"deployed: {arn}" if deployed else "deployed: (none)",
            tofile=f"rendered: {settings.config_file}",
        )
    )
    return DeployPlan(
        arn=arn,
        desired=desired,
        deployed=deployed,
        state_machine=sm_action,
        schedule_desired=schedule_desired,
        schedule_deployed=schedule_deployed,
        schedule=schedule_action,
        diff=diff,
    )


def read_state_machine(clients: Clients, arn: str) -> StateMachineSpec | None:
    with aws.errors(f"reading state machine {arn}", invalid=_INVALID):
        doc = aws.or_none(
            lambda: clients.sfn.describe_state_machine(stateMachineArn=arn),
            "StateMachineDoesNotExist",
        )
    if doc is None:
        return None
    if doc.get("status") == "DELETING":
        raise ResourceUnavailable(
            f"state machine {arn} is being deleted: run deploy-sfn again once it is gone"
        )
    return StateMachineSpec(
        name=doc["name"],
        definition=doc["definition"],
        role_arn=doc["roleArn"],
        logging=Logging.from_api(doc.get("loggingConfiguration")),
        tracing=bool((doc.get("tracingConfiguration") or {}).get("enabled", False)),
        type=doc.get("type", "STANDARD"),
    )


def read_schedule(clients: Clients, name: str) -> ScheduleSpec | None:
    with aws.errors(f"reading schedule {name}", invalid=_INVALID):
        doc = aws.or_none(
            lambda: clients.scheduler.get_schedule(Name=name), "ResourceNotFoundException"
        )
    if doc is None:
        return None
    target = doc.get("Target") or {}
    return ScheduleSpec(
        name=doc["Name"],
        expression=doc.get("ScheduleExpression", ""),
        target_arn=target.get("Arn", ""),
        role_arn=target.get("RoleArn", ""),
        input=target.get("Input", ""),
        state=doc.get("State", "ENABLED"),
    )


# ------------------------------------------------------------------------------------- execute


def execute(deploy_plan: DeployPlan, clients: Clients) -> list[str]:
    """Carry the plan out; returns what was done, one sentence per change."""
    done: list[str] = []
    desired, arn = deploy_plan.desired, deploy_plan.arn
    common = {
        "definition": desired.definition,
        "roleArn": desired.role_arn,
        "loggingConfiguration": desired.logging.api(),
        "tracingConfiguration": {"enabled": desired.tracing},
    }
    if deploy_plan.state_machine.verb == "create":
        with aws.errors(f"creating state machine {desired.name}", invalid=_INVALID):
            created = clients.sfn.create_state_machine(
                name=desired.name, type=desired.type, publish=False, **common
            )
        arn = created["stateMachineArn"]
        done.append(f"created state machine {arn}")
    elif deploy_plan.state_machine.verb == "update":
        with aws.errors(f"updating state machine {arn}", invalid=_INVALID):
            clients.sfn.update_state_machine(stateMachineArn=arn, publish=False, **common)
        done.append(f"updated state machine {arn} ({', '.join(deploy_plan.state_machine.changes)})")

    schedule, action = deploy_plan.schedule_desired, deploy_plan.schedule
    if schedule is not None and action.verb in ("create", "update"):
        request = {
            "Name": schedule.name,
            "ScheduleExpression": schedule.expression,
            # Start at the scheduled time, not somewhere in a window after it.
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {"Arn": arn, "RoleArn": schedule.role_arn, "Input": schedule.input},
            "State": schedule.state,
        }
        doing = "creating" if action.verb == "create" else "updating"
        with aws.errors(f"{doing} schedule {schedule.name}", invalid=_INVALID):
            if action.verb == "create":
                clients.scheduler.create_schedule(**request)
            else:
                clients.scheduler.update_schedule(**request)
        done.append(f"{action.verb}d schedule {schedule.name} ({schedule.expression})")
    elif action.verb == "delete":
        with aws.errors(f"deleting schedule {action.name}", invalid=_INVALID):
            clients.scheduler.delete_schedule(Name=action.name)
        done.append(f"deleted schedule {action.name}: aws.schedule is not set")
    return done


def deploy(
    settings: Settings, *, dry_run: bool = False, boto3_session: Any | None = None
) -> tuple[DeployPlan, list[str]]:
    """Plan, and unless ``dry_run``, execute. Returns the plan and what was done."""
    clients = Clients.create(settings, boto3_session)
    deploy_plan = plan(settings, clients)
    return deploy_plan, ([] if dry_run else execute(deploy_plan, clients))


def report(deploy_plan: DeployPlan, done: list[str], dry_run: bool) -> dict[str, Any]:
    """The plan, the diff and what was done, as one JSON-ready document."""
    p = deploy_plan
    return {
        "dry_run": dry_run,
        "state_machine": {
            "name": p.desired.name,
            "arn": p.arn,
            "action": p.state_machine.verb,
            "changes": list(p.state_machine.changes),
            "deployed": p.deployed.public() if p.deployed else None,
            "desired": p.desired.public(),
        },
        "schedule": {
            "name": p.schedule.name,
            "action": p.schedule.verb,
            "changes": list(p.schedule.changes),
            "note": p.schedule.note or None,
            "deployed": p.schedule_deployed.public() if p.schedule_deployed else None,
            "desired": p.schedule_desired.public() if p.schedule_desired else None,
        },
        "definition": p.desired.document(),
        "diff": p.diff,
        "done": done,
    }
