"""The report's pipeline sections, from the run records and the bookmarks: the state machine
coloured by the latest run, the run history (seconds per state, rows per table), data quality
(rejected rows by reason, orphans, the gate) and the bookmarks."""

from __future__ import annotations

from rentalctl.report import charts
from rentalctl.report.data import ReportData
from rentalctl.report.graph import COLORS, state_machine_svg
from rentalctl.report.html import chart_and_numbers, empty, table
from rentalctl.run_records import duration


def _legend() -> str:
    names = {"SUCCEEDED": "succeeded", "FAILED": "failed", "RUNNING": "running", None: "not run"}
    items = "".join(
        f'<span><i style="background:{fill};border-color:{stroke}"></i>{names[status]}</span>'
        for status, (fill, stroke) in COLORS.items()
    )
    return f'<p class="legend">{items}<span>solid arrow: Next · dashed: Catch</span></p>'


def pipeline_section(data: ReportData) -> str:
    latest = data.runs[0] if data.runs else {}
    states = latest.get("states") or []
    if isinstance(states, dict):  # a record still being written holds none yet
        states = []
    svg = state_machine_svg(data.definition, states)
    intro = (
        f"<p>Latest run <b>{latest['run_id']}</b> ({latest.get('mode')}): "
        f'<span class="status-{latest.get("status")}">{latest.get("status")}</span>.</p>'
        if latest
        else empty("No runs yet: the states are drawn uncoloured.")
    )
    rows = [
        [s["name"], s.get("status"), s.get("seconds"), s.get("attempts"), s.get("error") or ""]
        for s in states
    ]
    numbers = table(("state", "status", "seconds", "attempts", "error"), rows, 'class="states"')
    return (
        f"{intro}{_legend()}<article>{chart_and_numbers(svg, numbers)}</article>"
        if rows
        else f"{intro}{_legend()}<article>{svg}</article>"
    )


def history_section(data: ReportData) -> str:
    if not data.runs:
        return empty("No runs yet.")
    runs = data.runs[::-1]  # oldest first, left to right
    ids = [r["run_id"] for r in runs]
    names: list[str] = []
    for r in runs:
        for s in r.get("states") or []:
            if "[" not in s["name"] and s["name"] not in names:
                names.append(s["name"])
    per_state = {
        name: [
            sum(s.get("seconds") or 0 for s in r.get("states") or [] if s["name"] == name)
            for r in runs
        ]
        for name in names
    }
    tables = sorted({t for r in runs for t in (r.get("summary") or {})})
    per_table = {
        t: [((r.get("summary") or {}).get(t) or {}).get("extracted") or 0 for r in runs]
        for t in tables
    }
    run_rows = [
        [
            r["run_id"],
            r.get("mode"),
            r.get("status"),
            str(r.get("started_at") or "")[:19].replace("T", " "),
            duration(r),
        ]
        for r in data.runs
    ]
    row_rows = [
        [
            r["run_id"],
            t,
            *(
                s.get(f)
                for f in ("extracted", "curated", "rejected", "inserted", "updated", "orphans")
            ),
        ]
        for r in data.runs
        for t, s in (r.get("summary") or {}).items()
    ]
    return (
        '<article><h3>Seconds per state</h3><p class="definition">Each run\'s time in each '
        "top-level state (a Map state includes its items).</p>"
        + chart_and_numbers(
            charts.stacked_bars("Seconds per state", ids, per_state, "seconds"),
            table(("run", "mode", "status", "started (UTC)", "seconds"), run_rows, 'class="runs"'),
        )
        + '</article><article><h3>Rows per table</h3><p class="definition">Rows extracted per '
        "table by each run, and what became of them.</p>"
        + chart_and_numbers(
            charts.stacked_bars("Rows extracted per table", ids, per_table, "rows extracted"),
            table(
                (
                    "run",
                    "table",
                    "extracted",
                    "curated",
                    "rejected",
                    "inserted",
                    "updated",
                    "orphans",
                ),
                row_rows,
                'class="rows"',
            ),
        )
        + "</article>"
    )


def quality_section(data: ReportData) -> str:
    if not data.runs:
        return empty("No runs yet.")
    runs = data.runs[::-1]
    keys = sorted(
        {
            f"{t}: {reason}"
            for r in runs
            for t, s in (r.get("summary") or {}).items()
            for reason in s.get("rejected_by_reason") or {}
        }
    )
    stacks = {
        key: [
            ((r.get("summary") or {}).get(key.split(": ")[0]) or {})
            .get("rejected_by_reason", {})
            .get(key.split(": ")[1], 0)
            for r in runs
        ]
        for key in keys
    }
    reasons = [
        [r["run_id"], t, reason, n]
        for r in data.runs
        for t, s in (r.get("summary") or {}).items()
        for reason, n in sorted((s.get("rejected_by_reason") or {}).items())
    ]
    chart = (
        charts.stacked_bars("Rejected rows", [r["run_id"] for r in runs], stacks, "rows rejected")
        if keys
        else empty("No rejected rows.")
    )
    return (
        '<article><h3>Rejected rows by reason and table</h3><p class="definition">Extracted '
        "rows the curated layer refused, by the first rule they broke; each is kept in "
        "curated.rejected_rows.</p>"
        + chart_and_numbers(
            chart, table(("run", "table", "reason", "rows"), reasons, 'class="rejected"')
        )
        + "</article>"
        + _gate(data)
        + _bookmarks(data)
    )


def _gate(data: ReportData) -> str:
    record = next((r for r in data.runs if r.get("quality")), None)
    if record is None:
        return ""
    share = data.max_rejected_share
    rows = []
    for t, q in record["quality"].items():
        read, rejected = q.get("rows_read") or 0, q.get("rejected") or 0
        ratio = rejected / read if read else 0.0
        rows.append(
            [
                t,
                read,
                rejected,
                100 * ratio,
                q.get("orphans"),
                "over" if ratio > share else "passed",
            ]
        )
    return (
        f"<article><h3>Quality gate and orphans, run {record['run_id']}</h3>"
        f'<p class="definition">A run fails before merging anything when a table rejects more '
        f"than {100 * share:g}% of its rows (quality.max_rejected_share). Orphans: rows naming "
        "an apartment the curated layer does not know; kept, and counted here.</p>"
        + table(
            ("table", "rows read", "rejected", "rejected %", "orphans", "gate"),
            rows,
            'class="gate"',
        )
        + "</article>"
    )


def _bookmarks(data: ReportData) -> str:
    rows = [  # a watermark is a timestamp or an id, shown as stored
        [b["table"], "" if b["value"] is None else str(b["value"]), b["updated_at"], b["run_id"]]
        for b in data.bookmarks
    ]
    return (
        '<article id="bookmarks"><h3>Bookmarks</h3><p class="definition">The last committed '
        "watermark of each source table: the next incremental run reads after it.</p>"
        + table(("table", "watermark", "updated (UTC)", "by run"), rows, 'class="bookmarks"')
        + "</article>"
    )
