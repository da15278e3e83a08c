"""Extraction writes a batch of rows column by column, and the lines must be exactly those of
the row-by-row writer: the same canonical text for every value, and the same values refused.
The expected lines of the first test are written by hand from the raw dialect (docs/contract.md
§3: text quoted with quotes doubled, NULL as an unquoted empty field, timestamps of DATETIME(6)
columns with six fractional digits)."""

from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal as D
from typing import Any

import pytest

from rentalctl.pipeline.rawcolumns import batch_formatter
from rentalctl.pipeline.rawvalues import UnfitValue, row_formatter
from rentalctl.tables import TABLES

BOOKINGS = TABLES["bookings"]


def test_a_batch_of_canonical_values_is_written_as_the_dialect_says() -> None:
    rows = [
        (1, 7, 9, "2025-01-01 10:00:00", "2025-02-01", "2025-02-03", "120.50", "EUR",
         'said "ok", then left', "2025-01-01 10:00:00.000001"),
        (2, None, 9, None, "2025-02-28", "2025-03-01", "-0.01", None, "line\nbreak",
         "2025-01-01 10:00:00.500000"),
        (3, 8, 10, "2025-01-02 00:00:00", None, None, None, "", "",
         "2025-01-02 00:00:00.000000"),
    ]  # fmt: skip
    assert batch_formatter(BOOKINGS)(rows) == [
        '1,7,9,2025-01-01 10:00:00,2025-02-01,2025-02-03,120.50,"EUR","said ""ok"", then left",'
        "2025-01-01 10:00:00.000001\n",
        '2,,9,,2025-02-28,2025-03-01,-0.01,,"line\nbreak",2025-01-01 10:00:00.500000\n',
        '3,8,10,2025-01-02 00:00:00,,,,"","",2025-01-02 00:00:00.000000\n',
    ]


# Values of every shape a source hands over, per kind of column: canonical text, the driver's
# objects, text to canonicalise, and text that only looks canonical.
FITTING: dict[str, list[Any]] = {
    "integer": [1, -5, 0, None, 5.0, D("7"), "42", " 8 ", 2**31 - 1, -(2**31)],
    "decimal": ["1.50", "-0.01", "3", None, 2.5, D("1.005"), "1e2", " 4.2 ", "١٢",
                46.650362200000004],
    "text": ["a", 'q"uote', "", None, "line\nend", "comma,here", 12, b"bytes"],
    "datetime": ["2025-01-01 10:00:00", "2025-01-01 10:00:00.000000", "2025-01-01 10:00:00.123400",
                 None, datetime(2025, 1, 1, 10), datetime(2025, 1, 1, 10, 0, 0, 5),
                 "2025-01-01T10:00:00", "2025-01-01", " 2025-01-01 10:00:00 ", "0000-00-00"],
    "date": ["2025-02-28", None, date(2024, 2, 29), datetime(2024, 3, 1), "2025-02-28 00:00:00",
             "0000-00-00"],
}  # fmt: skip
UNFIT: dict[str, list[Any]] = {
    "integer": [2**63, 1.5, "x", True],  # the id columns are BIGINT
    "decimal": ["12\n34", "abc", "1" * 11, float("nan")],
    "text": [b"\xff\xfe"],
    "datetime": ["2025-02-30 10:00:00", "2025-01-01 10:00:00+02:00", "2025-01-01 10:00:00.00000Z"],
    "date": ["2025-02-30", "2025-01-01 10:00:00", "2025-13-01"],
}  # fmt: skip
KINDS = {
    "booking_id": "integer",
    "user_id": "integer",
    "apartment_id": "integer",
    "booking_date": "datetime",
    "checkin_date": "date",
    "checkout_date": "date",
    "total_price": "decimal",
    "currency": "text",
    "booking_status": "text",
    "last_modified_timestamp": "datetime",
}


def one_by_one(rows: list[tuple[Any, ...]]) -> list[str]:
    line = row_formatter(BOOKINGS)
    return [line(row) for row in rows]


# The values written unchanged, per kind of column (the whole-column paths take these).
CANONICAL: dict[str, list[Any]] = {
    "integer": [1, -5, 0, 2**31 - 1, -(2**31)],
    "decimal": ["1.50", "-0.01", "3", "9999999999.99"],
    "text": ["a", 'q"uote', "", "line\nend"],
    "date": ["2025-02-28", "2024-02-29", "0001-01-01"],
}


@pytest.mark.parametrize("seed", range(60))
def test_a_batch_is_written_as_row_by_row(seed: int) -> None:
    """Random batches whose columns are each canonical only (the whole-column paths),
    canonical with NULLs, or anything that fits."""
    draw = random.Random(seed)
    columns = []
    for name in BOOKINGS.column_names:
        kind = KINDS[name]
        micros = name == "last_modified_timestamp"
        canonical = CANONICAL.get(kind) or (
            ["2025-01-01 10:00:00.000000", "2025-01-01 10:00:00.123400"]
            if micros
            else ["2025-01-01 10:00:00", "1999-12-31 23:59:59"]
        )
        anything = FITTING[kind]
        if micros:  # NOT NULL
            anything = [v for v in anything if v is not None and v != "0000-00-00"]
        pool = draw.choice([canonical, canonical + [None] * (not micros), anything])
        columns.append([draw.choice(pool) for _ in range(30)])
    rows = list(zip(*columns))
    assert batch_formatter(BOOKINGS)(rows) == one_by_one(rows)


@pytest.mark.parametrize(("name", "value"), [(n, v) for n in KINDS for v in UNFIT[KINDS[n]]])
def test_a_value_that_does_not_fit_fails_the_batch_as_it_fails_its_row(
    name: str, value: Any
) -> None:
    good = (1, 7, 9, "2025-01-01 10:00:00", "2025-02-01", "2025-02-03", "120.50", "EUR", "paid",
            "2025-01-01 10:00:00.000001")  # fmt: skip
    bad = tuple(value if n == name else v for n, v in zip(BOOKINGS.column_names, good))
    rows = [good, bad, good]
    with pytest.raises(UnfitValue):
        row_formatter(BOOKINGS)(bad)
    with pytest.raises(UnfitValue):
        batch_formatter(BOOKINGS)(rows)
