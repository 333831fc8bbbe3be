"""Read statements compiled once and run on the driver's cursor: the read paths' fast lane.

A read statement (built in app/queries.py and app/comparisons.py from SQLAlchemy Core, with
every value a named `bindparam`) is compiled once per database dialect. Each request then runs
its SQL text on the DBAPI cursor of the request's SQLAlchemy connection, inside the same
transaction, and converts each column with the result processor of its SQLAlchemy type. The
answer is the same as `connection.execute(statement, params)` (tests/test_prepared.py runs both
on the same data); what is skipped is the per-request statement construction, cache-key
hashing and execution context that made a 10-row read cost 10 times its SQL
(../shared/PERFORMANCE.md, docs/benchmarks.md).

Statements run here must bind every value by name (no anonymous literals such as
`column == 1`), and a list as one parameter per item (no `expanding=True`, which only Core's
execution expands); `prepare` refuses any other, so a missing value cannot become NULL.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from threading import Lock
from typing import Any

from sqlalchemy import Connection, Select, bindparam
from sqlalchemy.engine import Dialect

Processor = Callable[[Any], Any] | None


@dataclass
class Prepared:
    sql: str
    positional: tuple[str, ...] | None  # parameter names in order, or None: a named paramstyle
    binders: tuple[tuple[str, Processor], ...]  # each parameter's bind processor
    columns: tuple[str, ...]
    types: tuple[Any, ...]  # each column's SQLAlchemy type, for this dialect
    # Result processors, made at the first run: some drivers' (psycopg's NUMERIC) depend on the
    # type the server reports in cursor.description.
    processors: tuple[Processor, ...] | None = None

    def converters(self, dialect: Dialect, description: Sequence[Any]) -> tuple[Processor, ...]:
        if self.processors is None:
            self.processors = tuple(
                kind.result_processor(dialect, column[1])
                for kind, column in zip(self.types, description, strict=True)
            )
        return self.processors

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        bound = {
            name: processor(values[name]) if processor else values[name]
            for name, processor in self.binders
        }
        if self.positional is None:
            return bound
        return [bound[name] for name in self.positional]


def in_list(column: Any, name: str, count: int) -> Any:
    """`column IN (:name_0, ..., :name_{count-1})`: a list bound one parameter per item, the form
    `prepare` accepts (values from `list_values`). The count is part of a statement's shape."""
    return column.in_([bindparam(f"{name}_{i}") for i in range(count)])


def list_values(name: str, items: Sequence[Any]) -> dict[str, Any]:
    """The values for `in_list(column, name, len(items))`."""
    return {f"{name}_{i}": item for i, item in enumerate(items)}


_prepared: dict[tuple[int, str], tuple[Select[Any], Prepared]] = {}
_lock = Lock()


def prepare(statement: Select[Any], dialect: Dialect) -> Prepared:
    """The statement compiled for `dialect`, once per statement object (keep the object)."""
    key = (id(statement), dialect.name)
    found = _prepared.get(key)
    if found is not None and found[0] is statement:
        return found[1]
    compiled = statement.compile(dialect=dialect)
    anonymous = [name for name, bind in compiled.binds.items() if bind.unique]
    if anonymous:
        raise ValueError(f"bind every value by name in prepared statements: {anonymous}")
    expanding = [name for name, bind in compiled.binds.items() if bind.expanding]
    if expanding:
        # Only Core's execution expands these (`IN (__[POSTCOMPILE_x])`): one bindparam per code.
        raise ValueError(f"expanding parameters cannot be prepared: {expanding}")
    order = compiled.positiontup
    positional = tuple(str(name) for name in order) if order is not None else None
    prepared = Prepared(
        sql=compiled.string,
        positional=positional,
        binders=tuple(
            (name, bind.type.dialect_impl(dialect).bind_processor(dialect))
            for name, bind in compiled.binds.items()
        ),
        columns=tuple(str(column.key) for column in statement.selected_columns),
        types=tuple(column.type.dialect_impl(dialect) for column in statement.selected_columns),
    )
    with _lock:
        _prepared[key] = (statement, prepared)
    return prepared


def fetch(
    connection: Connection,
    statement: Select[Any],
    values: Mapping[str, Any],
    *,
    transaction: bool = True,
) -> list[dict[str, Any]]:
    """Rows of `statement` with `values`, as dicts keyed by column label.

    Inside the connection's transaction, begun here if need be (the statements of one answer
    see one snapshot); `transaction=False` runs a lone statement without one."""
    prepared = prepare(statement, connection.dialect)
    if transaction and not connection.in_transaction():
        connection.begin()  # the same (deferred, on SQLite) transaction as Core would open
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    parameters = prepared.parameters(values)
    # Listeners of SQLAlchemy's cursor events (statement counters in the tests, tracing) see
    # these statements as they see Core's.
    listeners = connection.dispatch.before_cursor_execute
    if listeners:  # none in production: skip the call
        listeners(connection, cursor, prepared.sql, parameters, None, False)
    try:
        cursor.execute(prepared.sql, parameters)
        rows = cursor.fetchall()
        processors = prepared.converters(connection.dialect, cursor.description)
    finally:
        cursor.close()
    columns = prepared.columns
    if not any(processors):
        return [dict(zip(columns, row, strict=True)) for row in rows]
    return [
        {
            column: processor(value) if processor else value
            for column, processor, value in zip(columns, processors, row, strict=True)
        }
        for row in rows
    ]


def fetch_one(
    connection: Connection,
    statement: Select[Any],
    values: Mapping[str, Any],
    *,
    transaction: bool = True,
) -> dict[str, Any] | None:
    rows = fetch(connection, statement, values, transaction=transaction)
    return rows[0] if rows else None
