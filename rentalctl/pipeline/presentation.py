"""Build the presentation layer: the seven KPI tables of docs/contract.md §6.

Every refresh recomputes each table from the whole curated layer (DELETE, then INSERT ... SELECT)
and runs, DDL included, as one warehouse transaction: readers see either the previous layer or
the new one, never a half-refreshed one, and a failure leaves the previous layer in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rentalctl.sqlfiles import KPI_TABLES, presentation_refresh

if TYPE_CHECKING:
    from rentalctl.adapters.warehouse import Warehouse

SCHEMA = "presentation"


def refresh_presentation(warehouse: Warehouse) -> dict[str, int]:
    """Refresh every KPI table in one transaction; returns the rows of each table afterwards."""
    warehouse.execute_transaction(presentation_refresh(warehouse.dialect))
    counts: dict[str, int] = {}
    for table in KPI_TABLES:  # identifiers from code, never from input
        ((rows,),) = warehouse.query(f"SELECT COUNT(*) FROM {SCHEMA}.{table}")
        counts[table] = int(rows)
    return counts
