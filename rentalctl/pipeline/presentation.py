"""Build the presentation layer: the seven KPI tables of docs/contract.md §6.

Every refresh recomputes each table from the whole curated layer (DELETE, then INSERT ... SELECT)
and runs, DDL included, as one warehouse transaction: readers see either the previous layer or
the new one, never a half-refreshed one, and a failure leaves the previous layer in place.

A run skips the refresh when it would change nothing. ``rentalctl.presentation_refreshed`` (the
schema of the pipeline's own bookkeeping, beside the three layers) holds one row
while the layer equals the KPI definitions applied to the curated layer as it is: the refresh
writes it (with a digest of the definitions) in its transaction, and a merge that changes any
curated row deletes it in the merge's transaction. The merge is the only writer of the curated
layer (a reset drops the schemas, the row with them), so a present row with today's digest
proves a refresh would rebuild the same tables — also after a failure between a merge and the
refresh, or under a new version whose KPI definitions differ.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from functools import cache
from typing import TYPE_CHECKING, Any

from rentalctl.resources import shipped
from rentalctl.sqlfiles import KPI_TABLES, PRESENTATION_DDL, kpi_file, presentation_refresh

if TYPE_CHECKING:
    from rentalctl.adapters.warehouse import Warehouse

SCHEMA = "presentation"
BOOKKEEPING = "rentalctl"
REFRESHED = f"{BOOKKEEPING}.presentation_refreshed"
REFRESHED_DDL = [
    f"CREATE SCHEMA IF NOT EXISTS {BOOKKEEPING}",
    f"CREATE TABLE IF NOT EXISTS {REFRESHED} "
    "(definitions VARCHAR(64) NOT NULL, run_id VARCHAR(64) NOT NULL, refreshed_at TIMESTAMP)",
]


@cache
def definitions_digest() -> str:
    """The KPI definitions (the shipped DDL and refresh files, as written) in 64 hex digits."""
    digest = hashlib.sha256()
    for name in (PRESENTATION_DDL, *(kpi_file(t) for t in KPI_TABLES)):
        digest.update(shipped(name).read_bytes())
    return digest.hexdigest()


def refresh_presentation(warehouse: Warehouse, run_id: str | None = None) -> dict[str, int]:
    """Refresh every KPI table in one transaction; returns the rows of each table afterwards.
    With ``run_id``, the transaction also records the layer as up to date."""
    statements: list[Any] = list(presentation_refresh(warehouse.dialect))
    if run_id is not None:
        p = warehouse.placeholder
        moment = datetime.now(timezone.utc).replace(tzinfo=None)
        statements += [
            *REFRESHED_DDL,
            f"DELETE FROM {REFRESHED}",
            (
                f"INSERT INTO {REFRESHED} (definitions, run_id, refreshed_at) "
                f"VALUES ({p}, {p}, {p})",
                [definitions_digest(), run_id, moment],
            ),
        ]
    warehouse.execute_transaction(statements)
    return _counts(warehouse)


def refresh_if_stale(warehouse: Warehouse, run_id: str) -> tuple[bool, dict[str, int]]:
    """Refresh unless the layer is up to date (see the module's docstring); returns whether it
    refreshed, and the rows of each table."""
    warehouse.execute_transaction(list(REFRESHED_DDL))
    rows = warehouse.query(f"SELECT definitions FROM {REFRESHED}")
    if [tuple(r) for r in rows] == [(definitions_digest(),)]:
        return False, _counts(warehouse)
    return True, refresh_presentation(warehouse, run_id)


def stale_statements(changed: list[str]) -> list[str]:
    """For the merge's transaction: forget that the layer is up to date when the merge changed
    a row. ``changed`` are scalar queries, each counting rows the merge changed."""
    total = " + ".join(f"({query})" for query in changed) or "0"
    return [*REFRESHED_DDL, f"DELETE FROM {REFRESHED} WHERE {total} > 0"]


def _counts(warehouse: Warehouse) -> dict[str, int]:
    counts: dict[str, int] = {}
    for table in KPI_TABLES:  # identifiers from code, never from input
        ((rows,),) = warehouse.query(f"SELECT COUNT(*) FROM {SCHEMA}.{table}")
        counts[table] = int(rows)
    return counts
