"""The curated transform (docs/contract.md §5): raw rows of one table and run -> curated rows and
rejected rows. Pure DataFrame -> DataFrame functions with explicit parameters; reads and writes
happen in ``transform_job``. Spark built-in functions only, never Python UDFs: they run inside
the JVM (fast on Glue) and behave the same everywhere. The same code runs on DuckDB through
SQLFrame (``frame_api``): only functions both engines answer identically are used, and each entry
point resolves ``F``, ``T`` and ``Window`` for the engine of the DataFrame it is given.

Every raw row ends up in exactly one of three places (``_status`` of ``classify``):
- ``rejected``: the first failing check in ``REASONS`` order, recorded with the raw row as JSON;
- ``curated``: the valid version kept for its key (the greatest ``last_modified_timestamp``);
- ``superseded``: a valid but older version of a key with a newer valid version in this input
  (in neither output, counted in the stats). Cross-run versions are the merge step's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rentalctl.curated import (
    BOOKING_STATUSES,
    CURATED,
    FALSE_WORDS,
    REASONS,
    REDSHIFT_VARCHAR_MAX,
    REJECTED_ROWS_COLUMNS,
    TRUE_WORDS,
)
from rentalctl.errors import ConfigError
from rentalctl.pipeline.frame_api import SPARK, F, T, Window, current, follows_frame
from rentalctl.tables import Column as SpecColumn
from rentalctl.tables import Kind
from rentalctl.tables import table as table_spec

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

#: curated.fx_rates.rate_to_usd: the rates are used at exactly the precision the table keeps,
#: so every price_usd can be recomputed from curated.fx_rates.
RATE_PRECISION, RATE_SCALE = 18, 6
USD_TYPE = "DECIMAL(18,2)"
#: how timestamps appear in a rejected row's JSON (DATETIME(6) keeps its microseconds)
RECORD_TIMESTAMP_FORMAT = "yyyy-MM-dd HH:mm:ss.SSSSSS"
REJECTED_COLUMNS = tuple(name for name, _ in REJECTED_ROWS_COLUMNS)

CURATED_STATUS, SUPERSEDED_STATUS, REJECTED_STATUS = "curated", "superseded", "rejected"


# --- types ----------------------------------------------------------------------------------


def raw_type(column: SpecColumn) -> T.DataType:
    """The Spark type a raw (source) column is read as."""
    base = column.mysql_type.split("(")[0].upper()
    if base == "BIGINT":
        return T.LongType()
    if base in ("INT", "TINYINT"):
        return T.IntegerType()
    if column.kind is Kind.DECIMAL:
        precision_scale = column.precision_scale
        assert precision_scale is not None, column
        return T.DecimalType(*precision_scale)
    if column.kind is Kind.TEXT:
        return T.StringType()
    if column.kind is Kind.DATETIME:
        return T.TimestampNTZType()  # wall-clock time, no zone: it is how the source holds it
    if column.kind is Kind.DATE:
        return T.DateType()
    raise ValueError(f"no Spark type for {column}")


def raw_schema(table: str) -> T.StructType:
    """The schema of a table's raw files, from its spec (column order included)."""
    return T.StructType(
        [T.StructField(c.name, raw_type(c), True) for c in table_spec(table).columns]
    )


def warehouse_type(sql_type: str) -> T.DataType:
    """The Spark type of a curated column declared in curated.py (e.g. ``DECIMAL(12,2)``)."""
    base, _, rest = sql_type.upper().partition("(")
    simple: dict[str, T.DataType] = {
        "BIGINT": T.LongType(),
        "INTEGER": T.IntegerType(),
        "BOOLEAN": T.BooleanType(),
        "TIMESTAMP": T.TimestampNTZType(),
        "DATE": T.DateType(),
        "VARCHAR": T.StringType(),
    }
    if base == "DECIMAL":
        precision, scale = (int(x) for x in rest.rstrip(")").split(","))
        return T.DecimalType(precision, scale)
    return simple[base]


def curated_schema(table: str) -> T.StructType:
    return T.StructType(
        [T.StructField(name, warehouse_type(t), True) for name, t in CURATED[table].columns]
    )


def rejected_schema() -> T.StructType:
    return T.StructType([T.StructField(name, T.StringType(), True) for name in REJECTED_COLUMNS])


def _same_types(actual: T.StructType, expected: T.StructType) -> bool:
    return [(f.name, f.dataType) for f in actual.fields] == [
        (f.name, f.dataType) for f in expected.fields
    ]


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


#: room kept for the marker of a cut record: " ...[truncated from <size> bytes, sha256 <64 hex>]"
_MARKER_BYTES = 128


