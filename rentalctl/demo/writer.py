"""Writes demo data into a source: the initial data set, or one batch of changes."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rentalctl.adapters.source import Source
from rentalctl.demo.changes import build_changes
from rentalctl.demo.generator import Generator
from rentalctl.tables import TABLES

BATCH_ROWS = 5000


@dataclass
class TableCounts:
    inserted: int = 0
    updated: int = 0
    total: int = 0


@dataclass
class DemoResult:
    source: str
    mode: str  # "created", "replaced", "changes" or "unchanged"
    scale: float | None  # None for a batch of changes, which does not depend on a scale
    seed: int
    tables: dict[str, TableCounts] = field(default_factory=dict)

    def summary(self) -> str:
        if self.mode == "unchanged":
            return (
                f"{self.source} already holds data; nothing written "
                "(--changes adds a batch of business, --replace starts over)."
            )
        if self.mode == "changes":
            return f"Applied one batch of changes to {self.source} (seed {self.seed})."
        return f"Demo data {self.mode} in {self.source} (scale {self.scale}, seed {self.seed})."

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _counts(source: Source) -> dict[str, int]:
    return {t: source.query(f"SELECT COUNT(*) FROM {source.quote(t)}")[0][0] for t in TABLES}


def write_demo(
    source: Source, *, scale: float, seed: int, changes: bool, replace: bool, progress: bool
) -> DemoResult:
    source.ensure_schema(TABLES.values())
    before = _counts(source)
    has_data = any(before.values())
    result = DemoResult(source.name, "unchanged", scale, seed)
    if changes:
        batch = build_changes(source, seed)
        source.write(batch.statements)
        result.mode, result.scale = "changes", None
        inserted, updated = batch.inserted, batch.updated
    elif has_data and not replace:
        inserted = updated = dict.fromkeys(TABLES, 0)
    else:
        result.mode = "replaced" if has_data else "created"
        inserted = _write_initial(
            source, Generator(scale, seed), replace=has_data, progress=progress
        )
        updated = dict.fromkeys(TABLES, 0)
    after = _counts(source)
    result.tables = {t: TableCounts(inserted[t], updated[t], after[t]) for t in TABLES}
    return result


def _write_initial(
    source: Source, gen: Generator, *, replace: bool, progress: bool
) -> dict[str, int]:
    """All tables in one transaction: a killed demo-data leaves the source as it was."""
    # Imported here: importing the demo generator stays cheap.
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    inserted = dict.fromkeys(TABLES, 0)
    bar = Progress(
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not progress,
        transient=False,
    )

    def statements() -> Iterator[tuple[str, Sequence[Sequence[Any]]]]:
        if replace:
            for name in TABLES:
                yield f"DELETE FROM {source.quote(name)}", [()]
        for name, spec in TABLES.items():
            task = bar.add_task(name, total=gen.n[name])
            sql = source.insert_sql(spec)
            chunk: list[tuple] = []
            for row in getattr(gen, name)():
                chunk.append(row)
                if len(chunk) == BATCH_ROWS:
                    yield sql, chunk
                    inserted[name] += len(chunk)
                    bar.advance(task, len(chunk))
                    chunk = []
            if chunk:
                yield sql, chunk
                inserted[name] += len(chunk)
                bar.advance(task, len(chunk))

    with bar:
        source.write(statements())
    return inserted
