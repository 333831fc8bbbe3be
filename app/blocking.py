"""Where blocking database work runs: on the event loop, or in the thread pool.

SQLite answers the short, bounded queries in microseconds, so they run on the event loop (a
thread-pool hop per request cost about two thirds of the throughput here,
../shared/PERFORMANCE.md). Reads whose work grows with the history or with whole years rather
than with the answer (`heavy`: `as_of`, `updated_after`, comparisons of every series) run in
the thread pool, so that `/healthz` and the cheap reads never wait behind them (issue 11: four
clients reading `as_of` pushed `/healthz` to 4.4 s). PostgreSQL calls cross the network and can
stall during an outage, so they all run in the thread pool. Every SQLite read is also bounded in
time (app/db.py `read_connection`).
"""

import asyncio
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple

from anyio import CapacityLimiter, to_thread
from sqlalchemy import Connection, Engine

from app.config import get_settings
from app.db import read_connection

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

_limiters: dict[tuple[int, int], CapacityLimiter] = {}
# Heavy SQLite reads at once per worker (`_threads_for`): one runs its SQL (which lets go of
# Python's lock) while the other runs Python.
SQLITE_READ_THREADS = 2


def _threads_for(engine: Engine) -> CapacityLimiter:
    """The threads an engine's reads may take at once, waiting their turn in order beyond.

    PostgreSQL: as many as its pool keeps connections open. With more, reads spill into the
    pool's overflow, whose connections are opened and closed on every request (a new
    PostgreSQL backend each): a third of the time under load (docs/benchmarks.md). Writes keep
    the overflow.

    SQLite: `SQLITE_READ_THREADS`. Its heavy reads are Python work as much as SQL, and
    Python threads share one lock with the event loop: five at once made each slower and
    starved the loop, so that at 32 connections one comparison in a hundred took over 2 s
    (docs/benchmarks.md); in turn, they finish in the order they came."""
    key = (id(engine), id(asyncio.get_running_loop()))
    limiter = _limiters.get(key)
    if limiter is None:
        sqlite = engine.dialect.name == "sqlite"
        threads = SQLITE_READ_THREADS if sqlite else get_settings().pg_pool_size
        limiter = _limiters[key] = CapacityLimiter(threads)
    return limiter


async def run_db(engine: Engine, work: Callable[[], T], *, heavy: bool = False) -> T:
    """Run blocking database work: inline for SQLite unless `heavy`, else in the thread pool."""
    if engine.dialect.name == "sqlite" and not heavy:
        return work()
    return await to_thread.run_sync(work, limiter=_threads_for(engine))


async def run_read(
    engine: Engine,
    query: Callable[[Connection, *Ts], T],
    *arguments: *Ts,
    heavy: bool = False,
    lone: bool = False,
) -> T:
    """`query(connection, *arguments)` on a read connection of `engine` (`lone`: one
    statement, app/db.py `read_connection`), run as `run_db` runs."""
    if engine.dialect.name == "sqlite" and not heavy:
        return _on_read_connection(engine, query, arguments, lone)
    return await to_thread.run_sync(
        _on_read_connection, engine, query, arguments, lone, limiter=_threads_for(engine)
    )


def _on_read_connection(
    engine: Engine, query: Callable[[Connection, *Ts], T], arguments: tuple[*Ts], lone: bool
) -> T:
    with read_connection(engine, lone=lone) as connection:
        return query(connection, *arguments)


async def run_write(work: Callable[[], T]) -> T:
    """Run a write in the thread pool, on every database: a writer may wait for the lock."""
    return await to_thread.run_sync(work)