def bounded_record(record: Column) -> Column:
    """``record`` (a rejected row's JSON) cut to fit curated.rejected_rows.record, which holds
    REDSHIFT_VARCHAR_MAX bytes on Redshift (a long TEXT column, or accents in a long title, can
    make the JSON longer). A record that fits is kept whole. A longer one keeps its beginning,
    cut between two characters, and ends with a marker giving the whole record's size and
    SHA-256: the record is then no longer JSON, but two long records that differ only after the
    cut stay different (rejected rows are deduplicated on the record).

    Spark cuts strings in characters and a UTF-8 character takes 1 to 4 bytes, so the beginning
    kept is the longest of a few prefixes (room / w characters, w from 1 to 4 in steps of 1/4)
    that fits the room in bytes: at least 80% of the room is used, all of it for text of one
    width. Sizes are measured in bits (``bit_length``, which both engines have; SQLFrame has no
    ``octet_length``)."""
    bits = F.bit_length(record)
    room = REDSHIFT_VARCHAR_MAX - _MARKER_BYTES
    prefixes = [F.substring(record, 1, room * 4 // quarters) for quarters in range(4, 17)]
    head = F.coalesce(*[F.when(F.bit_length(p) <= room * 8, p) for p in prefixes])
    marker = F.concat(
        F.lit(" ...[truncated from "),
        (bits / 8).cast("bigint").cast("string"),
        F.lit(" bytes, sha256 "),
        F.sha2(record, 256),
        F.lit("]"),
    )
    return F.when(bits <= REDSHIFT_VARCHAR_MAX * 8, record).otherwise(F.concat(head, marker))


def rates_column(rates: Mapping[str, Decimal]) -> Column:
    """The rates as a literal map column (currency -> DECIMAL(18,6)); no join, no UDF."""
    rate_type = T.DecimalType(RATE_PRECISION, RATE_SCALE)
    if not rates:
        return F.lit(None).cast(T.MapType(T.StringType(), rate_type))
    parts = []
    for code, rate in sorted(rates.items()):
        value = Decimal(str(rate))
        exact = value.is_finite() and value == value.quantize(Decimal("0.000001"))
        if not exact or value.adjusted() >= RATE_PRECISION - RATE_SCALE:
            raise ConfigError(
                f"fx rate {code} = {rate} does not fit curated.fx_rates.rate_to_usd "
                "DECIMAL(18,6): use at most 6 decimal places"
            )
        parts += [F.lit(code), F.lit(str(value)).cast(rate_type)]
    return F.create_map(*parts)


# --- the transform --------------------------------------------------------------------------


_JSON_ESCAPES = [("\\", "\\\\"), ('"', '\\"')] + [
    (chr(code), {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r"}.get(code, f"\\u{code:04x}"))
    for code in range(32)
]


def _json_value(column: SpecColumn, value: Column) -> Column:
    """One raw value as JSON text, as Spark's ``to_json`` writes it (``null`` for NULL), except
    decimals, always in plain notation (``0.0000000``, where ``to_json`` writes ``0E-7``).
    Built from string functions, the same on both engines: SQLFrame's ``to_json`` ignores its
    options and writes decimals as floating-point numbers."""
    if column.kind is Kind.TEXT:
        for raw, escaped in _JSON_ESCAPES:  # backslash first: the escapes add backslashes
            value = F.replace(value, F.lit(raw), F.lit(escaped))
        text = F.concat(F.lit('"'), value, F.lit('"'))
    elif column.kind is Kind.DATETIME:
        text = F.concat(F.lit('"'), F.date_format(value, RECORD_TIMESTAMP_FORMAT), F.lit('"'))
    elif column.kind is Kind.DATE:
        text = F.concat(F.lit('"'), F.date_format(value, "yyyy-MM-dd"), F.lit('"'))
    elif column.kind is Kind.DECIMAL:
        text = _plain_decimal(value, column)
    else:  # integers: their text is their JSON
        text = value.cast("string")
    return F.coalesce(text, F.lit("null"))


def _plain_decimal(value: Column, column: SpecColumn) -> Column:
    """A decimal as text in plain notation on both engines. Spark's text of a decimal is Java's
    BigDecimal.toString, which turns to scientific notation below 1E-6 (0E-7 for a zero of
    scale 7, 1E-7): below 1 in magnitude the digits are spelt out from the unscaled value."""
    precision_scale = column.precision_scale
    assert precision_scale is not None, column
    scale = precision_scale[1]
    digits = (F.abs(value) * F.lit(10**scale)).cast("bigint").cast("string")
    small = F.concat(
        F.when(value < 0, F.lit("-")).otherwise(F.lit("")), F.lit("0."), F.lpad(digits, scale, "0")
    )
    return F.when(F.abs(value) < 1, small).otherwise(value.cast("string"))


def _json_record(spec_columns: tuple[SpecColumn, ...], raw_names: list[str]) -> Column:
    """``{"col": value, ...}`` over the raw columns, every column present, in spec order."""
    parts: list[Column] = []
    for i, (column, name) in enumerate(zip(spec_columns, raw_names)):
        prefix = ("{" if i == 0 else ",") + f'"{column.name}":'
        parts += [F.lit(prefix), _json_value(column, F.col(name))]
    return F.concat(*parts, F.lit("}"))


@follows_frame("raw")
def classify(table: str, raw: DataFrame, rates: Mapping[str, Decimal]) -> DataFrame:
    """Every raw row, normalised and typed, with ``_record_key``, ``_record`` (raw JSON),
    ``_reason`` (NULL when valid) and ``_status`` (curated | superseded | rejected)."""
    spec = table_spec(table)
    curated = CURATED[spec.name]
    if not _same_types(raw.schema, raw_schema(spec.name)):
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
        "_record", F.when(F.col("_reason").isNotNull(), _json_record(spec.columns, raw_names))
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
        if not _same_types(frame.schema, schema):  # schema only: no Spark job runs
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
