"""The table specs (rentalctl/tables.py) against docs/contract.md §3, the MySQL DDL and the SQLite
DDL.

The expectation below is written by hand from docs/contract.md §3; everything else (the specs, the
shipped MySQL DDL, the generated SQLite DDL, the schema MariaDB actually creates) must equal it.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from rentalctl import tables
from rentalctl.errors import ConfigError
from rentalctl.tables import TABLES

SCHEMA_SQL = Path(__file__).resolve().parents[1] / "mysql" / "schema.sql"

# docs/contract.md §3, literally: table -> (key, watermark, backfill column, auto_increment,
# [(column, MySQL type, NOT NULL)]). Only the watermarks are NOT NULL in the contract, plus
# user_viewing.id, which is AUTO_INCREMENT (and so the table's primary key: never NULL).
# The backfill column is docs/contract.md §4: user_viewing is backfilled by `viewed_at`, the others
# by their watermark.
EXPECTED: dict[str, tuple[str, str, str, bool, list[tuple[str, str, bool]]]] = {
    "apartments": (
        "id",
        "last_modified_timestamp",
        "last_modified_timestamp",
        False,
        [
            ("id", "BIGINT", False),
            ("title", "VARCHAR(255)", False),
            ("source", "VARCHAR(50)", False),
            ("price", "DECIMAL(12,2)", False),
            ("currency", "VARCHAR(10)", False),
            ("listing_created_on", "DATETIME", False),
            ("is_active", "TINYINT(1)", False),
            ("last_modified_timestamp", "DATETIME(6)", True),
        ],
    ),
    "apartment_attributes": (
        "id",
        "last_modified_timestamp",
        "last_modified_timestamp",
        False,
        [
            ("id", "BIGINT", False),
            ("category", "VARCHAR(50)", False),
            ("body", "TEXT", False),
            ("amenities", "TEXT", False),
            ("bathrooms", "DECIMAL(3,1)", False),
            ("bedrooms", "DECIMAL(3,1)", False),
            ("fee", "DECIMAL(10,2)", False),
            ("has_photo", "VARCHAR(20)", False),
            ("pets_allowed", "VARCHAR(50)", False),
            ("price_display", "VARCHAR(50)", False),
            ("price_type", "VARCHAR(20)", False),
            ("square_feet", "INT", False),
            ("address", "VARCHAR(255)", False),
            ("cityname", "VARCHAR(100)", False),
            ("state", "VARCHAR(50)", False),
            ("latitude", "DECIMAL(10,7)", False),
            ("longitude", "DECIMAL(10,7)", False),
            ("last_modified_timestamp", "DATETIME(6)", True),
        ],
    ),
    "user_viewing": (
        "id",
        "id",
        "viewed_at",
        True,
        [
            ("id", "BIGINT", True),
            ("user_id", "BIGINT", False),
            ("apartment_id", "BIGINT", False),
            ("viewed_at", "DATETIME", False),
            ("is_wishlisted", "VARCHAR(5)", False),
            ("call_to_action", "VARCHAR(50)", False),
        ],
    ),
    "bookings": (
        "booking_id",
        "last_modified_timestamp",
        "last_modified_timestamp",
        False,
        [
            ("booking_id", "BIGINT", False),
            ("user_id", "BIGINT", False),
            ("apartment_id", "BIGINT", False),
            ("booking_date", "DATETIME", False),
            ("checkin_date", "DATE", False),
            ("checkout_date", "DATE", False),
            ("total_price", "DECIMAL(12,2)", False),
            ("currency", "VARCHAR(10)", False),
            ("booking_status", "VARCHAR(20)", False),
            ("last_modified_timestamp", "DATETIME(6)", True),
        ],
    ),
}

# SQLite storage types of the MySQL types (docs/contract.md §3: "types mapped"): integers stay
# INTEGER; exact decimals, text and ISO 8601 dates are TEXT.
SQLITE_TYPE = {
    "BIGINT": "INTEGER",
    "INT": "INTEGER",
    "TINYINT": "INTEGER",
    "DECIMAL": "TEXT",
    "VARCHAR": "TEXT",
    "TEXT": "TEXT",
    "DATETIME": "TEXT",
    "DATE": "TEXT",
}


def _norm_type(sql_type: str) -> str:
    """Upper case, no blanks: `decimal(12, 2)` -> `DECIMAL(12,2)`."""
    return re.sub(r"\s+", "", sql_type).upper()


def _base(sql_type: str) -> str:
    return _norm_type(sql_type).split("(")[0]


def _spec_view(spec: tables.TableSpec) -> tuple[str, str, str, bool, list[tuple[str, str, bool]]]:
    return (
        spec.key,
        spec.watermark,
        spec.backfill_column,
        spec.auto_increment,
        [(c.name, c.mysql_type, not c.nullable) for c in spec.columns],
    )


# --- (a) the specs are docs/contract.md §3 -------------------------------------------------------


def test_specs_equal_spec_section_3() -> None:
    assert list(TABLES) == ["apartments", "apartment_attributes", "user_viewing", "bookings"]
    assert {name: _spec_view(spec) for name, spec in TABLES.items()} == EXPECTED
    for name, spec in TABLES.items():
        assert spec.name == name
        assert spec.column_names == tuple(c for c, _, _ in EXPECTED[name][4])


def test_spec_kinds_and_decimal_precision() -> None:
    assert TABLES["apartments"].column("price").precision_scale == (12, 2)
    assert TABLES["apartment_attributes"].column("latitude").precision_scale == (10, 7)
    assert TABLES["apartment_attributes"].column("bathrooms").precision_scale == (3, 1)
    assert TABLES["apartments"].column("title").precision_scale is None
    assert TABLES["user_viewing"].watermark_kind == tables.Kind.INTEGER
    for name in ("apartments", "apartment_attributes", "bookings"):
        assert TABLES[name].watermark_kind == tables.Kind.DATETIME
    assert TABLES["bookings"].column("checkin_date").kind == tables.Kind.DATE
    assert TABLES["apartments"].column("is_active").kind == tables.Kind.INTEGER
    assert TABLES["apartment_attributes"].column("body").kind == tables.Kind.TEXT


# --- (b) mysql/schema.sql equals the specs --------------------------------------------------


def _parse_schema() -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {}
    for statement in sqlglot.parse(SCHEMA_SQL.read_text(encoding="utf-8"), dialect="mysql"):
        assert isinstance(statement, exp.Create), statement
        assert statement.args.get("kind", "").upper() == "TABLE"
        schema = statement.this
        name = schema.this.name
        assert name not in out, f"table {name} defined twice"
        columns = []
        auto_increment = []
        primary_key: list[str] = []
        for item in schema.expressions:
            if isinstance(item, exp.ColumnDef):
                not_null = False
                for constraint in item.constraints:
                    if isinstance(constraint.kind, exp.NotNullColumnConstraint):
                        not_null = not constraint.kind.args.get("allow_null")
                    if isinstance(constraint.kind, exp.AutoIncrementColumnConstraint):
                        auto_increment.append(item.name)
                    if isinstance(constraint.kind, exp.PrimaryKeyColumnConstraint):
                        primary_key.append(item.name)
                columns.append(
                    (item.name, _norm_type(item.args["kind"].sql(dialect="mysql")), not_null)
                )
            elif isinstance(item, exp.PrimaryKey):
                primary_key.extend(e.name for e in item.expressions)
        out[name] = {"columns": columns, "auto_increment": auto_increment, "pk": primary_key}
    return out


def test_mysql_schema_sql_equals_specs() -> None:
    parsed = _parse_schema()
    assert sorted(parsed) == sorted(TABLES), "no extra or missing table in mysql/schema.sql"
    for name, spec in TABLES.items():
        want = [(c.name, _norm_type(c.mysql_type), not c.nullable) for c in spec.columns]
        assert parsed[name]["columns"] == want, name
        assert parsed[name]["auto_increment"] == ([spec.key] if spec.auto_increment else [])
    assert parsed["user_viewing"]["auto_increment"] == ["id"]
    assert parsed["user_viewing"]["pk"] == ["id"]


def test_mysql_schema_sql_equals_literal_expectation() -> None:
    """Independent of the specs: the DDL file is docs/contract.md §3."""
    parsed = _parse_schema()
    for name, (_, _, _, _, columns) in EXPECTED.items():
        assert parsed[name]["columns"] == [(c, _norm_type(t), nn) for c, t, nn in columns]


# --- (c) the SQLite DDL ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(TABLES))
def test_sqlite_ddl_matches_spec(name: str) -> None:
    spec = TABLES[name]
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(spec.sqlite_ddl())
        conn.executescript(spec.sqlite_ddl())  # IF NOT EXISTS: idempotent
        info = conn.execute(f'PRAGMA table_info("{name}")').fetchall()
        # (cid, name, type, notnull, dflt_value, pk)
        assert [r[1] for r in info] == [c for c, _, _ in EXPECTED[name][4]]
        for (_, col, sqlite_type, notnull, _, pk), (_, mysql_type, not_null) in zip(
            info, EXPECTED[name][4], strict=True
        ):
            assert sqlite_type == SQLITE_TYPE[_base(mysql_type)], (name, col)
            if spec.auto_increment and col == spec.key:
                # An INTEGER PRIMARY KEY is the rowid: it can never hold NULL (a NULL insert
                # assigns the next id), though PRAGMA reports notnull=0 for it.
                assert pk == 1
            else:
                assert bool(notnull) == not_null, (name, col)
                assert pk == 0, (name, col)
        if spec.auto_increment:
            cols = ", ".join(f'"{c}"' for c in spec.column_names[1:])
            marks = ", ".join("?" * (len(spec.columns) - 1))
            conn.execute(
                f'INSERT INTO "{name}" ({cols}) VALUES ({marks})', [None] * (len(spec.columns) - 1)
            )
            conn.execute(
                f'INSERT INTO "{name}" VALUES ({", ".join("?" * len(spec.columns))})',
                [None] * len(spec.columns),
            )
            assert [r[0] for r in conn.execute(f'SELECT "{spec.key}" FROM "{name}"')] == [1, 2]
        for col, _, not_null in EXPECTED[name][4]:
            if not_null and not (spec.auto_increment and col == spec.key):
                values = ["x"] * len(spec.columns)
                values[spec.column_names.index(col)] = None
                with pytest.raises(sqlite3.IntegrityError):
                    conn.execute(
                        f'INSERT INTO "{name}" VALUES ({", ".join("?" * len(values))})', values
                    )
        indexed = {
            conn.execute(f'PRAGMA index_info("{ix[1]}")').fetchone()[2]
            for ix in conn.execute(f'PRAGMA index_list("{name}")')
        }
        # The extraction and backfill columns are indexed (the rowid key needs none).
        wanted = {spec.key, spec.watermark, spec.backfill_column}
        if spec.auto_increment:
            wanted.discard(spec.key)
        assert wanted <= indexed
    finally:
        conn.close()


# --- (d) the schema MariaDB creates ---------------------------------------------------------


@pytest.mark.mysql
def test_mysql_created_schema_matches_specs(mysql_url: str, mysql_server: dict) -> None:
    import pymysql

    from rentalctl.adapters.factories import open_source
    from rentalctl.urls import parse_source

    url = parse_source(mysql_url, Path.cwd())
    with open_source(url, create=True) as source:
        source.ensure_schema(TABLES.values())
        source.ensure_schema(TABLES.values())  # idempotent
    conn = pymysql.connect(**mysql_server)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, EXTRA, COLUMN_KEY "
                "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                "ORDER BY TABLE_NAME, ORDINAL_POSITION",
                (url.database,),
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    found: dict[str, list[tuple[str, str, bool]]] = {}
    extra: dict[tuple[str, str], tuple[str, str]] = {}
    for table, column, column_type, is_nullable, extra_info, column_key in rows:
        found.setdefault(table, []).append((column, _norm_type(column_type), is_nullable == "NO"))
        extra[table, column] = (extra_info.lower(), column_key)
    assert sorted(found) == sorted(EXPECTED)
    for name, (_, _, _, _, columns) in EXPECTED.items():
        # information_schema spells INT as int(11) and BIGINT as bigint(20) on MariaDB and old
        # MySQL: compare the display-width-free form for integers.
        def strip_width(t: str) -> str:
            return re.sub(r"^(BIGINT|INT)\(\d+\)$", r"\1", t)

        got = [(c, strip_width(t), nn) for c, t, nn in found[name]]
        assert got == [(c, _norm_type(t), nn) for c, t, nn in columns], name
    assert "auto_increment" in extra["user_viewing", "id"][0]
    assert extra["user_viewing", "id"][1] == "PRI"
    for (table, column), (info, _) in extra.items():
        if (table, column) != ("user_viewing", "id"):
            assert "auto_increment" not in info, (table, column)


# --- (e) unknown names ----------------------------------------------------------------------


def test_unknown_column_and_table_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="bogus"):
        TABLES["apartments"].column("bogus")
    with pytest.raises(ConfigError, match="bogus"):
        tables.table("bogus")
    # Case and quoting tricks are refused too: only the exact spec names pass.
    with pytest.raises(ConfigError):
        tables.table("Apartments")
    with pytest.raises(ConfigError):
        TABLES["bookings"].column('booking_id" OR 1=1 --')
    assert tables.table("bookings") is TABLES["bookings"]
    assert TABLES["bookings"].column("total_price").mysql_type == "DECIMAL(12,2)"
