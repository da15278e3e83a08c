"""SQL of the curated layer, generated from the contract in ``rentalctl.curated``: the DDL and
the statements that merge one run's transform output. Identifiers come only from that contract;
the run id is a bound parameter.

Every statement is written once, in the Redshift dialect, and reaches DuckDB transpiled by
sqlglot (``for_dialect``), as the shipped KPI SQL does (``rentalctl.sqlfiles``).

Redshift's MERGE has no ``WHEN MATCHED AND <condition>``, so the "only newer versions" rule
filters the source instead: a staged row takes part only when its key is new, or its version is
newer than the stored one. A re-merge of the same run therefore changes nothing, and a newer
*rejected* version never reaches the stage.

Redshift's MERGE takes a table as its source, never a view or a subquery, and its usage notes
forbid the target as a source of a subquery of the same MERGE. The filtered rows are therefore
materialised first, in a temporary table built from the stage and the target, and the MERGE
reads only that table. (``REMOVE DUPLICATES``, Redshift's simplified MERGE, would do on
Redshift, but DuckDB has no equivalent: the standard form runs on both.) Text lengths are
MySQL's (characters) in ``rentalctl.curated``; the Redshift DDL sizes them in bytes. sqlglot is
imported where used: a run whose SQL is already transpiled (``rentalctl.sql_cache``) does not
load it.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Union

from rentalctl.curated import (
    CURATED,
    DELETED_ROWS_COLUMNS,
    FX_RATES_COLUMNS,
    KEY_PAGES_COLUMNS,
    REJECTED_ROWS_COLUMNS,
    SCHEMA,
    CuratedTable,
    redshift_type,
)
from rentalctl.sql_cache import transpiled
from rentalctl.sqlfiles import parse, strip_redshift_only
from rentalctl.tables import TABLES as SOURCE_TABLES
from rentalctl.tables import USER_VIEWING

if TYPE_CHECKING:
    from sqlglot import exp

Statement = Union[str, tuple[str, list[object]]]  # evaluated at import, on Python 3.9 too
PARAM = "%s"  # a bound parameter, as Redshift's driver marks it; for_dialect writes DuckDB's


def q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def qualified(table: str) -> str:
    return f"{SCHEMA}.{q(table)}"


def for_dialect(statements: list[Statement], dialect: str) -> list[Statement]:
    """Redshift ``statements`` as ``dialect`` runs them: as written on Redshift, transpiled for
    DuckDB (the bound parameters unchanged)."""
    if dialect == "redshift":
        return statements
    if dialect != "duckdb":
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    return [(_to_duckdb(s[0]), s[1]) if isinstance(s, tuple) else _to_duckdb(s) for s in statements]


@cache  # a merge repeats the same statements run after run
def _to_duckdb(statement: str) -> str:
    return str(transpiled(statement, _transpile, sources=(__name__, "rentalctl.sqlfiles")))


def _transpile(statement: str) -> str:
    return _json_object_for_duckdb(strip_redshift_only(parse(statement))).sql(dialect="duckdb")


def _json_object_for_duckdb(tree: exp.Expr) -> exp.Expr:
    """The one construct sqlglot does not transpile: Redshift's ``JSON_SERIALIZE(OBJECT(k, v,
    ...))`` reaches DuckDB unchanged (sqlglot reads both as unknown functions), where neither
    exists. DuckDB's ``CAST(JSON_OBJECT(k, v, ...) AS VARCHAR)`` writes the same compact JSON
    text, keys in order. Modifies ``tree``."""
    from sqlglot import exp

    def named(node: exp.Expr, name: str) -> bool:
        return isinstance(node, exp.Anonymous) and str(node.this).upper() == name

    for node in list(tree.find_all(exp.Anonymous)):
        if named(node, "OBJECT"):
            args = node.expressions
            pairs = [exp.JSONKeyValue(this=k, expression=v) for k, v in zip(args[::2], args[1::2])]
            node.replace(exp.JSONObject(expressions=pairs))
    for node in list(tree.find_all(exp.Anonymous)):
        if named(node, "JSON_SERIALIZE"):
            node.replace(exp.cast(node.expressions[0], "VARCHAR"))
    return tree


def _create(name: str, columns: tuple[tuple[str, str], ...], tail: str) -> str:
    body = ",\n    ".join(f"{q(col)} {redshift_type(typ)}" for col, typ in columns)
    return f"CREATE TABLE IF NOT EXISTS {qualified(name)} (\n    {body}\n){tail}"


def ddl(dialect: str) -> list[Statement]:
    """CREATE statements for the curated schema and its tables (idempotent)."""
    out: list[Statement] = [f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"]
    for spec in CURATED.values():
        sort = spec.version or spec.key
        out.append(_create(spec.name, spec.columns, f" DISTKEY({q(spec.key)}) SORTKEY({q(sort)})"))
    rejected_tail = " DISTSTYLE EVEN SORTKEY(source_table)"
    out.append(_create("rejected_rows", REJECTED_ROWS_COLUMNS, rejected_tail))
    out.append(_create("fx_rates", FX_RATES_COLUMNS, " DISTSTYLE ALL"))
    out.append(_create("deleted_rows", DELETED_ROWS_COLUMNS, rejected_tail))
    out.append(_create("key_pages", KEY_PAGES_COLUMNS, rejected_tail))
    return for_dialect(out, dialect)


def stage_name(table: str) -> str:
    return f"stage_curated_{table}"


def counts_name(table: str) -> str:
    return f"merge_counts_{table}"


def candidates_name(table: str) -> str:
    return f"merge_candidates_{table}"


def _same(a: str, b: str, column: str) -> str:
    """``a.column`` and ``b.column`` hold the same value, NULL matching NULL (Redshift has no
    IS NOT DISTINCT FROM)."""
    x, y = f"{a}.{q(column)}", f"{b}.{q(column)}"
    return f"({x} = {y} OR ({x} IS NULL AND {y} IS NULL))"


def _greater(spec: CuratedTable, column: str) -> str:
    """``s.column`` sorts after ``t.column``, NULL first (Spark's ``desc_nulls_last`` ranks
    the greatest first and NULL last). Booleans compare by logic: Redshift has no ``>`` on
    them."""
    s, t = f"s.{q(column)}", f"t.{q(column)}"
    above = f"({s} AND NOT {t})" if dict(spec.columns)[column] == "BOOLEAN" else f"{s} > {t}"
    return f"({above} OR ({s} IS NOT NULL AND {t} IS NULL))"


def _newer(spec: CuratedTable) -> str:
    """When staged row s replaces stored row t of the same key (the one place this rule is
    written: the counts and the merge both use it). The order is the transform's: the newer
    version, and between two different rows of one version the one whose source columns,
    compared in order, are greatest (``rentalctl.pipeline.transform.classify``). So a second
    row of the same version arriving in a later run ends where one run over both rows would
    leave it, whatever the order the two arrive in."""
    if not spec.version:
        return "FALSE"
    order = [spec.version, *SOURCE_TABLES[spec.name].column_names]
    rule = "FALSE"
    for column in reversed(order):
        rule = f"({_greater(spec, column)} OR ({_same('s', 't', column)} AND {rule}))"
    return rule


def merge_statements(table: str, dialect: str) -> list[Statement]:
    """Count, then merge the staged run output of ``table`` into curated (the stage table
    ``stage_name(table)`` must exist, with the curated columns). The temporary tables have fixed
    names and are dropped first, so a retry in the same session starts clean."""
    spec = CURATED[table]
    stage, key, target = stage_name(table), q(spec.key), qualified(spec.name)
    counts, candidates = q(counts_name(table)), q(candidates_name(table))
    cols = [q(c) for c in spec.column_names]
    joined = f"FROM {q(stage)} s LEFT JOIN {target} t ON t.{key} = s.{key}"
    sets = ", ".join(f"{c} = s.{c}" for c in cols if c != key)
    statements: list[Statement] = [
        f"DROP TABLE IF EXISTS {counts}",
        f"CREATE TEMP TABLE {counts} AS SELECT "
        f"SUM(CASE WHEN t.{key} IS NULL THEN 1 ELSE 0 END) AS inserted, "
        f"SUM(CASE WHEN t.{key} IS NOT NULL AND {_newer(spec)} THEN 1 ELSE 0 END) AS updated, "
        f"COUNT(*) AS staged {joined}",
        # The rows that change the curated table, new keys or newer versions, as a table of
        # their own: the MERGE below must not read its target (see the module docstring).
        f"DROP TABLE IF EXISTS {candidates}",
        f"CREATE TEMP TABLE {candidates} AS SELECT s.* {joined} "
        f"WHERE t.{key} IS NULL OR {_newer(spec)}",
        f"MERGE INTO {target} USING {candidates} AS s ON {target}.{key} = s.{key} "
        f"WHEN MATCHED THEN UPDATE SET {sets} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(cols)}) "
        f"VALUES ({', '.join('s.' + c for c in cols)})",
        f"DROP TABLE {candidates}",
    ]
    return for_dialect(statements, dialect)


def not_curated_sql(table: str, placeholder: str) -> str:
    """How many of a run's raw rows of ``table`` (the run id bound once) the curated layer does
    not hold at their version or a newer one (append-only tables: under their key, or rejected
    as an earlier run read them). Zero means the transform and merge of those rows would change
    nothing: the merge takes new keys and newer versions only, and a rejected row version is
    recorded once."""
    spec = CURATED[table]
    key, raw, run = q(spec.key), f"raw.{q(table)}", q("_run_id")
    select = f"SELECT COUNT(*) FROM {raw} r WHERE r.{run} = {placeholder} "
    same_row = " AND ".join(_same("x", "r", c) for c in SOURCE_TABLES[table].column_names)
    if not spec.version:
        # An append-only row is one event: settled when curated under its key, or when it was
        # rejected under its key and an earlier run read that very row (every column the same:
        # rejected again, it is recorded once). A row corrected in the source since, or a key
        # deleted from curated and inserted again, is transformed again. So a run whose id
        # lookback re-reads only settled rows starts no engine.
        return (
            select + f"AND NOT EXISTS (SELECT 1 FROM {qualified(table)} c WHERE c.{key} = r.{key}) "
            f"AND NOT (EXISTS (SELECT 1 FROM {qualified('rejected_rows')} j "
            f"WHERE j.source_table = '{table}' AND j.record_key = CAST(r.{key} AS VARCHAR(64))) "
            f"AND EXISTS (SELECT 1 FROM {raw} x WHERE x.{key} = r.{key} "
            f"AND x.{run} <> r.{run} AND {same_row}))"
        )
    # At the same version the curated row may be another row of that version (the merge then
    # decides between the two): the raw row counts as curated only when an earlier run read
    # that very row (every column the same), so its merge has already decided. Written as two
    # subqueries of one level each: Redshift refuses a correlation that skips a level.
    version = q(spec.version)
    return (
        select + f"AND NOT EXISTS (SELECT 1 FROM {qualified(table)} c WHERE c.{key} = r.{key} "
        f"AND c.{version} > r.{version}) "
        f"AND NOT EXISTS (SELECT 1 FROM {qualified(table)} c, {raw} x "
        f"WHERE c.{key} = r.{key} AND c.{version} = r.{version} AND x.{key} = r.{key} "
        f"AND x.{run} <> r.{run} AND {same_row})"
    )


def rejected_statements(stage: str, dialect: str) -> list[Statement]:
    """Add the staged rejected rows not recorded yet: the same row version re-read by a later
    run (lookback, backfill) is recorded once, under the run that first rejected it."""
    cols = ", ".join(q(c) for c, _ in REJECTED_ROWS_COLUMNS)
    target = qualified("rejected_rows")
    insert = (
        f"INSERT INTO {target} ({cols}) SELECT DISTINCT {cols} FROM {q(stage)} r "
        f"WHERE NOT EXISTS (SELECT 1 FROM {target} x WHERE x.source_table = r.source_table "
        f"AND x.record = r.record)"
    )
    return for_dialect([insert], dialect)


def fx_rates_statements(rates: dict[str, object], dialect: str) -> list[Statement]:
    """curated.fx_rates holds exactly the rates this run used."""
    target, p = qualified("fx_rates"), PARAM
    out: list[Statement] = [f"DELETE FROM {target}"]
    for currency, rate in sorted(rates.items()):
        out.append(
            (f"INSERT INTO {target} (currency, rate_to_usd) VALUES ({p}, {p})", [currency, rate])
        )
    return for_dialect(out, dialect)


_TRIPLE = ("user_id", "apartment_id", "viewed_at")


def _raw_viewing_json() -> str:
    """The raw viewing row r as JSON text, in the form the transform writes rejected records."""

    def value(col: str) -> str:
        if col == "viewed_at":
            return "TO_CHAR(r.viewed_at, 'YYYY-MM-DD HH24:MI:SS.US')"
        return f"r.{q(col)}"

    fields = ", ".join(f"'{c}', {value(c)}" for c in USER_VIEWING.column_names)
    return f"JSON_SERIALIZE(OBJECT({fields}))"


def viewing_duplicate_statements(run_id: str, dialect: str) -> list[Statement]:
    """A viewing that repeats an older one (same user, apartment and time, smaller id) is a
    duplicate even when the two arrived in different runs: move it from curated to
    rejected_rows. Only events that share a (user, apartment, time) with this run's stage are
    examined, so the check costs what the run brings, not the table's size."""
    target, rejected = qualified("user_viewing"), qualified("rejected_rows")
    p, dups, record = PARAM, q("duplicate_viewings"), _raw_viewing_json()
    same = " AND ".join(f"o.{q(c)} = d.{q(c)}" for c in _TRIPLE)
    in_stage = " AND ".join(f"s.{q(c)} = d.{q(c)}" for c in _TRIPLE)
    statements: list[Statement] = [
        f"DROP TABLE IF EXISTS {dups}",
        f"CREATE TEMP TABLE {dups} AS SELECT d.{q('id')} AS id FROM {target} d "
        f"WHERE EXISTS (SELECT 1 FROM {target} o WHERE {same} AND o.{q('id')} < d.{q('id')}) "
        f"AND EXISTS (SELECT 1 FROM {q(stage_name('user_viewing'))} s WHERE {in_stage})",
        (
            f"INSERT INTO {rejected} (source_table, record_key, reason, record, run_id) "
            f"SELECT 'user_viewing', CAST(r.{q('id')} AS VARCHAR(64)), 'duplicate', {record}, {p} "
            f"FROM (SELECT x.*, ROW_NUMBER() OVER (PARTITION BY x.{q('id')} "
            f"ORDER BY x._run_id DESC) AS rn FROM raw.{q('user_viewing')} x "
            f"WHERE x.{q('id')} IN (SELECT id FROM {dups})) r "
            f"WHERE r.rn = 1 AND NOT EXISTS (SELECT 1 FROM {rejected} x "
            f"WHERE x.source_table = 'user_viewing' AND x.record = {record})",
            [run_id],
        ),
        f"DELETE FROM {target} WHERE {q('id')} IN (SELECT id FROM {dups})",
        f"DROP TABLE {dups}",
    ]
    return for_dialect(statements, dialect)
