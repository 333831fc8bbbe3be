"""Engines and transactions, for SQLite (embedded default) and PostgreSQL.

SQLite: WAL, a busy timeout and foreign keys on every connection. The sqlite3 module's own
transaction handling is switched off so that SQLAlchemy's `begin` can say how to begin: writes
take the lock up front with BEGIN IMMEDIATE (with a deferred BEGIN, concurrent read-then-write
transactions fail with "database is locked" whatever the busy timeout; ../shared/RELIABILITY.md),
reads stay deferred and never wait for a writer in WAL mode.

PostgreSQL: a ping before a connection idle for a second is used (a restarted server otherwise
fails the first request per worker), a bounded pool, a connect timeout and a statement timeout.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from app.config import get_settings

WRITE_OPTION = "statsapi_write"
# A pooled PostgreSQL connection idle this long is pinged before it is used (`_ping_after_idle`).
PING_AFTER_IDLE_S = 1.0
# SQLite calls the read deadline's check every this many virtual-machine steps: a fraction of a
# millisecond of work, so an interrupted read stops within about a millisecond of its deadline,
# and the check (one Python call) costs well under 1% of a statement's time.
SQLITE_PROGRESS_STEPS = 10_000


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database, in memory or a `file:` URI)."""
    if not url.startswith("sqlite"):
        return None
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        return Path(database)
    return None


def _prepare_sqlite_file(url: str) -> None:
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def build_engine(url: str) -> Engine:
    """A new engine for `url`, configured for how this app uses that database."""
    settings = get_settings()
    if url.startswith("sqlite"):
        _prepare_sqlite_file(url)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        busy_timeout = settings.sqlite_busy_timeout_ms

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")  # safe in WAL mode, much faster commits
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection: Connection) -> None:
            write = connection.get_execution_options().get(WRITE_OPTION, False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    connect_args: dict[str, Any] = {
        "connect_timeout": settings.pg_connect_timeout_s,
        "options": f"-c statement_timeout={settings.pg_statement_timeout_ms}",
    }
    engine = create_engine(
        url,
        pool_size=settings.pg_pool_size,
        max_overflow=settings.pg_pool_size,
        pool_timeout=settings.pg_connect_timeout_s,
        connect_args=connect_args,
    )
    _ping_after_idle(engine)
    return engine


def _ping_after_idle(engine: Engine) -> None:
    """Ping a pooled connection before use when it has been idle a while (SQLAlchemy's
    "pessimistic" disconnect handling, as its docs give it, by a checkout event): after a
    server restart the first request on each old connection would otherwise fail
    (../shared/RELIABILITY.md). `pool_pre_ping` pings on every checkout, a round trip per
    request: a fifth of a filtered read's (docs/benchmarks.md). A connection in steady use is
    not pinged; if the server went away under it, the read fails with a disconnect (503), and
    SQLAlchemy then replaces every connection the pool holds."""

    @event.listens_for(engine, "checkin")
    def _idle_since(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool discards this connection and checks out another (a new one).
            raise exc.DisconnectionError(str(error)) from error


def sqlalchemy_url(url: str) -> str:
    """postgresql:// and postgres:// mean psycopg 3 here (psycopg2 is not installed)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache
def get_engine(url: str | None = None) -> Engine:
    """The process's engine for `url` (default: the configured database), built on first use."""
    return build_engine(sqlalchemy_url(url or get_settings().database_url))


@contextmanager
def write_transaction(engine: Engine, *, commit: bool = True) -> Iterator[Connection]:
    """A connection inside one write transaction: committed on success (unless `commit` is
    False: a dry run), rolled back on error."""
    with (
        engine.connect().execution_options(**{WRITE_OPTION: True}) as connection,
        connection.begin() as transaction,
    ):
        if connection.dialect.name == "postgresql":
            # Writers take turns, as SQLite's BEGIN IMMEDIATE makes them: a read-then-write
            # (an If-Match check, a revision number) never races another writer. Readers are
            # not blocked. Writes are rare; correctness beats write concurrency here.
            connection.exec_driver_sql("LOCK TABLE data_version IN SHARE ROW EXCLUSIVE MODE")
        yield connection
        if not commit:
            transaction.rollback()


@contextmanager
def read_connection(engine: Engine, *, lone: bool = False) -> Iterator[Connection]:
    """A connection for reads (a deferred transaction on SQLite: never waits for a writer).

    `lone`: the read is one statement, which needs no transaction (the data version before
    routing): on PostgreSQL it runs in autocommit, one round trip instead of three (BEGIN,
    the statement, COMMIT).

    On SQLite the whole read is bounded by `sqlite_read_timeout_ms`, as PostgreSQL's
    `statement_timeout` bounds each statement: past it SQLite interrupts the statement. Errors
    the driver raises below SQLAlchemy (statements run on the raw cursor, app/prepared.py)
    leave here as SQLAlchemy's `DBAPIError`s, which the app answers 503 (or 422 for a
    `DataError`), as it answers Core's."""
    dbapi_error = engine.dialect.loaded_dbapi.Error
    with engine.connect() as connection:
        try:
            if connection.dialect.name == "postgresql" and lone:
                connection.execution_options(isolation_level="AUTOCOMMIT")
            elif connection.dialect.name == "postgresql":
                # One snapshot for all the statements of a read, as SQLite's transaction
                # gives: a page and its count, the data and the change sequence it reports
                # (`X-Change-Seq`), an export's references and its values. A read-only
                # REPEATABLE READ transaction never fails to serialise, and costs what READ
                # COMMITTED does (the isolation goes with the BEGIN).
                connection.execution_options(isolation_level="REPEATABLE READ")
            if connection.dialect.name == "sqlite":
                with _sqlite_deadline(connection, get_settings().sqlite_read_timeout_ms):
                    yield connection
            else:
                yield connection
            # A read ends with COMMIT, not the pool's ROLLBACK: it changes nothing either way,
            # but psycopg forgets a connection's prepared statements on every ROLLBACK, so
            # PostgreSQL would plan each read's statements anew on every request (planning took
            # 1.2 ms of a 1.3 ms filtered read; docs/benchmarks.md).
            if connection.in_transaction():
                connection.commit()
        except dbapi_error as error:
            raise DBAPIError.instance(None, None, error, dbapi_error) from error


@contextmanager
def _sqlite_deadline(connection: Connection, timeout_ms: int) -> Iterator[None]:
    """Interrupt SQLite's statements on `connection` once `timeout_ms` have passed (0: never).
    The interrupted statement raises `sqlite3.OperationalError: interrupted`."""
    if not timeout_ms:
        yield
        return
    driver = connection.connection.driver_connection
    deadline = time.monotonic() + timeout_ms / 1000
    driver.set_progress_handler(lambda: time.monotonic() > deadline, SQLITE_PROGRESS_STEPS)  # type: ignore[union-attr]
    try:
        yield
    finally:
        driver.set_progress_handler(None, 0)  # type: ignore[union-attr]


async def engine_dependency() -> Engine:
    """FastAPI dependency for the configured engine; tests override it with their own.

    `async` so that FastAPI calls it on the event loop: a plain `def` dependency costs a
    thread-pool hop on every request (bench/sample.py showed it on every read)."""
    return get_engine()


EngineDep = Annotated[Engine, Depends(engine_dependency)]
