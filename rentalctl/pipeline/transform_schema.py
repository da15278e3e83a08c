"""The Spark types of the transform's rows: the raw rows it reads (from the table specs in
``rentalctl.tables``), and the curated and rejected rows it writes (from the contract in
``rentalctl.curated``). ``T`` resolves to the engine of the DataFrame being transformed
(``frame_api``).
"""

from __future__ import annotations

from rentalctl.curated import CURATED, REJECTED_ROWS_COLUMNS
from rentalctl.pipeline.frame_api import T
from rentalctl.tables import Column as SpecColumn
from rentalctl.tables import Kind
from rentalctl.tables import table as table_spec

REJECTED_COLUMNS = tuple(name for name, _ in REJECTED_ROWS_COLUMNS)


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


def same_types(actual: T.StructType, expected: T.StructType) -> bool:
    return [(f.name, f.dataType) for f in actual.fields] == [
        (f.name, f.dataType) for f in expected.fields
    ]
