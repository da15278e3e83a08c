"""The merge into curated (docs/contract.md §5): latest valid version per key, newer rejected
versions leave the old one, re-merging changes nothing, rejected rows are recorded once, the quality
gate blocks before anything is merged, and all tables merge in one transaction. The transform's
output is written here by hand (Parquet via DuckDB), so these tests need no Spark."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from rentalctl import config
from rentalctl.context import Context
from rentalctl.curated import output_prefix
from rentalctl.errors import PipelineFailed
from rentalctl.pipeline.merge import merge

APT = (
    "SELECT * FROM (VALUES {rows}) AS t(id, title, source, price, currency, listing_created_on,"
    " is_active, last_modified_timestamp, price_usd)"
)
APT_TYPES = (
    "SELECT id::BIGINT id, title, source, price::DECIMAL(12,2) price, currency, "
    "listing_created_on::TIMESTAMP listing_created_on, is_active::BOOLEAN is_active, "
    "last_modified_timestamp::TIMESTAMP last_modified_timestamp, "
    "price_usd::DECIMAL(18,2) price_usd FROM ({inner})"
)
REJ = "SELECT * FROM (VALUES {rows}) AS t(source_table, record_key, reason, record, run_id)"


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    settings = config.load(env={"RENTALCTL_HOME": str(tmp_path / "home")})
    context = Context(settings)
    context.state.ensure()
    return context


def write_output(
    ctx: Context,
    table: str,
    run_id: str,
    curated_sql: str | None,
    rejected_sql: str | None,
    stats: dict | None = None,
) -> None:
    """What the transform step leaves in the lake for one table and run."""
    for kind, query in (("curated", curated_sql), ("rejected", rejected_sql)):
        if query:
            path = Path(ctx.lake.uri(output_prefix(kind, table, run_id) + "part-00000.parquet"))
            path.parent.mkdir(parents=True, exist_ok=True)
            duckdb.sql(f"COPY ({query}) TO '{path}' (FORMAT parquet)")
    doc = stats or {"rows_read": 1, "rejected": 0, "rejected_by_reason": {}}
    ctx.lake.put_bytes(
        output_prefix("curated", table, run_id) + "_stats.json", json.dumps(doc).encode()
    )


def apartments(*rows: str) -> str:
    return APT_TYPES.format(inner=APT.format(rows=", ".join(rows)))


def curated(ctx: Context, sql: str) -> list[tuple]:
    with ctx.warehouse() as w:
        return w.query(sql)


def test_versions_idempotence_and_rejected_newer_versions(ctx: Context) -> None:
    write_output(
        ctx,
        "apartments",
        "R1",
        apartments(
            "(1, 'A', 's', 100, 'EUR', '2024-01-01', true, '2025-01-01 10:00:00', 108)",
            "(2, 'B', 's', 200, 'USD', '2024-01-02', false, '2025-01-01 11:00:00', 200)",
        ),
        None,
    )
    merge(ctx, "R1", ["apartments"])
    merge(ctx, "R1", ["apartments"])  # a retried merge of the same run changes nothing

    # R2: a newer version of 1, an older version of 2 (late data), and a newer version of 2
    # that was rejected (only in the rejected output).
    write_output(
        ctx,
        "apartments",
        "R2",
        apartments(
            "(1, 'A2', 's', 110, 'EUR', '2024-01-01', true, '2025-01-02 10:00:00', 118.80)",
            "(2, 'B-old', 's', 150, 'USD', '2024-01-02', true, '2024-12-31 09:00:00', 150)",
        ),
        REJ.format(rows="('apartments', '2', 'invalid_price', '{\"id\":2,\"price\":-1}', 'R2')"),
    )
    report = merge(ctx, "R2", ["apartments"])

    assert curated(
        ctx,
        "SELECT id, title, price, price_usd, is_active, last_modified_timestamp "
        "FROM curated.apartments ORDER BY id",
    ) == [
        (1, "A2", Decimal("110.00"), Decimal("118.80"), True, datetime(2025, 1, 2, 10)),
        (2, "B", Decimal("200.00"), Decimal("200.00"), False, datetime(2025, 1, 1, 11)),
    ]
    assert curated(ctx, "SELECT * FROM curated.rejected_rows") == [
        ("apartments", "2", "invalid_price", '{"id":2,"price":-1}', "R2")
    ]
    assert (
        report["apartments"]["inserted"],
        report["apartments"]["updated"],
        report["apartments"]["unchanged"],
    ) == (0, 1, 1)
    assert curated(ctx, "SELECT currency, rate_to_usd FROM curated.fx_rates ORDER BY 1") == [
        ("EUR", Decimal("1.080000")),
        ("GBP", Decimal("1.270000")),
        ("INR", Decimal("0.012000")),
        ("USD", Decimal("1.000000")),
    ]


def test_a_rejected_version_read_again_is_recorded_once(ctx: Context) -> None:
    rejected = "('apartments', NULL, 'missing_key', '{\"id\":null}', 'RUN')"
    for run in ("R1", "R2"):
        write_output(ctx, "apartments", run, None, REJ.format(rows=rejected.replace("RUN", run)))
        merge(ctx, run, ["apartments"])
    assert curated(
        ctx, "SELECT source_table, record_key, reason, run_id FROM curated.rejected_rows"
    ) == [("apartments", None, "missing_key", "R1")]


def test_the_quality_gate_blocks_before_anything_is_merged(ctx: Context) -> None:
    write_output(
        ctx,
        "apartments",
        "R1",
        apartments("(1, 'A', 's', 100, 'EUR', '2024-01-01', true, '2025-01-01 10:00:00', 108)"),
        None,
        stats={
            "rows_read": 1000,
            "rejected": 300,
            "rejected_by_reason": {"invalid_price": 200, "missing_key": 100},
        },
    )
    with pytest.raises(PipelineFailed) as caught:
        merge(ctx, "R1", ["apartments"])
    assert str(caught.value) == (
        "data-quality gate: apartments rejected 300 of 1,000 rows (30.0%: invalid_price 200, "
        "missing_key 100), above quality.max_rejected_share 20%; nothing was merged"
    )
    assert caught.value.exit_code == 1
    with ctx.warehouse() as w:
        assert w.query(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'curated'"
        ) == [(0,)]


def test_report_is_stored_with_the_run_and_counts_orphans(ctx: Context) -> None:
    write_output(
        ctx,
        "apartments",
        "R1",
        apartments("(1, 'A', 's', 100, 'EUR', '2024-01-01', true, '2025-01-01 10:00:00', 108)"),
        None,
    )
    bookings = (
        "SELECT booking_id::BIGINT booking_id, user_id::BIGINT user_id, "
        "apartment_id::BIGINT apartment_id, booking_date::TIMESTAMP booking_date, "
        "checkin_date::DATE checkin_date, checkout_date::DATE checkout_date, "
        "total_price::DECIMAL(12,2) total_price, currency, booking_status, "
        "last_modified_timestamp::TIMESTAMP last_modified_timestamp, "
        "total_price_usd::DECIMAL(18,2) total_price_usd, nights::INTEGER nights FROM (VALUES "
        "(10, 7, 1, '2025-01-01', '2025-02-01', '2025-02-03', 200, 'USD', 'confirmed', "
        "'2025-01-01', 200, 2), "
        "(11, 7, 999, '2025-01-01', '2025-02-01', '2025-02-03', 200, 'USD', 'confirmed', "
        "'2025-01-01', 200, 2)) AS t(booking_id, user_id, apartment_id, booking_date, "
        "checkin_date, checkout_date, total_price, currency, booking_status, "
        "last_modified_timestamp, total_price_usd, nights)"
    )
    write_output(
        ctx,
        "bookings",
        "R1",
        bookings,
        None,
        stats={"rows_read": 3, "rejected": 0, "superseded": 1, "rejected_by_reason": {}},
    )
    report = merge(ctx, "R1", ["bookings", "apartments"])
    assert report["bookings"] == {
        "rows_read": 3,
        "rejected": 0,
        "superseded": 1,
        "rejected_by_reason": {},
        "inserted": 2,
        "updated": 0,
        "unchanged": 0,
        "orphans": 1,
    }
    assert ctx.state.get_run("R1")["quality"] == report  # type: ignore[index]


def test_all_tables_merge_in_one_transaction(ctx: Context) -> None:
    write_output(
        ctx,
        "apartments",
        "R1",
        apartments("(1, 'A', 's', 100, 'EUR', '2024-01-01', true, '2025-01-01 10:00:00', 108)"),
        None,
    )
    write_output(ctx, "bookings", "R1", None, None)
    broken = Path(ctx.lake.uri(output_prefix("curated", "bookings", "R1") + "part-00000.parquet"))
    broken.write_bytes(b"not parquet")
    with pytest.raises(PipelineFailed, match="rolled back"):
        merge(ctx, "R1", ["apartments", "bookings"])
    with ctx.warehouse() as w:  # not even the apartments, merged before the broken file
        assert w.query(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'curated'"
        ) == [(0,)]


def test_transform_output_missing_is_a_clear_failure(ctx: Context) -> None:
    with pytest.raises(PipelineFailed, match="no transform output for bookings in run R9"):
        merge(ctx, "R9", ["bookings"])


def test_a_viewing_repeated_in_a_later_run_is_a_duplicate(ctx: Context) -> None:
    def viewings(rows: str) -> str:
        return (
            "SELECT id::BIGINT id, user_id::BIGINT user_id, apartment_id::BIGINT apartment_id,"
            " viewed_at::TIMESTAMP viewed_at, is_wishlisted::BOOLEAN is_wishlisted, "
            f"call_to_action FROM (VALUES {rows}) AS t(id, user_id, apartment_id, viewed_at, "
            "is_wishlisted, call_to_action)"
        )

    with ctx.warehouse() as w:  # the raw rows the loads would have written
        w.execute_transaction(
            [
                "CREATE SCHEMA IF NOT EXISTS raw",
                "CREATE TABLE raw.user_viewing (id BIGINT, user_id BIGINT, apartment_id BIGINT, "
                "viewed_at TIMESTAMP, is_wishlisted VARCHAR, call_to_action VARCHAR, "
                "_run_id VARCHAR, _extracted_at TIMESTAMP)",
                "INSERT INTO raw.user_viewing VALUES "
                "(5, 1, 2, '2025-01-01 10:00:00', 'yes', 'save', 'R1', now()), "
                "(9, 1, 2, '2025-01-01 10:00:00', 'Y ', NULL, 'R2', now())",
            ]
        )
    write_output(
        ctx, "user_viewing", "R1", viewings("(5, 1, 2, '2025-01-01 10:00:00', true, 'save')"), None
    )
    merge(ctx, "R1", ["user_viewing"])
    write_output(
        ctx, "user_viewing", "R2", viewings("(9, 1, 2, '2025-01-01 10:00:00', true, NULL)"), None
    )
    merge(ctx, "R2", ["user_viewing"])
    merge(ctx, "R2", ["user_viewing"])  # and again: still recorded once
    assert curated(ctx, "SELECT id FROM curated.user_viewing") == [(5,)]
    assert curated(ctx, "SELECT * FROM curated.rejected_rows") == [
        (
            "user_viewing",
            "9",
            "duplicate",
            '{"id":9,"user_id":1,"apartment_id":2,"viewed_at":"2025-01-01 10:00:00.000000",'
            '"is_wishlisted":"Y ","call_to_action":null}',
            "R2",
        )
    ]
