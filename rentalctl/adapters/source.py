"""Source database port and its factory.

A source is the marketplace's operational database (MySQL/Aurora, or a SQLite file locally).
The pipeline only reads from it, inside one snapshot per extract; ``demo-data`` also writes.
SQL text is built from the table specs (identifiers) with the adapter's placeholder for values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from rentalctl.errors import PipelineFailed, RentalctlError, ResourceUnavailable
from rentalctl.tables import TableSpec

PASSWORD_ENV = "RENTALCTL_SOURCE_PASSWORD"


class UnreadableValue(PipelineFailed):
    """A stored value the driver cannot hand over, such as SQLite text that is not UTF-8 (SQLite
    does not check encodings). The extract then reads the table again with ``lenient``."""


class Snapshot(ABC):
    """Reads that all see one consistent state of the database."""

    @abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def stream(
        self, sql: str, params: Sequence[Any], batch_size: int, *, lenient: bool = False
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Yield the result in lists of at most ``batch_size`` rows, never all at once. A value
        the driver cannot decode raises UnreadableValue, unless ``lenient``: then it comes as
        the bytes stored (slower; for the extract to quarantine its row)."""


class Source(ABC):
    """A source database. Use as a context manager; it closes its connection on exit."""

    #: placeholder for a bound value in this database's SQL
    placeholder: str
    #: a user-facing name: the URL without any secret
    name: str

    @abstractmethod
    def quote(self, identifier: str) -> str: ...

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[Snapshot]:
        """A read-only transaction in which every query sees the same snapshot."""

    @abstractmethod
    def ensure_schema(self, tables: Iterable[TableSpec]) -> None:
        """Create the database (where that applies) and the tables if missing."""

    @abstractmethod
    def write(self, statements: Iterable[tuple[str, Sequence[Sequence[Any]]]]) -> None:
        """Run (sql, rows-of-params) pairs with executemany, all in one transaction."""

    @abstractmethod
    def close(self) -> None: ...

    def integer_condition(self, column: str) -> str:
        """SQL that holds where ``column`` (quoted) is an integer: any value that is not NULL
        in a database whose columns keep their type."""
        return f"{column} IS NOT NULL"

    def remainder(self, dividend: str, divisor: int) -> str:
        """SQL for the integer remainder, signed as the dividend (MySQL's driver reads a bare
        ``%`` as the start of a placeholder)."""
        return f"MOD({dividend}, {divisor})"

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.snapshot() as snap:
            return snap.query(sql, params)

    def check_tables(self, specs: Sequence[TableSpec]) -> None:
        """Raise ResourceUnavailable naming every table of ``specs`` the source does not let us
        read, with the database's reason (missing, or no SELECT privilege): docs/contract.md §8
        calls that a resource that cannot be reached, exit 3."""
        problems = []
        with self.snapshot() as snap:
            for spec in specs:
                try:
                    snap.query(f"SELECT 1 FROM {self.quote(spec.name)} WHERE 1 = 0")
                except RentalctlError:
                    raise
                except Exception as exc:  # each driver raises its own type
                    problems.append(f"{spec.name} ({exc})")
        if problems:
            raise ResourceUnavailable(
                f"source {self.name}: cannot read table {'; '.join(problems)}: create it "
                "(mysql/schema.sql holds the DDL) or grant SELECT on it, or point source.url at "
                "the right database"
            )

    def missing_columns(self, snap: Snapshot, spec: TableSpec) -> list[str]:
        """The spec's columns the source table lacks, in spec order ([] when it has them all).

        Portable SQL only: a query of all the columns that returns no row, and only when it
        fails, one such query per column. A missing table (or a lost connection) is not
        diagnosed here: the driver's error of the table-only probe propagates.
        """
        table = self.quote(spec.name)
        names = ", ".join(self.quote(c) for c in spec.column_names)
        try:
            snap.query(f"SELECT {names} FROM {table} WHERE 1 = 0")
            return []
        except RentalctlError:  # the adapter's own verdict (a lost connection): not a schema
            raise
        except Exception:  # each driver raises its own type; diagnosed below
            pass
        snap.query(f"SELECT 1 FROM {table} WHERE 1 = 0")
        missing = []
        for name in spec.column_names:
            try:
                snap.query(f"SELECT {self.quote(name)} FROM {table} WHERE 1 = 0")
            except RentalctlError:
                raise
            except Exception:
                missing.append(name)
        return missing

    def insert_sql(self, spec: TableSpec, columns: Sequence[str] | None = None) -> str:
        cols = columns or spec.column_names
        for c in cols:
            spec.column(c)  # refuses a name that is not in the spec
        names = ", ".join(self.quote(c) for c in cols)
        marks = ", ".join([self.placeholder] * len(cols))
        return f"INSERT INTO {self.quote(spec.name)} ({names}) VALUES ({marks})"

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
