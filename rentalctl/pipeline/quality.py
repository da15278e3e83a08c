"""The data-quality report of a run, and its gate.

Per table: rows read, curated, superseded (older versions of a key in the same run), rejected
by reason, what the merge did (inserted, updated) and orphans (rows naming an apartment the
curated layer does not know). The gate runs before anything is merged: when a table that read
at least ``quality.min_rows`` rows rejects a larger share of them than
``quality.max_rejected_share``, the run fails (exit 1), nothing is merged, no bookmark moves,
and the next run meets the same rows until they are fixed or the threshold is changed.

A table also carries ``warnings``: what went through but deserves a look, such as rows dated
after the source's clock plus the allowed skew (processed; the bookmark does not follow them),
or a small table over the share.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rentalctl.errors import PipelineFailed
from rentalctl.pipeline.extract import future_message
from rentalctl.run.layout import MANIFEST, run_prefix
from rentalctl.run.manifest import Manifest


def gate(stats: dict[str, dict[str, Any]], max_share: float, min_rows: int = 0) -> None:
    """Raise PipelineFailed naming every table over the threshold, with its share and reasons.

    The share is held only against a table that read at least ``min_rows`` rows: in a small
    incremental window one bad row is a large share (1 of 2 is 50 %), and a gate that trips on
    it would stop the table every night until more rows arrive. Such a table over the share
    gets a warning in the report instead."""
    failures = []
    for table, s in stats.items():
        read, rejected = s.get("rows_read", 0), s.get("rejected", 0)
        if read and rejected / read > max_share:
            reasons = ", ".join(
                f"{reason} {n:,}" for reason, n in sorted(s.get("rejected_by_reason", {}).items())
            )
            what = (
                f"{table} rejected {rejected:,} of {read:,} rows ({rejected / read:.1%}: {reasons})"
            )
            if read >= min_rows:
                failures.append(what)
            else:
                s.setdefault("warnings", []).append(
                    f"{what}, above quality.max_rejected_share {max_share * 100:g}% but not held "
                    f"against it: fewer than quality.min_rows {min_rows:,} rows read"
                )
    if failures:
        raise PipelineFailed(
            f"data-quality gate: {'; '.join(failures)}, above quality.max_rejected_share "
            f"{max_share * 100:g}%; nothing was merged"
        )


def add_warnings(ctx: Any, run_id: str, report: dict[str, dict[str, Any]]) -> None:
    """Add each table's warnings from its extract manifest: rows dated in the future. (A
    table without a manifest, as in a merge of transform output written by other means, has
    none.)"""
    for table, stats in report.items():
        key = run_prefix(table, run_id) + MANIFEST
        if not ctx.lake.exists(key):
            continue
        manifest = Manifest.from_json(ctx.lake.get_bytes(key))
        if manifest.future_rows:
            stats["future_dated"] = manifest.future_rows
            stats.setdefault("warnings", []).append(future_message(manifest))


def save(state: Any, run_id: str, report: dict[str, Any]) -> None:
    """Store the report with the run's record (created if the run has none yet)."""
    started_at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    state.update_run(
        run_id,
        lambda run: {**(run or {"run_id": run_id, "started_at": started_at}), "quality": report},
    )
