"""The report's quality-gate and orphans table, from a hand-written run record: rejected share
per table against quality.max_rejected_share, orphans as recorded, the newest run with a
quality record."""

from __future__ import annotations

from datetime import datetime, timezone

from rentalctl.report.data import ReportData
from rentalctl.report.run_section import quality_section
from tests.support.html_tables import tables


def test_gate_and_orphans_of_the_newest_run_with_a_quality_record() -> None:
    data = ReportData(
        generated_at=datetime(2026, 1, 5, tzinfo=timezone.utc),
        warehouse="duckdb",
        definition={},
        max_rejected_share=0.05,
        runs=[  # newest first; the newest has no quality record (it failed before curating)
            {"run_id": "run-3", "summary": {}},
            {
                "run_id": "run-2",
                "summary": {},
                "quality": {
                    "apartments": {"rows_read": 1000, "rejected": 10, "orphans": 0},
                    "bookings": {"rows_read": 200, "rejected": 20, "orphans": 7},
                    "users": {"rows_read": 0, "rejected": 0, "orphans": None},
                },
            },
            {
                "run_id": "run-1",
                "summary": {},
                "quality": {"bookings": {"rows_read": 5, "rejected": 5, "orphans": 1}},
            },
        ],
    )
    html = quality_section(data)
    assert "<h3>Quality gate and orphans, run run-2</h3>" in html
    assert "more than 5% of its rows" in html
    (gate,) = [t for t in tables(html) if t["attrs"].get("class") == "gate"]
    assert gate["rows"] == [
        ["apartments", "1,000", "10", "1.00", "0", "passed"],
        ["bookings", "200", "20", "10.00", "7", "over"],
        ["users", "0", "0", "0.00", "", "passed"],
    ]
