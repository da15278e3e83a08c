"""``rentalctl upload-scripts``: ship the Glue entrypoint, job library and its dependencies' wheels,
SQL and config, and create or update the Glue job definitions (plan, then execute; ``--dry-run``
stops at the plan).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from rentalctl.cli.output import AppState

if TYPE_CHECKING:
    from rich.console import Console

_ACTIONS = {
    "upload": ("would upload", "uploaded"),
    "create": ("would create", "created"),
    "update": ("would update", "updated"),
}


def upload_scripts(
    ctx: typer.Context,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print what would be uploaded, created or updated; change nothing."
        ),
    ] = False,
) -> None:
    """Ship the Glue scripts and the job library to the lake, and define the Glue jobs.

    Uploads the Glue entrypoint, the library wheel and a wheel of each of its dependencies for
    each Glue runtime (downloaded once with pip into the rentalctl home: the jobs install them
    with no package index), the SQL files and the effective config to the lake's scripts prefix
    (only files whose content changed), then creates or updates one Glue job per pipeline job
    (only where the definition differs). Needs an s3:// lake.url and aws.glue_role_arn.
    """
    state: AppState = ctx.obj
    settings = state.settings()
    from rentalctl.deploy import glue
    from rentalctl.deploy.clients import Clients

    clients = Clients.create(settings)
    the_plan = glue.plan(settings, clients)
    outcome = None if dry_run else glue.execute(the_plan, clients)
    doc = glue.report(the_plan, outcome)

    def render(console: Console) -> None:
        from rich.table import Table

        out = Table("kind", "name", "action", "detail", box=None)
        for f in doc["files"]:
            action = _shown(f["action"], dry_run)
            out.add_row("file", f["path"], action, f"{f['reason']}, {f['size']:,} bytes")
        for j in doc["jobs"]:
            detail = ", ".join(j["changes"]) if j["changes"] else j["type"]
            out.add_row("job", j["name"], _shown(j["action"], dry_run), detail)
        console.print(f"Scripts location: {doc['location']}")
        console.print(out)
        console.print(_summary(doc))

    state.emit(doc, render)


def _shown(action: str, dry_run: bool) -> str:
    if action not in _ACTIONS:
        return action
    return _ACTIONS[action][0 if dry_run else 1]


def _summary(doc: dict[str, Any]) -> str:
    files = [f for f in doc["files"] if f["action"] == "upload"]
    jobs = [j for j in doc["jobs"] if j["action"] != "unchanged"]
    if not files and not jobs:
        return (
            f"Nothing to do: {len(doc['files'])} files and {len(doc['jobs'])} Glue jobs "
            "are up to date."
        )
    created = sum(j["action"] == "create" for j in jobs)
    counts = f"{len(files)} file(s) to upload, {created} job(s) to create, "
    counts += f"{len(jobs) - created} job(s) to update"
    if doc["dry_run"]:
        return f"Dry run, nothing changed: {counts}."
    done = doc["done"]
    return (
        f"Uploaded {len(done['uploaded'])} file(s), created {len(done['created'])} job(s), "
        f"updated {len(done['updated'])} job(s)."
    )
