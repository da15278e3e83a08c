"""``status --watch``: off a terminal the view is printed again only when it changes, until no
run in it is RUNNING; with -o json it is refused (one JSON document per command)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from rentalctl import config
from rentalctl.context import Context
from tests.support.cli import invoke

RUN = "20261204T120000Z-abc123"


def _record(status: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "run_id": RUN,
        "mode": "incremental",
        "status": status,
        "started_at": "2026-12-04T12:00:00+00:00",
        "tables": ["bookings"],
        "states": [
            {
                "name": "Begin",
                "status": status if status != "RUNNING" else "RUNNING",
                "started_at": "2026-12-04T12:00:01+00:00",
            }
        ],
    }
    if status != "RUNNING":
        record["ended_at"] = "2026-12-04T12:00:11+00:00"
        record["states"][0].update(ended_at="2026-12-04T12:00:11+00:00", seconds=10.0)
    return record


def test_watch_prints_each_change_until_the_run_ends(home: Path) -> None:
    context = Context(config.load())
    context.state.ensure()
    context.state.put_run(_record("RUNNING"))

    def finish() -> None:
        time.sleep(1.0)
        context.state.put_run(_record("SUCCEEDED"))

    threading.Thread(target=finish, daemon=True).start()
    result = invoke("status", "--watch", "--interval", "0.2", RUN)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert [line.rstrip() for line in result.stdout.splitlines()] == [
        f"Run {RUN} (incremental): RUNNING",
        " state  status   seconds  attempts  job run  error",
        " Begin  RUNNING",
        "  steps done: none",
        "  steps not done: extract[bookings], load-raw[bookings], transform, merge, "
        "presentation, commit-bookmarks, archive",
        "",
        f"Run {RUN} (incremental): SUCCEEDED in 11.0 s",
        " state  status     seconds  attempts  job run  error",
        " Begin  SUCCEEDED  10.0",
    ]


def test_watch_with_json_output_is_refused(home: Path) -> None:
    result = invoke("-o", "json", "status", "--watch")
    assert result.exit_code == 2
    message = (
        "Invalid value for --watch: --watch is for a terminal; with --output json run "
        "`rentalctl -o json status` as often as needed, or follow a run with "
        "`rentalctl logs --follow RUN_ID`"
    )
    assert result.stderr == f"error: {message}\n"
    assert json.loads(result.stdout) == {
        "error": {"kind": "usage_error", "message": message, "exit_code": 2}
    }
