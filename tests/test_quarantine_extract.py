"""Extraction keeps numbers as MySQL would store them, and quarantines a row whose value its
column cannot hold instead of failing: the row goes to the run's invalid-values file (rows of
curated.rejected_rows, reason ``invalid_value``), every other row to the part files. The
expected files are written out by hand."""

from __future__ import annotations

import csv
import gzip
import io
import json
import sqlite3
from pathlib import Path

import pytest

from rentalctl.errors import PipelineFailed
from rentalctl.pipeline import steps
from rentalctl.run.manifest import read_manifest
from rentalctl.tables import TABLES
from tests.test_extract_raw import Pipeline

STAMP = "2025-01-01 10:00:00.000000"


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return Pipeline(tmp_path / "home", f"sqlite:///{tmp_path / 'source.db'}", {})


def sqlite_write(tmp_path: Path, *statements: str) -> None:
    with sqlite3.connect(tmp_path / "source.db") as db:
        for statement in statements:
            db.execute(statement)


def part_rows(pipeline: Pipeline, table: str, run_id: str) -> list[list[str]]:
    manifest = read_manifest(pipeline.ctx.lake, table, run_id)
    rows: list[list[str]] = []
    for part in manifest.files:
        text = gzip.decompress(pipeline.ctx.lake.get_bytes(part.key)).decode()
        rows += list(csv.reader(io.StringIO(text)))[1:]
    return rows


def invalid_rows(pipeline: Pipeline, table: str, run_id: str) -> list[dict[str, str]]:
    manifest = read_manifest(pipeline.ctx.lake, table, run_id)
    if manifest.invalid_file is None:
        return []
    text = gzip.decompress(pipeline.ctx.lake.get_bytes(manifest.invalid_file.key)).decode()
    return list(csv.DictReader(io.StringIO(text)))


def attributes(id_: int, latitude: str, **values: str) -> str:
    columns = {
        "id": str(id_),
        "category": "'housing/rent'",
        "bathrooms": "'1.0'",
        "bedrooms": "'1.0'",
        "square_feet": "500",
        "latitude": latitude,
        "longitude": "'-70.5'",
        "last_modified_timestamp": f"'{STAMP}'",
        **values,
    }
    names = ", ".join(columns)
    return f"INSERT INTO apartment_attributes ({names}) VALUES ({', '.join(columns.values())})"


def test_numbers_are_kept_as_mysql_would_store_them(tmp_path: Path, pipeline: Pipeline) -> None:
    sqlite_write(
        tmp_path,
        # A program wrote '46.6503622' into a NUMERIC column; SQLite kept the nearest REAL.
        attributes(1, "46.650362200000004"),
        # Past the scale: rounded half away from zero, as MySQL rounds on insert.
        attributes(2, "'12.12345675'", bathrooms="'2.25'"),
        attributes(3, "'-12.12345665'", bathrooms="'-2.25'"),
        # Whole numbers written as a float, or as text, into integer columns.
        attributes(4, "'1.5'", square_feet="750.0", id="'4'"),
    )
    steps.extract(pipeline.ctx, "apartment_attributes", "R1")
    names = TABLES["apartment_attributes"].column_names
    at = [names.index(c) for c in ("id", "bathrooms", "square_feet", "latitude")]
    got = [tuple(r[i] for i in at) for r in part_rows(pipeline, "apartment_attributes", "R1")]
    assert got == [
        ("1", "1.0", "500", "46.6503622"),
        ("2", "2.3", "500", "12.1234568"),
        ("3", "-2.3", "500", "-12.1234567"),
        ("4", "1.0", "750", "1.5"),  # canonical already: kept as the source holds it
    ]
    assert invalid_rows(pipeline, "apartment_attributes", "R1") == []


