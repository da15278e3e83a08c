"""The report's HTML: one page, its style and its few lines of script inline, nothing fetched.
Helpers that turn rows into tables, and the page frame."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from html import escape
from typing import Any

STYLE = """
:root { color-scheme: light; --muted: #5f6368; --line: #dadce0; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #202124; background: #f8f9fa; }
header { background: #1a3d5c; color: #fff; padding: 16px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 2px 0; opacity: .85; font-size: 13px; }
nav a { color: #cfe3f5; margin-right: 14px; font-size: 13px; }
main { padding: 8px 28px 40px; max-width: 1400px; }
section { margin-top: 28px; }
h2 { border-bottom: 2px solid #1a3d5c; padding-bottom: 4px; }
article { background: #fff; border: 1px solid var(--line); border-radius: 8px;
          padding: 12px 16px; margin: 14px 0; }
article h3 { margin: 0 0 2px; }
.definition { color: var(--muted); margin: 0 0 8px; font-size: 14px; }
.pair { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 16px;
        align-items: start; }
@media (max-width: 900px) { .pair { grid-template-columns: 1fr; } }
figure { margin: 0; }
.numbers { max-height: 330px; overflow: auto; border: 1px solid var(--line); border-radius: 4px; }
table { border-collapse: collapse; font-size: 12px; width: 100%; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }
th { background: #f1f3f4; position: sticky; top: 0; }
td.text, th.text { text-align: left; }
.empty { color: var(--muted); font-style: italic; font-size: 16px; }
.weeks { margin: 8px 0; font-size: 14px; }
.legend span { display: inline-block; margin-right: 14px; font-size: 13px; }
.legend i { display: inline-block; width: 14px; height: 14px; border-radius: 3px;
            vertical-align: -2px; margin-right: 4px; border: 1.5px solid; }
.state-machine { max-width: 100%; height: auto; }
.state-machine .detail { fill: var(--muted); font-size: 11px; }
.status-SUCCEEDED { color: #2e7d32; } .status-FAILED { color: #c62828; }
.status-RUNNING { color: #b28704; }
"""

# Shows the chosen week's chart and table of every weekly KPI, hides the others.
SCRIPT = """
const weekSelect = document.getElementById('week');
if (weekSelect) {
  weekSelect.addEventListener('change', () => {
    for (const view of document.querySelectorAll('.week-view')) {
      view.hidden = view.dataset.week !== weekSelect.value;
    }
  });
}
"""


def cell(value: Any) -> str:
    """A table cell's text: whole numbers with thousands separators, other numbers to two
    decimals, dates in ISO form, nothing for NULL."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float | Decimal):
        return f"{value:,.2f}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _plain(value: Any) -> str:
    return "" if value is None else str(value)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], attrs: str = "") -> str:
    """An HTML table; columns holding anything but numbers align left."""
    numeric = [
        all(isinstance(r[i], int | float | Decimal) or r[i] is None for r in rows)
        for i in range(len(columns))
    ]
    head = "".join(
        f"<th{'' if numeric[i] else ' class=text'}>{escape(c)}</th>" for i, c in enumerate(columns)
    )
    # Identifiers are names, not quantities: no thousands separators.
    shown = [_plain if c.endswith("_id") or c == "run" else cell for c in columns]
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{'' if numeric[i] else ' class=text'}>{escape(shown[i](v))}</td>"
            for i, v in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table {attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def chart_and_numbers(svg: str, numbers: str) -> str:
    return (
        f'<div class="pair"><figure class="chart">{svg}</figure><div '
        f'class="numbers">{numbers}</div></div>'
    )


def empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def page(title: str, subtitle: list[str], sections: list[tuple[str, str, str]]) -> str:
    """The whole document; ``sections`` are (id, heading, inner HTML)."""
    nav = "".join(f'<a href="#{sid}">{escape(heading)}</a>' for sid, heading, _ in sections)
    body = "".join(
        f'<section id="{sid}"><h2>{escape(heading)}</h2>{inner}</section>'
        for sid, heading, inner in sections
    )
    lines = "".join(f"<p>{escape(line)}</p>" for line in subtitle)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{escape(title)}</h1>{lines}<nav>{nav}</nav></header>"
        f"<main>{body}</main><script>{SCRIPT}</script></body></html>\n"
    )
