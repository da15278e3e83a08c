"""Two different rows of one key with the same ``last_modified_timestamp`` that arrive in
different runs end as one run over both would leave them: the merge orders them as the
transform does (the greatest source columns, compared in order, win; NULL is the smallest), in
either order of arrival. And a raw load does not count such a row as already curated, so the
transform does not skip it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from rentalctl.context import Context
from rentalctl.pipeline import curated_sql
from rentalctl.pipeline.merge import merge
from tests.test_merge import apartments, ctx, curated, write_output

__all__ = ["ctx"]  # the fixture, shared with the merge tests

T = "2025-01-01 10:00:00"
# Three rows of apartment 1 at the same version, in the transform's order from the least:
# a NULL title sorts below any title; 'Loft' below 'Studio'.
NO_TITLE = f"(1, NULL, 's', 100, 'EUR', '2024-01-01', true, '{T}', 108)"
LOFT = f"(1, 'Loft', 's', 100, 'EUR', '2024-01-01', true, '{T}', 108)"
STUDIO = f"(1, 'Studio', 's', 90, 'EUR', '2024-01-01', true, '{T}', 97.20)"
# Apartment 2: rows equal up to is_active; true sorts above false.
INACTIVE = f"(2, 'Flat', 's', 100, 'USD', '2024-01-01', false, '{T}', 100)"
ACTIVE = f"(2, 'Flat', 's', 100, 'USD', '2024-01-01', true, '{T}', 100)"


def _merge_in_order(ctx: Context, *runs: tuple[str, ...]) -> list[tuple]:
    for number, rows in enumerate(runs, start=1):
        write_output(ctx, "apartments", f"R{number}", apartments(*rows), None)
        merge(ctx, f"R{number}", ["apartments"])
    return curated(ctx, "SELECT id, title, price, is_active FROM curated.apartments ORDER BY id")


GREATEST = [(1, "Studio", Decimal("90.00"), True), (2, "Flat", Decimal("100.00"), True)]


def test_the_greatest_row_of_a_version_wins_arriving_last(ctx: Context) -> None:
    assert _merge_in_order(ctx, (NO_TITLE, INACTIVE), (LOFT, ACTIVE), (STUDIO,)) == GREATEST


def test_the_greatest_row_of_a_version_stays_arriving_first(ctx: Context) -> None:
    assert _merge_in_order(ctx, (STUDIO, ACTIVE), (LOFT, INACTIVE), (NO_TITLE,)) == GREATEST
    report = merge(ctx, "R3", ["apartments"])
    assert (report["apartments"]["inserted"], report["apartments"]["updated"]) == (0, 0)


def test_a_newer_version_still_wins_over_greater_columns(ctx: Context) -> None:
    newer = "(1, 'Attic', 's', 80, 'EUR', '2024-01-01', false, '2025-01-01 10:00:01', 86.40)"
    assert _merge_in_order(ctx, (STUDIO,), (newer,), (STUDIO,)) == [
        (1, "Attic", Decimal("80.00"), False)
    ]
    assert curated(ctx, "SELECT last_modified_timestamp FROM curated.apartments") == [
        (datetime(2025, 1, 1, 10, 0, 1),)
    ]


def test_another_row_of_the_curated_version_is_not_already_curated(ctx: Context) -> None:
    raw = (
        f"(1, 'Loft', 's', 100, 'EUR', '2024-01-01', 1, '{T}', '{run}', now())"
        for run in ("R1", "R3")
    )
    with ctx.warehouse() as w:  # R1 and R3 read the same row; R2 another row of its version
        w.execute_transaction(
            [
                "CREATE SCHEMA raw",
                "CREATE TABLE raw.apartments (id BIGINT, title VARCHAR, source VARCHAR, "
                "price DECIMAL(12,2), currency VARCHAR, listing_created_on TIMESTAMP, "
                "is_active SMALLINT, last_modified_timestamp TIMESTAMP, _run_id VARCHAR, "
                "_extracted_at TIMESTAMP)",
                "INSERT INTO raw.apartments VALUES " + ", ".join(raw),
                "INSERT INTO raw.apartments VALUES (1, 'Loft', NULL, 100, 'EUR', "
                f"'2024-01-01', 1, '{T}', 'R2', now())",
            ]
        )
    write_output(ctx, "apartments", "R1", apartments(LOFT), None)
    merge(ctx, "R1", ["apartments"])
    counted = {}
    with ctx.warehouse() as w:
        for run in ("R2", "R3"):
            sql = curated_sql.not_curated_sql("apartments", w.placeholder)
            counted[run] = w.query(sql, [run])[0][0]
    # R3 read R1's row again; R2's row differs from it in `source`.
    assert counted == {"R2": 1, "R3": 0}


def test_the_already_curated_count_nests_no_correlation_two_levels_deep() -> None:
    """Redshift refuses a correlated reference that skips a query level; every subquery of the
    count refers to the outer raw row from one level down only."""
    import sqlglot
    from sqlglot import exp

    for table in ("apartments", "apartment_attributes", "user_viewing", "bookings"):
        tree = sqlglot.parse_one(curated_sql.not_curated_sql(table, "%s"), read="redshift")
        subqueries = list(tree.find_all(exp.Exists))
        assert subqueries
        assert all(s.this.find(exp.Exists) is None for s in subqueries), table
