"""The tables of an HTML page, read back with the standard library's parser: each table's
attributes, header cells and body rows, as the text a reader sees."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict[str, Any]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append({"attrs": dict(attrs), "header": [], "rows": []})
        elif tag == "thead":
            self._head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            table = self.tables[-1]
            if self._head:
                table["header"] = self._row
            else:
                table["rows"].append(self._row)
            self._row = None
        elif tag == "thead":
            self._head = False


def tables(html: str) -> list[dict[str, Any]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables
