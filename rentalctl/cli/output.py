"""How commands talk to the user: results on stdout (text or one JSON document), everything else
(progress, warnings, errors) on stderr, so ``--output json`` is always machine-readable."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from rentalctl.config import Settings


def _default(value: Any) -> Any:
    if isinstance(value, Decimal | Path):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(doc: Any) -> str:
    return json.dumps(doc, default=_default, indent=2, ensure_ascii=False)


def _console(stderr: bool) -> Console:
    """A rich console; wide when it writes to a file or a pipe, where rich would assume 80
    columns and squeeze tables."""
    from rich.console import Console

    console = Console(stderr=stderr, soft_wrap=True)
    return console if console.is_terminal else Console(stderr=stderr, soft_wrap=True, width=160)


@dataclass
class AppState:
    """The global options, and the settings loaded from them on first use."""

    config: str | None = None
    profile: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    output: str = "text"
    verbose: bool = False
    _settings: Settings | None = None

    @property
    def json(self) -> bool:
        return self.output == "json"

    def settings(self) -> Settings:
        if self._settings is None:
            from rentalctl import config

            self._settings = config.load(self.config, self.profile, self.overrides)
        return self._settings

    def argv(self) -> list[str]:
        """The global options again, for a child process that must see the same settings."""
        out: list[str] = []
        if self.config:
            out += ["--config", self.config]
        if self.profile:
            out += ["--profile", self.profile]
        for key, value in self.overrides.items():
            out += ["--set", f"{key}={value}"]
        return out + (["--verbose"] if self.verbose else [])

    def stdout(self) -> Console:
        return _console(stderr=False)

    def stderr(self) -> Console:
        return _console(stderr=True)

    def emit(self, doc: Any, render: Callable[[Console], None]) -> None:
        """Print a command's result: ``doc`` as JSON, or ``render`` it as text."""
        if self.json:
            sys.stdout.write(to_json(doc) + "\n")
        else:
            render(self.stdout())

    def can_ask(self) -> bool:
        """Whether a person can answer a question: text output and a terminal on stdin."""
        return not self.json and sys.stdin.isatty()

    def show_progress(self) -> bool:
        """Progress bars only for a person watching a terminal."""
        return not self.json and sys.stderr.isatty()
