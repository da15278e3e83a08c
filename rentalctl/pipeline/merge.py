"""Merge step: one run's transform output into the curated layer, in ONE warehouse transaction
for all tables — so the curated layer, the rejected rows and the fx rates always reflect whole
runs, and the bookmark commit that follows only ever follows committed data.

Per table, in dependency order (apartments first, so orphans are counted against the merged
apartments): stage the run's curated Parquet, count, MERGE (new keys and newer versions only),
then record the run's rejected rows not recorded before. Re-merging the same run changes
nothing.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

from rentalctl.adapters.warehouse import Warehouse
from rentalctl.context import Context
from rentalctl.curated import CURATED, data_files, output_prefix
from rentalctl.errors import PipelineFailed, ResourceUnavailable
from rentalctl.pipeline import curated_sql as sql
from rentalctl.pipeline import key_pages, presentation, quality, reconcile
from rentalctl.run.layout import MANIFEST, run_prefix
from rentalctl.run.manifest import Manifest, read_manifest
from rentalctl.tables import TABLES

log = logging.getLogger(__name__)

STATS = "_stats.json"
# Tables whose rows refer to an apartment, and the referring column.
_APARTMENT_REFERENCE = {
    "apartment_attributes": "id",
    "user_viewing": "apartment_id",
    "bookings": "apartment_id",
}


def read_stats(ctx: Context, table: str, run_id: str) -> dict[str, Any]:
    try:
        data = ctx.lake.get_bytes(output_prefix("curated", table, run_id) + STATS)
    except ResourceUnavailable:
        raise PipelineFailed(
            f"no transform output for {table} in run {run_id}: the transform step has not "
            "completed for this run"
        ) from None
    stats: dict[str, Any] = json.loads(data)
    return stats


def _parquet(ctx: Context, kind: str, table: str, run_id: str) -> list[str]:
    prefix = output_prefix(kind, table, run_id)
    return data_files(prefix, ctx.lake.list(prefix))


def merge(ctx: Context, run_id: str, tables: list[str]) -> dict[str, dict[str, Any]]:
    """Merge the run's output of ``tables``; returns the data-quality report (also stored with
    the run record). Raises PipelineFailed, merging nothing, when the quality gate fails."""
    ordered = [t for t in TABLES if t in tables]
    report = {t: read_stats(ctx, t, run_id) for t in ordered}
    quality.add_warnings(ctx, run_id, report)
    quality.gate(report, ctx.settings.max_rejected_share, ctx.settings.quality_min_rows)

    with ctx.warehouse() as warehouse:
        dialect = warehouse.dialect
        statements: list[Any] = [*sql.ddl(dialect)]
        statements += sql.fx_rates_statements(dict(ctx.settings.fx_rates), dialect)
        reconciled: list[str] = []
        changed: list[str] = []  # a query per table: how many curated rows the merge changed
        moment = datetime.now(timezone.utc).replace(tzinfo=None)  # one time for the whole merge
        for table in ordered:
            stage, rejected_stage = sql.stage_name(table), f"stage_rejected_{table}"
            statements += warehouse.stage_parquet(
                ctx.lake, _parquet(ctx, "curated", table, run_id), stage, sql.qualified(table)
            )
            statements += sql.merge_statements(table, dialect)
            changed.append(
                "SELECT COALESCE(inserted, 0) + COALESCE(updated, 0) "
                f"FROM {sql.q(sql.counts_name(table))}"
            )
            extract = _manifest(ctx, table, run_id)
            if extract is not None and extract.keys_file is not None:  # keys read: remove deletes
                reconciled.append(table)
                statements += _reconcile_statements(warehouse, ctx, extract, moment)
                changed.append(f"SELECT COUNT(*) FROM {sql.q(reconcile.deleted_name(table))}")
            else:
                statements += key_pages.forget_statements(table, dialect)
            if table in _APARTMENT_REFERENCE:
                statements += _orphan_statements(table)
            if table == "user_viewing":
                statements += sql.viewing_duplicate_statements(run_id, dialect)
            statements += warehouse.stage_parquet(
                ctx.lake,
                _parquet(ctx, "rejected", table, run_id),
                rejected_stage,
                sql.qualified("rejected_rows"),
            )
            statements += sql.rejected_statements(rejected_stage, dialect)
            statements += [f'DROP TABLE "{stage}"', f'DROP TABLE "{rejected_stage}"']
        statements += presentation.stale_statements(changed)
        warehouse.execute_transaction(statements)

        for table in ordered:
            inserted, updated, staged = warehouse.query(
                f"SELECT inserted, updated, staged FROM {sql.q(sql.counts_name(table))}"
            )[0]
            report[table].update(
                inserted=int(inserted or 0),
                updated=int(updated or 0),
                # Rows the transform left out as already curated change nothing either.
                unchanged=int(staged or 0)
                - int(inserted or 0)
                - int(updated or 0)
                + report[table].get("already_curated", 0),
            )
            if table in reconciled:
                (deleted,) = warehouse.query(
                    f"SELECT COUNT(*) FROM {sql.q(reconcile.deleted_name(table))}"
                )[0]
                report[table].update(reconciled=True, deleted=int(deleted or 0))
            if table in _APARTMENT_REFERENCE:
                (orphans,) = warehouse.query(f"SELECT n FROM {sql.q(_orphans_name(table))}")[0]
                report[table]["orphans"] = int(orphans or 0)
    quality.save(ctx.state, run_id, report)
    log.info("merged run %s: %s", run_id, report)
    return report


def _manifest(ctx: Context, table: str, run_id: str) -> Manifest | None:
    """The manifest of the run's extract of ``table``. A merge of output that no extract of
    this run wrote (by hand, in tests) has none, and reconciles nothing."""
    if not ctx.lake.exists(run_prefix(table, run_id) + MANIFEST):
        return None
    return read_manifest(ctx.lake, table, run_id)


def _reconcile_statements(
    warehouse: Warehouse, ctx: Context, extract: Manifest, moment: datetime
) -> list[Any]:
    """Delete the curated rows whose key the extract's key set lacks, and keep the key pages'
    fingerprints it read: after reading every key, or if those it compared with are still the
    kept ones (or this run's own, kept by a merge of it that committed before); else forget
    them, so that the next reconciling extract reads every key (an extract written before pages
    existed has none to keep)."""
    table, run_id, dialect = extract.table, extract.run_id, warehouse.dialect
    assert extract.keys_file is not None
    keys = reconcile.keys_stage(table)
    out = warehouse.stage_integers(ctx.lake, extract.keys_file.key, keys, [CURATED[table].key])
    pages = extract.key_pages_file
    if pages is not None:
        stage = key_pages.pages_stage(table)
        out += warehouse.stage_integers(ctx.lake, pages.key, stage, key_pages.PAGE_COLUMNS)
    whole = extract.keys_whole or pages is None
    out += reconcile.delete_statements(table, run_id, moment, dialect, whole=whole)
    kept = key_pages.kept_by(warehouse, table)  # every row of a table has the same run
    keep = pages is not None and (whole or kept in (extract.keys_baseline, run_id))
    out += key_pages.keep_statements(table, run_id, dialect, keep=keep)
    out.append(f"DROP TABLE {sql.q(keys)}")
    if pages is not None:
        out.append(f"DROP TABLE {sql.q(key_pages.pages_stage(table))}")
    return out


def _orphans_name(table: str) -> str:
    return f"merge_orphans_{table}"


def _orphan_statements(table: str) -> list[str]:
    """Count the run's rows whose apartment the curated layer does not know (after the
    apartments of the same run are merged). Kept, not rejected (docs/contract.md §5)."""
    ref = sql.q(_APARTMENT_REFERENCE[table])
    name = sql.q(_orphans_name(table))
    return [
        f"DROP TABLE IF EXISTS {name}",
        f"CREATE TEMP TABLE {name} AS SELECT COUNT(*) AS n FROM {sql.q(sql.stage_name(table))} s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {sql.qualified('apartments')} a "
        f"WHERE a.{sql.q(CURATED['apartments'].key)} = s.{ref})",
    ]
