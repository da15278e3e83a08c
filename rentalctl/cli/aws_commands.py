"""``rentalctl deploy-sfn`` and ``rentalctl iam-policy``: the AWS side of the pipeline."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rentalctl.cli.output import AppState, to_json

if TYPE_CHECKING:
    from rentalctl.deploy.sfn import DeployPlan


def deploy_sfn(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the rendered definition and its difference from the deployed one; "
            "change nothing.",
        ),
    ] = False,
) -> None:
    """Render the state machine from config, then create or update it on AWS.

    Also creates, updates or deletes its EventBridge Scheduler schedule, following
    aws.schedule. The definition, the role, the logging (errors only, no execution data) and
    tracing (off) are compared with what is deployed: nothing changes when they already match.
    """
    state: AppState = ctx.obj
    settings = state.settings()
    from rentalctl.deploy import sfn as service

    deploy_plan, done = service.deploy(settings, dry_run=dry_run)
    doc = service.report(deploy_plan, done, dry_run)
    state.emit(doc, lambda console: _render(console, deploy_plan, done, dry_run))


def _render(console: Any, deploy_plan: DeployPlan, done: list[str], dry_run: bool) -> None:
    from rich.table import Table

    if dry_run:
        console.print("Rendered definition:", style="bold")
        console.print(deploy_plan.desired.pretty(), markup=False, highlight=False, end="")
        if deploy_plan.deployed is None:
            console.print("Not deployed yet: deploy-sfn would create it.", style="bold")
        elif deploy_plan.diff:
            console.print("Difference from the deployed definition:", style="bold")
            console.print(deploy_plan.diff, markup=False, highlight=False, end="")
        else:
            console.print("The deployed definition is the same.", style="bold")
    table = Table("resource", "name", "plan", "changes", box=None)
    for action in (deploy_plan.state_machine, deploy_plan.schedule):
        table.add_row(action.resource, action.name, action.verb, ", ".join(action.changes))
    console.print(table)
    for action in (deploy_plan.state_machine, deploy_plan.schedule):
        if action.note:
            console.print(f"Note: {action.note}", markup=False, highlight=False)
    if dry_run:
        what = "would change the above" if deploy_plan.changes_anything else "nothing to change"
        console.print(f"Dry run: nothing was changed ({what}).")
    for line in done:
        console.print(line[0].upper() + line[1:] + ".", markup=False, highlight=False)
    if not dry_run and not done:
        console.print("Everything is up to date.")


def iam_policy(
    ctx: typer.Context,
    role: Annotated[
        str,
        typer.Argument(
            metavar="ROLE",
            help="glue-job, state-machine or redshift-copy.",
            show_default=False,
        ),
    ],
) -> None:
    """Print the least-privilege IAM policy of one of the pipeline's roles, as JSON.

    Rendered from the configuration: the lake's bucket and prefix, the state table, the Glue job
    names, the SNS topic, the secrets, the region and the account (read from the configured role
    ARNs). Attach it as the role's inline policy; the output is the JSON document in both output
    modes.
    """
    state: AppState = ctx.obj
    from rentalctl.deploy import iam

    iam.policy_template(role)  # an unknown role is refused before the settings are read
    policy = iam.render_policy(state.settings(), role)
    sys.stdout.write(to_json(policy) + "\n")
