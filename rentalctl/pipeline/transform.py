"""The curated transform (docs/contract.md §5): raw rows of one table and run -> curated rows and
rejected rows. Pure DataFrame -> DataFrame functions with explicit parameters; reads and writes
happen in ``transform_job``, the row types are ``transform_schema``'s. Spark built-in functions
only, never Python UDFs: they run inside the JVM (fast on Glue) and behave the same everywhere.
The same code runs on DuckDB through SQLFrame (``frame_api``): only functions both engines answer
identically are used, and each entry point resolves ``F``, ``T`` and ``Window`` for the engine of
the DataFrame it is given.

Every raw row ends up in exactly one of three places (``_status`` of ``classify``):
- ``rejected``: the first failing check in ``REASONS`` order, recorded with the raw row as JSON
  (``transform_record``);
- ``curated``: the valid version kept for its key (the greatest ``last_modified_timestamp``);
- ``superseded``: a valid but older version of a key with a newer valid version in this input
  (in neither output, counted in the stats). Cross-run versions are the merge step's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rentalctl.curated import BOOKING_STATUSES, CURATED, FALSE_WORDS, REASONS, TRUE_WORDS
from rentalctl.errors import ConfigError
from rentalctl.pipeline.frame_api import SPARK, F, T, Window, current, follows_frame
from rentalctl.pipeline.transform_record import bounded_record, json_record
from rentalctl.pipeline.transform_schema import (
    curated_schema,
    raw_schema,
    rejected_schema,
    same_types,
)
from rentalctl.tables import Kind
from rentalctl.tables import table as table_spec

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

#: curated.fx_rates.rate_to_usd: the rates are used at exactly the precision the table keeps,
#: so every price_usd can be recomputed from curated.fx_rates.
RATE_PRECISION, RATE_SCALE = 18, 6
USD_TYPE = "DECIMAL(18,2)"

CURATED_STATUS, SUPERSEDED_STATUS, REJECTED_STATUS = "curated", "superseded", "rejected"


# --- normalisation --------------------------------------------------------------------------


def clean_text(c: Column) -> Column:
    r"""Runs of whitespace -> one space, trimmed, empty -> NULL. Whitespace is Unicode's
    White_Space: spaces, tabs, line ends, vertical tab and form feed, and also no-break, em,
    ideographic and other spaces and the line and paragraph separators, which text copied from
    web pages carries. Zero-width characters are not whitespace. The class is spelt out so that
    Java's regex and RE2 (DuckDB) read it alike: ``\s`` is ASCII whitespace in both, ``\p{Z}``
    the Unicode separators, plus the two White_Space controls outside both (U+000B and U+0085);
    ``(?U)`` would mean Unicode classes to Java but "ungreedy" to RE2."""
    collapsed = F.trim(F.regexp_replace(c, r"[\s\p{Z}\x0b\x85]+", " "))
    return F.when(collapsed != "", collapsed)  # no otherwise: NULL for "" (and for NULL)


def _unfold_dotted_capital_i(c: Column) -> Column:
    # The one letter whose lower case Java (Spark) and DuckDB disagree on in practice: Java maps
    # U+0130 (Turkish dotted capital I, 'İstanbul') to 'i' + U+0307, DuckDB to a plain 'i'.
    # Spelling it as Java's answer first makes both engines lower-case it the same way.
    return F.regexp_replace(c, "\u0130", "i\u0307")


def _lower(c: Column) -> Column:
    return F.lower(_unfold_dotted_capital_i(c))


def _initcap(c: Column) -> Column:
    return F.initcap(_unfold_dotted_capital_i(c))


def _booking_status(c: Column) -> Column:
    lowered = _lower(c)
    return F.when(lowered == "cancelled", F.lit("canceled")).otherwise(lowered)


# Column-specific rules, applied to the cleaned text (same rule wherever the column appears).
# (Functions, not F's members: F resolves to an engine's function at call time.)
_TEXT_RULES = {
    "currency": lambda c: F.upper(c),
    "booking_status": _booking_status,
    "cityname": _initcap,  # after collapsing: '  new   YORK ' -> 'New York'
}


def _word_boolean(c: Column, extra_true: tuple[str, ...] = ()) -> Column:
    """true/false for the words of docs/contract.md §5 (cleaned, any case); NULL for anything
    else."""
    word = _lower(c)
    return F.when(word.isin(*TRUE_WORDS, *extra_true), F.lit(True)).when(
        word.isin(*FALSE_WORDS), F.lit(False)
    )


def _usd(amount: Column) -> Column:
    # DECIMAL(12,2) * DECIMAL(19,6) is exact (DECIMAL(32,8) on Spark); the rate is widened to 19
    # digits so that DuckDB also computes in 128 bits (with both sides within 18 digits it keeps
    # 64 bits and overflows). Spark's and DuckDB's round on decimals is HALF_UP: 10.005 -> 10.01.
    return F.round(amount * F.col("_rate").cast("DECIMAL(19,6)"), 2).cast(USD_TYPE)


def _derived(table: str) -> dict[str, Column]:
    """Typed booleans and derived columns, computed from the normalised columns (and _rate)."""
    c = F.col
    if table == "apartments":
        return {
            "is_active": F.when(c("is_active") == 1, F.lit(True)).when(
                c("is_active") == 0, F.lit(False)
            ),
            "price_usd": _usd(c("price")),
        }
    if table == "apartment_attributes":
        # Anything but the words (NULL included) is NULL, never a rejection.
        return {"has_photo": _word_boolean(c("has_photo"), ("thumbnail",))}
    if table == "user_viewing":
        # NULL -> false; an unknown word stays NULL here and is rejected (invalid_boolean).
        word = c("is_wishlisted")
        return {"is_wishlisted": F.when(word.isNull(), F.lit(False)).otherwise(_word_boolean(word))}
    if table == "bookings":
        return {
            "total_price_usd": _usd(c("total_price")),
            # INTEGER on both engines (DuckDB's date difference is a BIGINT)
            "nights": F.datediff(c("checkout_date"), c("checkin_date")).cast("int"),
        }
    raise ValueError(table)


def _checks(table: str) -> list[tuple[str, Column]]:
    """(reason, condition) in REASONS order, over the normalised and derived columns. The
    ``duplicate`` check of user_viewing needs a window and is added in ``classify``."""
    c = F.col
    if table == "apartments":
        return [
            ("missing_key", c("id").isNull()),
            ("invalid_price", c("price").isNull() | (c("price") <= 0)),
            ("unknown_currency", c("_rate").isNull()),  # NULL currency has no rate either
            ("missing_date", c("listing_created_on").isNull()),
            ("invalid_boolean", c("is_active").isNull()),  # NULL, or neither 0 nor 1
        ]
    if table == "apartment_attributes":
        return [
            ("missing_key", c("id").isNull()),
            # NULL measures compare as unknown, which passes the check.
            (
                "invalid_measure",
                (c("bedrooms") < 0) | (c("bathrooms") < 0) | (c("square_feet") <= 0),
            ),
        ]
    if table == "user_viewing":
        return [
            (
                "missing_field",
                c("user_id").isNull() | c("apartment_id").isNull() | c("viewed_at").isNull(),
            ),
            ("invalid_boolean", c("is_wishlisted").isNull()),
        ]
    if table == "bookings":
        return [
            ("missing_key", c("booking_id").isNull()),
            (
                "missing_field",
                c("user_id").isNull()
                | c("apartment_id").isNull()
                | c("checkin_date").isNull()
                | c("checkout_date").isNull(),
            ),
            ("invalid_stay", c("checkout_date") <= c("checkin_date")),
            ("invalid_price", c("total_price").isNull() | (c("total_price") < 0)),
            ("unknown_currency", c("_rate").isNull()),
            (
                "invalid_status",
                ~F.coalesce(c("booking_status").isin(*BOOKING_STATUSES), F.lit(False)),
            ),
        ]
    raise ValueError(table)


def rate_texts(rates: Mapping[str, Decimal]) -> list[tuple[str, str]]:
    """(currency, rate as text) in currency order, each rate checked against the type of
    curated.fx_rates.rate_to_usd (DECIMAL(18,6)), or ConfigError."""
    texts = []
    for code, rate in sorted(rates.items()):
        value = Decimal(str(rate))
        exact = value.is_finite() and value == value.quantize(Decimal("0.000001"))
        if not exact or value.adjusted() >= RATE_PRECISION - RATE_SCALE:
            raise ConfigError(
                f"fx rate {code} = {rate} does not fit curated.fx_rates.rate_to_usd "
                "DECIMAL(18,6): use at most 6 decimal places"
            )
        texts.append((code, str(value)))
    return texts


def rates_column(rates: Mapping[str, Decimal]) -> Column:
    """The rates as a literal map column (currency -> DECIMAL(18,6)); no join, no UDF."""
    rate_type = T.DecimalType(RATE_PRECISION, RATE_SCALE)
    if not rates:
        return F.lit(None).cast(T.MapType(T.StringType(), rate_type))
    parts = []
    for code, text in rate_texts(rates):
        parts += [F.lit(code), F.lit(text).cast(rate_type)]
    return F.create_map(*parts)


# --- the transform --------------------------------------------------------------------------


@follows_frame("raw")
def classify(table: str, raw: DataFrame, rates: Mapping[str, Decimal]) -> DataFrame:
    """Every raw row, normalised and typed, with ``_record_key``, ``_record`` (raw JSON),
    ``_reason`` (NULL when valid) and ``_status`` (curated | superseded | rejected)."""
    spec = table_spec(table)
    curated = CURATED[spec.name]
    if not same_types(raw.schema, raw_schema(spec.name)):
        raise ValueError(
            f"raw {spec.name} has schema {raw.schema.simpleString()}, "
            f"expected {raw_schema(spec.name).simpleString()}"
        )

    # The raw row as JSON, before any normalisation; nulls kept so every column is present.
    normalised = []
    for column in spec.columns:
        value = F.col(column.name)
        if column.kind is Kind.TEXT:
            value = clean_text(value)
            rule = _TEXT_RULES.get(column.name)
            if rule is not None:
                value = rule(value)
        normalised.append(value.alias(column.name))
    # The raw values are carried along only until the rejected rows' JSON is built below.
    raw_names = [f"_raw_{name}" for name in spec.column_names]
    df = raw.select(
        *normalised,
        F.col(spec.key).cast("string").alias("_record_key"),
        *[F.col(name).alias(alias) for name, alias in zip(spec.column_names, raw_names)],
    )
    if "currency" in spec.column_names:
        df = df.withColumn("_rate", F.try_element_at(rates_column(rates), F.col("currency")))
    df = df.withColumns(_derived(spec.name))

    checks = _checks(spec.name)
    # The first check that holds names the reason; a NULL condition counts as false (passes).
    reason = F.when(checks[0][1], F.lit(checks[0][0]))
    for name, condition in checks[1:]:
        reason = reason.when(condition, F.lit(name))
    df = df.withColumn("_reason", reason)
    listed = [name for name, _ in checks]
    if spec.name == "user_viewing":
        # A duplicate is an otherwise valid row whose (user_id, apartment_id, viewed_at) also
        # belongs to a valid row with a smaller id in this input; the smallest id is kept.
        # Rows with the same id are versions of one key, not duplicates (handled below).
        same_view = Window.partitionBy("user_id", "apartment_id", "viewed_at")
        first_id = F.min(F.when(F.col("_reason").isNull(), F.col("id"))).over(same_view)
        df = df.withColumn(
            "_reason",
            F.coalesce(F.col("_reason"), F.when(F.col("id") > first_id, F.lit("duplicate"))),
        )
        listed.append("duplicate")
    if tuple(listed) != REASONS[spec.name]:
        raise AssertionError(f"checks {listed} out of step with REASONS[{spec.name!r}]")

    # The raw row as JSON, for rejected rows only (building it for every row costs more than
    # the rest of the transform); nulls kept so every column is present.
    # Two steps: ``bounded_record`` uses the record many times, and an engine that inlines
    # expressions as SQL text (DuckDB through SQLFrame) would otherwise repeat it in each place.
    df = df.withColumn(
        "_record", F.when(F.col("_reason").isNotNull(), json_record(spec.columns, raw_names))
    ).drop(*raw_names)
    df = df.withColumn("_record", bounded_record(F.col("_record")))

    # One version per key among the VALID rows: a newer rejected version never displaces an
    # older valid one. Ties on the timestamp between different rows of one key (and, for the
    # append-only user_viewing, any rows sharing an id) keep the row whose columns, compared in
    # order, are greatest, so the choice depends on the data only, never on partitioning;
    # exact copies collapse into one.
    valid = F.col("_reason").isNull()
    order = [F.col(curated.version).desc()] if curated.version else []
    ties = [F.col(name).desc_nulls_last() for name in spec.column_names]
    versions = Window.partitionBy(spec.key).orderBy(valid.desc(), *order, *ties)
    status = (
        F.when(~valid, F.lit(REJECTED_STATUS))
        .when(F.row_number().over(versions) == 1, F.lit(CURATED_STATUS))
        .otherwise(F.lit(SUPERSEDED_STATUS))
    )
    return df.withColumn("_status", status)


# Spark 3 refuses by default to write dates before 1582-10-15 and timestamps before 1900 into
# Parquet, in case a Spark 2 reader with the old hybrid calendar reads them. The curated files
# are read by DuckDB and Redshift, which use the proleptic Gregorian calendar as Spark 3 does: the
# values are written as they are (a listing created in 1899 is data, not a crash).
PARQUET_CALENDAR_CONF = {
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
}


@follows_frame("classified")
def split(table: str, classified: DataFrame, run_id: str) -> tuple[DataFrame, DataFrame]:
    """(curated, rejected) of a ``classify`` result, ready to be written as Parquet (a Spark
    session is set to write old dates and timestamps unchanged; DuckDB always does)."""
    if current() == SPARK:
        for key, value in PARQUET_CALENDAR_CONF.items():
            classified.sparkSession.conf.set(key, value)
    spec = table_spec(table)
    expected = curated_schema(spec.name)
    # No casts here: each column already has its contract type, and a cast would hide a bug.
    curated = classified.where(F.col("_status") == CURATED_STATUS).select(
        *[F.col(f.name) for f in expected.fields]
    )
    rejected = classified.where(F.col("_status") == REJECTED_STATUS).select(
        F.lit(spec.name).alias("source_table"),
        F.col("_record_key").alias("record_key"),
        F.col("_reason").alias("reason"),
        F.col("_record").alias("record"),
        F.lit(run_id).alias("run_id"),
    )
    for frame, schema in ((curated, expected), (rejected, rejected_schema())):
        if not same_types(frame.schema, schema):  # schema only: no Spark job runs
            raise AssertionError(f"{spec.name}: {frame.schema} is not {schema}")
    return curated, rejected


def transform(
    table: str, raw: DataFrame, run_id: str, rates: Mapping[str, Decimal]
) -> tuple[DataFrame, DataFrame]:
    """The curated and rejected rows of one table's raw rows of one run."""
    return split(table, classify(table, raw, rates), run_id)


def empty_stats(table: str) -> dict[str, Any]:
    return {
        "rows_read": 0,
        "valid": 0,
        "superseded": 0,
        "curated": 0,
        "rejected": 0,
        "rejected_by_reason": dict.fromkeys(REASONS[table_spec(table).name], 0),
    }


@follows_frame("classified")
def stats(table: str, classified: DataFrame) -> dict[str, Any]:
    """Counts of a ``classify`` result, from one aggregation (a handful of rows reach the
    driver, never the data). Every reason of the table is listed, in order, zeros included."""
    out = empty_stats(table)
    for row in classified.groupBy("_status", "_reason").count().collect():
        n = int(row["count"])
        out["rows_read"] += n
        out[row["_status"]] += n
        if row["_status"] == REJECTED_STATUS:
            out["rejected_by_reason"][row["_reason"]] += n
    out["valid"] = out["curated"] + out["superseded"]
    return out
