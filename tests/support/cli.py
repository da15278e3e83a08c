"""Running the CLI in the test process."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from rentalctl.cli import app


def invoke(*args: str) -> Any:
    """``rentalctl ARGS`` in this process (Typer's CliRunner result)."""
    return CliRunner().invoke(app, list(args))


def ok_json(*args: str) -> Any:
    """Run ``rentalctl -o json ARGS``, expect exit 0 and exactly one JSON document."""
    result = invoke("-o", "json", *args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)
