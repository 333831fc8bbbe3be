"""Engines and transactions, for SQLite (embedded default) and PostgreSQL.

SQLite: WAL, a busy timeout and foreign keys on every connection. The sqlite3 module's own
transaction handling is switched off so that SQLAlchemy's `begin` can say how to begin: writes
take the lock up front with BEGIN IMMEDIATE (with a deferred BEGIN, concurrent read-then-write
transactions fail with "database is locked" whatever the busy timeout; ../shared/RELIABILITY.md),
reads stay deferred and never wait for a writer in WAL mode.

PostgreSQL: pre-ping (a restarted server otherwise fails the first request per worker), a bounded
pool, a connect timeout and a statement timeout.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url

from app.config import get_settings

WRITE_OPTION = "statsapi_write"


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


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
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=settings.pg_pool_size,
        max_overflow=settings.pg_pool_size,
        pool_timeout=settings.pg_connect_timeout_s,
        connect_args=connect_args,
    )


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
def read_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for reads (a deferred transaction on SQLite: never waits for a writer)."""
    with engine.connect() as connection:
        yield connection


async def engine_dependency() -> Engine:
    """FastAPI dependency for the configured engine; tests override it with their own.

    `async` so that FastAPI calls it on the event loop: a plain `def` dependency costs a
    thread-pool hop on every request (bench/sample.py showed it on every read)."""
    return get_engine()


EngineDep = Annotated[Engine, Depends(engine_dependency)]
