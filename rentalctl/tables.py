"""The four source tables, declared once (docs/contract.md §3).

Everything that needs a table or column name takes it from here: extraction queries, the SQLite
DDL, the check that the MySQL DDL in ``mysql/`` matches, validation and merges. Names that come
from configuration or the command line are checked against these specs before use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from rentalctl.errors import ConfigError, unknown_name


class Kind(str, Enum):  # not StrEnum: Python 3.9 (Glue Python shell)
    """The logical type of a column, independent of the database."""

    INTEGER = "integer"
    DECIMAL = "decimal"
    TEXT = "text"
    DATETIME = "datetime"
    DATE = "date"


@dataclass(frozen=True)
class Column:
    name: str
    mysql_type: str  # exactly as in mysql/schema.sql, e.g. "DECIMAL(12,2)"
    nullable: bool = True

    @property
    def kind(self) -> Kind:
        base = self.mysql_type.split("(")[0].upper()
        return _KIND_OF_MYSQL_TYPE[base]

    @property
    def precision_scale(self) -> tuple[int, int] | None:
        """(precision, scale) of a DECIMAL column, else None."""
        m = re.fullmatch(r"DECIMAL\((\d+),(\d+)\)", self.mysql_type.upper())
        return (int(m.group(1)), int(m.group(2))) if m else None


_KIND_OF_MYSQL_TYPE = {
    "BIGINT": Kind.INTEGER,
    "INT": Kind.INTEGER,
    "TINYINT": Kind.INTEGER,
    "DECIMAL": Kind.DECIMAL,
    "VARCHAR": Kind.TEXT,
    "TEXT": Kind.TEXT,
    "DATETIME": Kind.DATETIME,
    "DATE": Kind.DATE,
}

# SQLite has no DECIMAL: exact decimals are kept as TEXT so that no value passes through a float.
_SQLITE_TYPE = {
    Kind.INTEGER: "INTEGER",
    Kind.DECIMAL: "TEXT",
    Kind.TEXT: "TEXT",
    Kind.DATETIME: "TEXT",
    Kind.DATE: "TEXT",
}


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[Column, ...]
    key: str
    watermark: str
    # Append-only tables (user_viewing) are watermarked by their AUTO_INCREMENT id; backfills
    # select them by this event-time column instead (docs/contract.md §4).
    backfill_column: str
    auto_increment: bool = False

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise ConfigError(
            f"unknown column {name!r} for table {self.name}: "
            f"expected one of {', '.join(self.column_names)}"
        )

    @property
    def watermark_kind(self) -> Kind:
        return self.column(self.watermark).kind

    def sqlite_ddl(self) -> str:
        lines = []
        for c in self.columns:
            if self.auto_increment and c.name == self.key:
                lines.append(f'    "{c.name}" INTEGER PRIMARY KEY AUTOINCREMENT')
                continue
            null = "" if c.nullable else " NOT NULL"
            lines.append(f'    "{c.name}" {_SQLITE_TYPE[c.kind]}{null}')
        body = ",\n".join(lines)
        ddl = [f'CREATE TABLE IF NOT EXISTS "{self.name}" (\n{body}\n)']
        for col in dict.fromkeys((self.key, self.watermark, self.backfill_column)):
            if self.auto_increment and col == self.key:
                continue
            ddl.append(
                f'CREATE INDEX IF NOT EXISTS "ix_{self.name}_{col}" ON "{self.name}" ("{col}")'
            )
        return ";\n".join(ddl) + ";\n"


def _cols(*spec: tuple[str, str] | tuple[str, str, bool]) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in spec)


APARTMENTS = TableSpec(
    name="apartments",
    key="id",
    watermark="last_modified_timestamp",
    backfill_column="last_modified_timestamp",
    columns=_cols(
        ("id", "BIGINT"),
        ("title", "VARCHAR(255)"),
        ("source", "VARCHAR(50)"),
        ("price", "DECIMAL(12,2)"),
        ("currency", "VARCHAR(10)"),
        ("listing_created_on", "DATETIME"),
        ("is_active", "TINYINT(1)"),
        ("last_modified_timestamp", "DATETIME(6)", False),
    ),
)

APARTMENT_ATTRIBUTES = TableSpec(
    name="apartment_attributes",
    key="id",
    watermark="last_modified_timestamp",
    backfill_column="last_modified_timestamp",
    columns=_cols(
        ("id", "BIGINT"),
        ("category", "VARCHAR(50)"),
        ("body", "TEXT"),
        ("amenities", "TEXT"),
        ("bathrooms", "DECIMAL(3,1)"),
        ("bedrooms", "DECIMAL(3,1)"),
        ("fee", "DECIMAL(10,2)"),
        ("has_photo", "VARCHAR(20)"),
        ("pets_allowed", "VARCHAR(50)"),
        ("price_display", "VARCHAR(50)"),
        ("price_type", "VARCHAR(20)"),
        ("square_feet", "INT"),
        ("address", "VARCHAR(255)"),
        ("cityname", "VARCHAR(100)"),
        ("state", "VARCHAR(50)"),
        ("latitude", "DECIMAL(10,7)"),
        ("longitude", "DECIMAL(10,7)"),
        ("last_modified_timestamp", "DATETIME(6)", False),
    ),
)

USER_VIEWING = TableSpec(
    name="user_viewing",
    key="id",
    watermark="id",
    backfill_column="viewed_at",
    auto_increment=True,
    columns=_cols(
        ("id", "BIGINT", False),
        ("user_id", "BIGINT"),
        ("apartment_id", "BIGINT"),
        ("viewed_at", "DATETIME"),
        ("is_wishlisted", "VARCHAR(5)"),
        ("call_to_action", "VARCHAR(50)"),
    ),
)

BOOKINGS = TableSpec(
    name="bookings",
    key="booking_id",
    watermark="last_modified_timestamp",
    backfill_column="last_modified_timestamp",
    columns=_cols(
        ("booking_id", "BIGINT"),
        ("user_id", "BIGINT"),
        ("apartment_id", "BIGINT"),
        ("booking_date", "DATETIME"),
        ("checkin_date", "DATE"),
        ("checkout_date", "DATE"),
        ("total_price", "DECIMAL(12,2)"),
        ("currency", "VARCHAR(10)"),
        ("booking_status", "VARCHAR(20)"),
        ("last_modified_timestamp", "DATETIME(6)", False),
    ),
)

# In dependency order: attributes and bookings refer to apartments.
TABLES: dict[str, TableSpec] = {
    t.name: t for t in (APARTMENTS, APARTMENT_ATTRIBUTES, USER_VIEWING, BOOKINGS)
}


def table(name: str) -> TableSpec:
    """The spec of a table named in configuration or on the command line; refuses any other."""
    try:
        return TABLES[name]
    except KeyError:
        raise ConfigError(unknown_name("table", name, TABLES)) from None
