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

The fast lane fails as Core fails: the cursor events fire with a real execution context (tracers
such as OpenTelemetry's keep their span on it), and a driver error becomes SQLAlchemy's
`DBAPIError` (the app's 503), a disconnect taking the connection out of the pool.

Statement shapes (which filters, how many codes, the sort) come from the query string, so every
cache of statements is bounded (`STATEMENT_CACHE_SIZE`), and a statement's compiled form lives
exactly as long as the statement object it was compiled from.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import _lru_cache_wrapper, lru_cache
from threading import Lock
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Select, bindparam, exc
from sqlalchemy.engine import Dialect

Processor = Callable[[Any], Any] | None
T = TypeVar("T")

# Shapes come from the query string: 6,330 sort orders alone, and the filters multiply them
# (unbounded, 3,000 sort orders grew a worker by 240 MB). Each statement builder keeps its
# most recent 64 shapes: more than the load test (a handful) or the dashboards use, and the
# heaviest shape (a comparison, about 230 KB built and compiled) keeps one builder under 15 MB.
# A shape evicted and asked for again costs one build and compilation (5 to 10 ms).
STATEMENT_CACHE_SIZE = 64


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

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        bound = {
            name: processor(values[name]) if processor else values[name]
            for name, processor in self.binders
        }
        if self.positional is None:
            return bound
        return tuple(bound[name] for name in self.positional)


def in_list(column: Any, name: str, count: int) -> Any:
    """`column IN (:name_0, ..., :name_{count-1})`: a list bound one parameter per item, the form
    `prepare` accepts (values from `list_values`). The count is part of a statement's shape."""
    return column.in_([bindparam(f"{name}_{i}") for i in range(count)])


def list_values(name: str, items: Sequence[Any]) -> dict[str, Any]:
    """The values for `in_list(column, name, len(items))`."""
    return {f"{name}_{i}": item for i, item in enumerate(items)}


STATEMENT_BUILDERS: "list[_lru_cache_wrapper[Any]]" = []


def statement_cache(builder: Callable[..., T]) -> "_lru_cache_wrapper[T]":
    """`builder` (shape -> statements) remembering its STATEMENT_CACHE_SIZE latest shapes."""
    cached = lru_cache(maxsize=STATEMENT_CACHE_SIZE)(builder)
    STATEMENT_BUILDERS.append(cached)
    return cached


# Weak keys: a compiled form goes when its statement does (evicted from its builder's cache),
# so this holds no more than the builders do, and a later statement at the same address is
# never taken for the evicted one.
_prepared: WeakKeyDictionary[Select[Any], dict[str, Prepared]] = WeakKeyDictionary()
_lock = Lock()


def prepare(statement: Select[Any], dialect: Dialect) -> Prepared:
    """The statement compiled for `dialect`, once per statement object (keep the object)."""
    found = _prepared.get(statement, {}).get(dialect.name)
    if found is not None:
        return found
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
        _prepared.setdefault(statement, {})[dialect.name] = prepared
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
    rows, description = _run(connection, prepared.sql, prepared.parameters(values))
    processors = prepared.converters(connection.dialect, description)
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


def _run(
    connection: Connection, sql: str, parameters: tuple[Any, ...] | dict[str, Any]
) -> tuple[Sequence[Any], Sequence[Any]]:
    """The rows and cursor description of `sql`, run as Core runs a statement.

    Core's own steps, minus the result object: an execution context (listeners and tracers
    keep state on it), the cursor events, and every driver error handed to the connection,
    which wraps it in `DBAPIError` and invalidates the connection on a disconnect. Measured
    (timeit, a seed page of 10 rows on SQLite, medians): about 3 us a statement more than the
    bare cursor, where `exec_driver_sql` and its result rows cost about 35 us more."""
    dialect = connection.dialect
    try:
        context = dialect.execution_ctx_cls._init_statement(
            dialect,
            connection,
            connection.connection,
            connection.get_execution_options(),
            sql,
            [parameters],  # type: ignore[arg-type]  # one row: a tuple or a dict
        )
    except (exc.PendingRollbackError, exc.ResourceClosedError):
        raise  # the connection's own state, as Core raises it
    except BaseException as error:
        connection._handle_dbapi_exception(error, sql, parameters, None, None)
    cursor = context.cursor
    connection._cursor_execute(cursor, sql, parameters, context)  # events, errors as Core's
    try:
        rows = cursor.fetchall()  # SQLite runs the statement as the rows are fetched
        description = cursor.description
    except BaseException as error:
        connection._handle_dbapi_exception(error, sql, parameters, cursor, context)
    cursor.close()
    return rows, description


def fetch_one(
    connection: Connection,
    statement: Select[Any],
    values: Mapping[str, Any],
    *,
    transaction: bool = True,
) -> dict[str, Any] | None:
    rows = fetch(connection, statement, values, transaction=transaction)
    return rows[0] if rows else None
