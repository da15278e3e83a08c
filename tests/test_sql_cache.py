"""The DuckDB SQL is transpiled once per machine: a later process reads it from the cache
folder; a new sqlglot or new transpiling code writes a new file; a cache that cannot be read or
written is not used, and the SQL is the same either way."""

from __future__ import annotations

from pathlib import Path

import pytest

from rentalctl import sql_cache
from rentalctl.pipeline import curated_sql

SOURCES = ("rentalctl.sqlfiles",)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sql_cache, "_stores", {})
    return tmp_path / "cache" / "rentalctl"


class Counting:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, text: str) -> str:
        self.calls.append(text)
        return text.lower()


def new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a new process starts with: nothing in memory."""
    monkeypatch.setattr(sql_cache, "_stores", {})


def test_a_later_process_reads_what_an_earlier_one_transpiled(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Counting()
    assert sql_cache.transpiled("SELECT A", first, SOURCES) == "select a"
    assert sql_cache.transpiled("SELECT A", first, SOURCES) == "select a"
    assert first.calls == ["SELECT A"]
    assert len(list(folder.glob("duckdb-sql-*.json"))) == 1

    new_process(monkeypatch)
    later = Counting()
    assert sql_cache.transpiled("SELECT A", later, SOURCES) == "select a"
    assert sql_cache.transpiled("SELECT B", later, SOURCES) == "select b"
    assert later.calls == ["SELECT B"]


def test_other_transpiling_code_writes_a_file_of_its_own(folder: Path) -> None:
    counting = Counting()
    sql_cache.transpiled("SELECT A", counting, SOURCES)
    sql_cache.transpiled("SELECT A", counting, (*SOURCES, "rentalctl.pipeline.curated_sql"))
    assert counting.calls == ["SELECT A", "SELECT A"]
    assert len(list(folder.glob("duckdb-sql-*.json"))) == 2


def test_an_unusable_cache_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    new_process(monkeypatch)
    counting = Counting()
    assert sql_cache.transpiled("SELECT A", counting, SOURCES) == "select a"
    new_process(monkeypatch)
    assert sql_cache.transpiled("SELECT A", counting, SOURCES) == "select a"
    assert counting.calls == ["SELECT A", "SELECT A"]
    assert blocker.read_text() == "x"


def test_a_damaged_cache_file_is_transpiled_again_and_replaced(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql_cache.transpiled("SELECT A", Counting(), SOURCES)
    (cached,) = folder.glob("duckdb-sql-*.json")
    cached.write_text('{"cut sh')
    new_process(monkeypatch)
    counting = Counting()
    assert sql_cache.transpiled("SELECT A", counting, SOURCES) == "select a"
    assert counting.calls == ["SELECT A"]
    assert [p.name for p in folder.iterdir()] == [cached.name]  # no temporary file left
    new_process(monkeypatch)
    assert sql_cache.transpiled("SELECT A", counting, SOURCES) == "select a"
    assert counting.calls == ["SELECT A"]


def test_the_merge_sql_from_the_cache_is_what_sqlglot_writes(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = curated_sql.merge_statements("bookings", "redshift")
    expected = [curated_sql._transpile(s) for s in written if isinstance(s, str)]
    monkeypatch.setattr(curated_sql, "_to_duckdb", curated_sql._to_duckdb.__wrapped__)
    cold = [s for s in curated_sql.for_dialect(written, "duckdb") if isinstance(s, str)]
    new_process(monkeypatch)
    warm = [s for s in curated_sql.for_dialect(written, "duckdb") if isinstance(s, str)]
    assert cold == warm == expected
    assert any(s.startswith("MERGE INTO") for s in warm)
