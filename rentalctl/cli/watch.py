"""``status --watch``: a view refreshed until no run in it is RUNNING.

On a terminal the screen is redrawn at each interval (durations move on); elsewhere (a pipe, a
file, CI) the view is printed again only when it changed, so a log holds each step once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rentalctl.cli.output import AppState, to_json

View = Callable[[], tuple[Any, Callable[[Any], None], bool]]


def watch_view(
    state: AppState, view: View, interval: float, sleep: Callable[[float], Any] = time.sleep
) -> None:
    console = state.stdout()
    last = None
    while True:
        doc, render, running = view()
        if console.is_terminal:
            console.clear()
            render(console)
        else:
            text = to_json(doc)
            if text != last:
                if last is not None:
                    console.print()
                render(console)
                last = text
        if not running:
            return
        sleep(interval)
