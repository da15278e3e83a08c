"""One or two examples for each command's --help, in one place so they stay alike.

Help is rendered as Markdown: each example is a paragraph of its own, the command in backticks.
"""

from __future__ import annotations

EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "demo-data": [
        ("rentalctl demo-data --scale 0.1", "a tenth of the default size"),
        ("rentalctl demo-data --changes", "a day of changes on top, for the next run to pick up"),
    ],
    "seed-bookmarks": [
        ("rentalctl seed-bookmarks", "create the store and show the bookmarks"),
        ("rentalctl seed-bookmarks --reset bookings --yes", "the next run reads all bookings"),
    ],
    "run": [
        ("rentalctl run", "run once and follow it"),
        ("rentalctl run --tables bookings --dry-run", "what a run of bookings would read"),
    ],
    "status": [
        ("rentalctl status", "the recent runs"),
        ("rentalctl status --watch RUN_ID", "one run state by state, refreshed until it ends"),
    ],
    "backfill": [
        ("rentalctl backfill --since 2025-03-01 --until 2025-03-07", "re-read one week"),
        ("rentalctl backfill --since 2025-03-01 --tables bookings --dry-run", "look first"),
    ],
    "cancel": [
        ("rentalctl cancel RUN_ID", "stop a run started elsewhere; it is settled as failed"),
    ],
    "kpis": [
        ("rentalctl kpis", "the seven KPI tables"),
        ("rentalctl kpis popular_locations --since 2025-01-01 -o csv > cities.csv", "to a sheet"),
    ],
    "report": [
        ("rentalctl report --open", "write the report and open it"),
        ("rentalctl report --output-file /tmp/marketplace.html", "somewhere else"),
    ],
    "upload-scripts": [
        ("rentalctl --profile aws upload-scripts --dry-run", "what would be uploaded"),
        ("rentalctl --profile aws upload-scripts", "ship the scripts, define the jobs"),
    ],
    "deploy-sfn": [
        ("rentalctl --profile aws deploy-sfn --dry-run", "the definition and its diff"),
        ("rentalctl --profile aws deploy-sfn", "create or update the state machine"),
    ],
    "iam-policy": [
        ("rentalctl --profile aws iam-policy glue-job > glue-job-policy.json", "for IAM"),
    ],
    "doctor": [
        ("rentalctl doctor", "settings, versions and a check of each resource"),
        ("rentalctl --profile aws doctor -o json", "the AWS profile's, as JSON"),
    ],
    "logs": [
        ("rentalctl logs 20250301T120000Z-1a2b3c", "what a run did"),
        ("rentalctl logs --follow 20250301T120000Z-1a2b3c", "until it ends"),
    ],
    "bookmarks show": [
        ("rentalctl bookmarks show", "every table's bookmark"),
        ("rentalctl bookmarks show -o json", "as JSON"),
    ],
    "bookmarks history": [
        ("rentalctl bookmarks history bookings", "every change of one bookmark"),
    ],
    "bookmarks set": [
        ("rentalctl bookmarks set bookings '2025-03-01 00:00:00' --dry-run", "look first"),
        ("rentalctl bookmarks set user_viewing 120000 --yes", "in a script"),
    ],
    "bookmarks rewind": [
        ("rentalctl bookmarks rewind bookings --by 2h", "read the last two hours again"),
        ("rentalctl bookmarks rewind user_viewing --by 500 --yes", "500 viewings, by id"),
    ],
}


def examples(command: str) -> str:
    """The --help epilog of ``command`` (``"bookmarks set"`` for a sub-command)."""
    return "**Examples**\n\n" + "\n\n".join(
        f"`{line}`  # {what}" for line, what in EXAMPLES[command]
    )