def test_a_row_that_does_not_fit_is_quarantined_and_the_rest_goes_on(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    sqlite_write(
        tmp_path,
        attributes(1, "'45.5'"),
        attributes(2, "'north'"),  # text in a DECIMAL(10,7)
        attributes(3, "'45.5'", square_feet="3000000000"),  # past INT
        attributes(4, "'45.5'", last_modified_timestamp="'2024-12-01T10:00:00+02:00'"),
        attributes(5, "'45.5'"),
    )
    manifest = steps.extract(pipeline.ctx, "apartment_attributes", "R1")
    assert [r[0] for r in part_rows(pipeline, "apartment_attributes", "R1")] == ["1", "5"]
    assert (manifest.rows, manifest.invalid_rows) == (2, 3)
    got = sorted(
        invalid_rows(pipeline, "apartment_attributes", "R1"), key=lambda r: r["record_key"]
    )
    assert [(r["source_table"], r["record_key"], r["reason"], r["run_id"]) for r in got] == [
        ("apartment_attributes", key, "invalid_value", "R1") for key in ("2", "3", "4")
    ]
    records = [json.loads(r["record"]) for r in got]
    assert [r["_invalid"] for r in records] == [
        "latitude = 'north' does not fit DECIMAL(10,7): not a number",
        "square_feet = 3000000000 does not fit INT: out of range (-2147483648 to 2147483647)",
        "last_modified_timestamp = '2024-12-01T10:00:00+02:00' does not fit DATETIME(6): "
        "expected YYYY-MM-DD[ HH:MM:SS[.ffffff]]",
    ]
    # The row as the source gave it, every value as text.
    assert records[1] == {
        "id": "3",
        "category": "housing/rent",
        "body": None,
        "amenities": None,
        "bathrooms": "1.0",
        "bedrooms": "1.0",
        "fee": None,
        "has_photo": None,
        "pets_allowed": None,
        "price_display": None,
        "price_type": None,
        "square_feet": "3000000000",
        "address": None,
        "cityname": None,
        "state": None,
        "latitude": "45.5",
        "longitude": "-70.5",
        "last_modified_timestamp": STAMP,
        "_invalid": records[1]["_invalid"],
    }

    # The raw load takes the rows that fit, and the same row version read again gives the
    # same record, byte for byte (it is recorded once).
    assert steps.load_raw(pipeline.ctx, "apartment_attributes", "R1")["rows"] == 2
    steps.extract(pipeline.ctx, "apartment_attributes", "R2")
    again = sorted(
        invalid_rows(pipeline, "apartment_attributes", "R2"), key=lambda r: r["record_key"]
    )
    assert [r["record"] for r in again] == [r["record"] for r in got]


def test_text_that_is_not_utf8_is_quarantined(tmp_path: Path, pipeline: Pipeline) -> None:
    sqlite_write(
        tmp_path,
        attributes(1, "'45.5'"),
        attributes(2, "'45.5'", category="CAST(X'436166E9' AS TEXT)"),
        attributes(3, "'45.5'", category="'Café'"),
    )
    manifest = steps.extract(pipeline.ctx, "apartment_attributes", "R1")
    assert [(r[0], r[1]) for r in part_rows(pipeline, "apartment_attributes", "R1")] == [
        ("1", "housing/rent"),
        ("3", "Café"),
    ]
    assert manifest.invalid_rows == 1
    (bad,) = invalid_rows(pipeline, "apartment_attributes", "R1")
    record = json.loads(bad["record"])
    assert record["category"] == "Caf\\xe9"
    assert record["_invalid"] == (
        "category = b'Caf\\xe9' does not fit VARCHAR(50): bytes that are not UTF-8 text"
    )


def test_a_source_behind_its_bookmark_fails_in_plain_words(
    tmp_path: Path, pipeline: Pipeline
) -> None:
    sqlite_write(tmp_path, attributes(1, "'45.5'"))
    pipeline.run("R1", ("apartment_attributes",))
    # The source replaced by an older copy: its newest change is a year before the bookmark.
    sqlite_write(
        tmp_path,
        "DELETE FROM apartment_attributes",
        attributes(7, "'45.5'", last_modified_timestamp="'2024-01-01 00:00:00'"),
    )
    with pytest.raises(PipelineFailed) as failed:
        steps.extract(pipeline.ctx, "apartment_attributes", "R2")
    assert str(failed.value) == (
        "source table apartment_attributes has nothing newer than 2024-01-01 00:00:00.000000, "
        f"behind its bookmark {STAMP}: the source went back in time (replaced, restored from an "
        "older backup, or its newest rows deleted), so rows it gets from now on could be "
        "stamped before the bookmark and never be read. Nothing was extracted and no bookmark "
        "moved. If the source was replaced on purpose, start the table over: `rentalctl "
        "seed-bookmarks --reset apartment_attributes` (for demo data, `rentalctl demo-data "
        "--replace` resets everything); to re-read a period, `rentalctl backfill --since DATE`"
    )
    assert pipeline.bookmark("apartment_attributes") == STAMP
