"""The curated layer's contract (docs/contract.md §5), declared once: table columns with their
warehouse types, keys, the rejection reasons in the order they are tested, and where a run's
transform output lives in the lake.

The Spark transform produces exactly these columns; the merge, the DDL in ``redshift/`` and the
KPI SQL read them. Types are spelled as Redshift and DuckDB both accept them, with one caveat:
a VARCHAR length here counts characters, as MySQL's does, while Redshift's counts bytes, so the
Redshift DDL goes through ``redshift_type``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEMA = "curated"
#: Redshift's longest VARCHAR, in bytes
REDSHIFT_VARCHAR_MAX = 65535
#: room kept at the end of a rejected record cut to REDSHIFT_VARCHAR_MAX bytes for its marker,
#: " ...[truncated from <size> bytes, sha256 <64 hex>]"
RECORD_MARKER_BYTES = 128


def redshift_type(sql_type: str) -> str:
    """``sql_type`` for Redshift: VARCHAR(n) of n characters becomes VARCHAR(4n) bytes (a UTF-8
    character takes up to 4 bytes, as in MySQL's utf8mb4), at most 65535; other types are
    unchanged."""
    m = re.fullmatch(r"VARCHAR\((\d+)\)", sql_type)
    if m is None:
        return sql_type
    return f"VARCHAR({min(4 * int(m.group(1)), REDSHIFT_VARCHAR_MAX)})"


@dataclass(frozen=True)
class CuratedTable:
    name: str
    key: str
    columns: tuple[tuple[str, str], ...]  # (name, warehouse type)
    #: the column that orders versions of one key (None: append-only, one version per key)
    version: str | None

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


APARTMENTS = CuratedTable(
    name="apartments",
    key="id",
    version="last_modified_timestamp",
    columns=(
        ("id", "BIGINT"),
        ("title", "VARCHAR(255)"),
        ("source", "VARCHAR(50)"),
        ("price", "DECIMAL(12,2)"),
        ("currency", "VARCHAR(10)"),
        ("listing_created_on", "TIMESTAMP"),
        ("is_active", "BOOLEAN"),
        ("last_modified_timestamp", "TIMESTAMP"),
        ("price_usd", "DECIMAL(18,2)"),
    ),
)
APARTMENT_ATTRIBUTES = CuratedTable(
    name="apartment_attributes",
    key="id",
    version="last_modified_timestamp",
    columns=(
        ("id", "BIGINT"),
        ("category", "VARCHAR(50)"),
        ("body", "VARCHAR(65535)"),
        ("amenities", "VARCHAR(65535)"),
        ("bathrooms", "DECIMAL(3,1)"),
        ("bedrooms", "DECIMAL(3,1)"),
        ("fee", "DECIMAL(10,2)"),
        ("has_photo", "BOOLEAN"),
        ("pets_allowed", "VARCHAR(50)"),
        ("price_display", "VARCHAR(50)"),
        ("price_type", "VARCHAR(20)"),
        ("square_feet", "INTEGER"),
        ("address", "VARCHAR(255)"),
        ("cityname", "VARCHAR(100)"),
        ("state", "VARCHAR(50)"),
        ("latitude", "DECIMAL(10,7)"),
        ("longitude", "DECIMAL(10,7)"),
        ("last_modified_timestamp", "TIMESTAMP"),
    ),
)
USER_VIEWING = CuratedTable(
    name="user_viewing",
    key="id",
    version=None,
    columns=(
        ("id", "BIGINT"),
        ("user_id", "BIGINT"),
        ("apartment_id", "BIGINT"),
        ("viewed_at", "TIMESTAMP"),
        ("is_wishlisted", "BOOLEAN"),
        ("call_to_action", "VARCHAR(50)"),
    ),
)
BOOKINGS = CuratedTable(
    name="bookings",
    key="booking_id",
    version="last_modified_timestamp",
    columns=(
        ("booking_id", "BIGINT"),
        ("user_id", "BIGINT"),
        ("apartment_id", "BIGINT"),
        ("booking_date", "TIMESTAMP"),
        ("checkin_date", "DATE"),
        ("checkout_date", "DATE"),
        ("total_price", "DECIMAL(12,2)"),
        ("currency", "VARCHAR(10)"),
        ("booking_status", "VARCHAR(20)"),
        ("last_modified_timestamp", "TIMESTAMP"),
        ("total_price_usd", "DECIMAL(18,2)"),
        ("nights", "INTEGER"),
    ),
)
CURATED: dict[str, CuratedTable] = {
    t.name: t for t in (APARTMENTS, APARTMENT_ATTRIBUTES, USER_VIEWING, BOOKINGS)
}

FX_RATES_COLUMNS = (("currency", "VARCHAR(10)"), ("rate_to_usd", "DECIMAL(18,6)"))
REJECTED_ROWS_COLUMNS = (
    ("source_table", "VARCHAR(64)"),
    ("record_key", "VARCHAR(64)"),  # the source key as text; NULL when the key is NULL
    ("reason", "VARCHAR(32)"),
    # the raw row as extracted, as JSON text (nulls included), at most REDSHIFT_VARCHAR_MAX bytes
    ("record", "VARCHAR(65535)"),
    ("run_id", "VARCHAR(64)"),  # the run that first rejected this exact row version
)
# Rows removed from the curated layer because their key left the source
# (``rentalctl.pipeline.reconcile``), one per table, key and run.
DELETED_ROWS_COLUMNS = (
    ("source_table", "VARCHAR(64)"),
    ("record_key", "VARCHAR(64)"),  # the source key as text, as in rejected_rows
    ("run_id", "VARCHAR(64)"),  # the run whose reconciliation found the key gone
    ("deleted_at", "TIMESTAMP"),  # UTC, when that run's merge removed the row
)
# The key pages' fingerprints the last reconciling merge of each table read from the source
# (rentalctl.pipeline.key_pages): what the next reconciling extract compares with.
KEY_PAGES_COLUMNS = (
    ("source_table", "VARCHAR(64)"),
    ("run_id", "VARCHAR(64)"),  # the run whose extract read them
    ("page_base", "BIGINT"),
    ("key_count", "BIGINT"),
    ("offset_sum", "BIGINT"),
    ("offset_squares", "BIGINT"),
)

# The reason of a row quarantined at extraction: one of its values does not fit its column's
# type (text in a number column, 30 February, ...). It comes before every reason below, which
# the transform tests on the rows that could be typed.
INVALID_VALUE = "invalid_value"

# Rejection reasons per table, in the order they are tested: a row gets the first that applies.
REASONS: dict[str, tuple[str, ...]] = {
    "apartments": (
        "missing_key",
        "invalid_price",
        "unknown_currency",
        "missing_date",
        "invalid_boolean",
    ),
    "apartment_attributes": ("missing_key", "invalid_measure"),
    "user_viewing": ("missing_field", "invalid_boolean", "duplicate"),
    "bookings": (
        "missing_key",
        "missing_field",
        "invalid_stay",
        "invalid_price",
        "unknown_currency",
        "invalid_status",
    ),
}

BOOKING_STATUSES = ("confirmed", "canceled", "pending")
TRUE_WORDS = ("y", "yes", "true", "t", "1")
FALSE_WORDS = ("n", "no", "false", "f", "0")


def output_prefix(kind: str, table: str, run_id: str) -> str:
    """Where the transform writes a run's output in the lake (Parquet): ``kind`` is ``curated``
    (the valid, deduplicated rows of ``table``) or ``rejected`` (its rejected rows, with the
    columns of REJECTED_ROWS_COLUMNS)."""
    return f"{kind}/{table}/run_id={run_id}/"


def data_files(prefix: str, keys: list[str]) -> list[str]:
    """The Parquet data files among ``keys`` (a listing of the output ``prefix``): the files Spark
    named ``part-*.parquet`` directly under it. Never its ``_SUCCESS`` marker, its checksum files,
    ``_stats.json``, a COPY manifest, or what a crashed attempt left in ``_temporary/``."""
    return [
        key
        for key in keys
        if key.startswith(prefix)
        and "/" not in key[len(prefix) :]
        and key.rsplit("/", 1)[-1].startswith("part-")
        and key.endswith(".parquet")
    ]
