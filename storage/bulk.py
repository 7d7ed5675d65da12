"""Many-row INSERTs and UPDATEs with SQLAlchemy's compiled SQL and the driver's executemany.

``connection.execute(statement, list_of_dicts)`` rebuilds every row's parameters through the
compiler (``construct_params``) and runs each value through its column type's processor:
~60 µs a row for a message and its history row here, three quarters of a 10,000-recipient
send's database time (bench/RESULTS.md, fan-out). A :class:`Bulk` statement is compiled once
per dialect; each row becomes a plain tuple in the statement's parameter order, only the
values of columns whose type needs processing (times) are processed, with SQLAlchemy's own
processors, and a value shared by many rows (the send's ``now``) is processed once. It runs
through ``Connection.exec_driver_sql``, so SQLAlchemy's events and transaction still apply.
Dialects with named parameters (none this project uses) take the ordinary path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, CursorResult, Dialect, Table, bindparam
from sqlalchemy.sql.dml import ValuesBase

Processor = Callable[[Any], Any]


def binds_for(table: Table, names: Iterable[str], *, prefix: str = "") -> dict[str, Any]:
    """``{column: bindparam(prefix + column)}`` typed as the column, for ``.values()``.

    The type matters: a bare ``bindparam`` has none, and its value would reach the driver
    unprocessed (sqlite3 would store a time in its own format, not SQLAlchemy's).
    """
    return {name: bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in names}


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement compiled for one dialect: its SQL and its parameters in order."""

    sql: str
    names: tuple[str, ...]
    processors: dict[str, Processor]
    constants: dict[str, Any]  # values bound in the statement itself, already processed

    def rows(self, rows: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """The driver's tuples: in parameter order, processed values memoised by value."""
        names, processors = self.names, self.processors
        done: dict[tuple[str, Any], Any] = {}
        out = []
        for values in rows:
            row = []
            for name in names:
                if name in self.constants:
                    row.append(self.constants[name])
                    continue
                value = values[name]
                processor = processors.get(name)
                if processor is not None and value is not None:
                    key = (name, value)
                    if key not in done:
                        done[key] = processor(value)
                    value = done[key]
                row.append(value)
            out.append(tuple(row))
        return out


@dataclass(slots=True)
class Bulk:
    """An INSERT or UPDATE with bound parameters, run with executemany."""

    statement: ValuesBase
    _prepared: dict[str, Prepared | None] = field(default_factory=dict)

    def prepare(self, dialect: Dialect) -> Prepared | None:
        """The compiled form for this dialect; None when its parameters are not positional."""
        if dialect.name not in self._prepared:
            compiled: Any = self.statement.compile(dialect=dialect)
            if not compiled.positional or not compiled.positiontup:
                self._prepared[dialect.name] = None
            else:
                names = tuple(compiled.positiontup)
                binds = compiled.binds
                processors = {
                    name: processor
                    for name in names
                    if (
                        processor := binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                    )
                }
                constants = {
                    name: processors[name](binds[name].value)
                    if name in processors and binds[name].value is not None
                    else binds[name].value
                    for name in names
                    if not binds[name].required
                }
                self._prepared[dialect.name] = Prepared(
                    str(compiled), names, processors, constants
                )
        return self._prepared[dialect.name]

    def run(self, connection: Connection, rows: Sequence[dict[str, Any]]) -> int:
        """Write ``rows`` (every parameter of the statement, by name); the driver's row count."""
        if not rows:
            return 0
        prepared = self.prepare(connection.dialect)
        if prepared is None:
            result: CursorResult[Any] = connection.execute(self.statement, list(rows))
            return int(result.rowcount)
        outcome = connection.exec_driver_sql(prepared.sql, prepared.rows(rows))
        return int(outcome.rowcount)
