"""Opening the warehouse and the state store for reading, where "nothing has run here yet" is
an answer, not an error: a local DuckDB or SQLite file that does not exist is not created."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rentalctl import urls
from rentalctl.context import Context

if TYPE_CHECKING:
    from rentalctl.adapters.state import StateStore
    from rentalctl.adapters.warehouse import Warehouse
    from rentalctl.config import Settings


@contextmanager
def open_warehouse(settings: Settings) -> Iterator[Warehouse | None]:
    """The warehouse, or None for a local one that was never written."""
    if isinstance(settings.warehouse, urls.DuckdbURL) and not settings.warehouse.path.exists():
        yield None
        return

    with Context(settings).warehouse() as warehouse:
        yield warehouse


def state_store(ctx: Context) -> StateStore | None:
    """The state store, or None for a local one that was never created."""
    return None if ctx.state.known_empty() else ctx.state
