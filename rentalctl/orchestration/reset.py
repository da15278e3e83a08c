"""Start over: remove everything built from the source's data, for ``demo-data --replace``.

When the source is replaced, what the pipeline built from the old data no longer describes it:
its bookmarks point past the new data's timestamps (the next run would refuse the source as
behind them), and its lake, warehouse and run records hold rows the source no longer has. The
reset empties the bookmarks (each change recorded in their history), deletes the run records,
the lake's data areas (raw, archive, curated, rejected, runs; never ``scripts/``, which a
deployment owns), and the warehouse's raw, curated and presentation schemas with its
bookkeeping schema. The caller holds the pipeline lock, so no run is halfway through any of it.
"""

from __future__ import annotations

import logging
from typing import Any

from rentalctl.context import Context

log = logging.getLogger(__name__)

LAKE_AREAS = ("raw", "archive", "curated", "rejected", "runs")
# Dependants first; the bookkeeping says what the presentation layer was built from.
WAREHOUSE_SCHEMAS = ("rentalctl", "presentation", "curated", "raw")


def reset_built(ctx: Context, command: str) -> dict[str, Any]:
    """Remove what was built from the source's data; returns what went, for the output."""
    store = ctx.state
    marks = store.bookmarks()
    for name in marks:
        if marks[name].value is not None:
            store.reset(name, command)
    objects = {area: ctx.lake.delete_prefix(area) for area in LAKE_AREAS}
    with ctx.warehouse() as warehouse:
        warehouse.execute_transaction(
            [f"DROP SCHEMA IF EXISTS {schema} CASCADE" for schema in WAREHOUSE_SCHEMAS]
        )
    runs = store.delete_runs()
    log.info("reset: bookmarks emptied, %s run records and %s lake objects deleted", runs, objects)
    return {
        "bookmarks_reset": sorted(n for n in marks if marks[n].value is not None),
        "run_records_deleted": runs,
        "lake_objects_deleted": sum(objects.values()),
        "warehouse_schemas_dropped": list(WAREHOUSE_SCHEMAS),
    }
