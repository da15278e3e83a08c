"""``rentalctl report``: gather through the ports, draw, and write one HTML file."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rentalctl.errors import ConfigError
from rentalctl.report.data import ReportData, gather
from rentalctl.report.html import page
from rentalctl.report.kpi_section import kpi_section
from rentalctl.report.run_section import history_section, pipeline_section, quality_section

if TYPE_CHECKING:
    from rentalctl.config import Settings


def render(data: ReportData) -> str:
    latest = data.runs[0] if data.runs else None
    subtitle = [
        f"Generated {data.generated_at:%Y-%m-%d %H:%M} UTC from {data.warehouse}",
        f"Latest run {latest['run_id']}: {latest.get('status')}" if latest else "No runs yet.",
    ]
    return page(
        "Rental marketplace",
        subtitle,
        [
            ("kpis", "KPIs", kpi_section(data)),
            ("pipeline", "Pipeline", pipeline_section(data)),
            ("runs", "Run history", history_section(data)),
            ("quality", "Data quality", quality_section(data)),
        ],
    )


def write_report(settings: Settings, path: Path) -> dict[str, Any]:
    """Write the report to ``path`` (whole or not at all); what was written."""
    started = time.perf_counter()
    data = gather(settings)
    text = render(data).encode("utf-8")
    if path.is_dir():
        raise ConfigError(f"--output-file {path} is a directory: name a file")
    path.parent.mkdir(parents=True, exist_ok=True)
    # A reader (a browser reloading it) never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as any new file here, not mkstemp's owner-only mode
        with os.fdopen(fd, "wb") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return {
        "bytes": len(text),
        "runs": len(data.runs),
        "latest_run": data.runs[0]["run_id"] if data.runs else None,
        "seconds": round(time.perf_counter() - started, 2),
    }
