"""The reads' fast lane (app/prepared.py) fails as Core fails (issue 11, item 11).

Its statements run on the driver's cursor, below SQLAlchemy's execution; a driver error there
must still become SQLAlchemy's `DBAPIError`, so that the app answers the documented 503
problem+json with Retry-After, and a dead connection must leave the pool. Its cursor events must
be Core's: `before_cursor_execute` and `after_cursor_execute` with one real execution context,
which tracers such as OpenTelemetry's keep their span on.

Each fault is made by the test and hits one statement of the request, so nothing here depends
on timing: a PostgreSQL table lock that outlasts `statement_timeout`, a SQLite statement
interrupted (SQLite's progress handler), a connection closed or its server process terminated
just before its statement runs.
"""

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import ExecutionContext

from app.config import get_settings
from app.db import build_engine, sqlalchemy_url
from app.errors import RETRY_AFTER_SECONDS
from tests.conftest import PG_URL, ClientFactory, DatabaseFactory

API = "/api/v1/observations"
PROBLEM = "application/problem+json"
# An instant the seed's history has passed: the same list, read through the revisions.
AFTER_THE_SEED = "2000-01-01T00:00:00Z"
# The three ways to list observations: the published rows, a vintage, the changes since.
LISTS = [API, f"{API}?as_of=2999-01-01T00:00:00Z", f"{API}?updated_after={AFTER_THE_SEED}"]
LIST_IDS = ["published", "as_of", "updated_after"]

needs_sqlite = pytest.mark.skipif(
    PG_URL is not None, reason="SQLite's progress handler: this pass runs on PostgreSQL"
)
needs_postgres = pytest.mark.skipif(
    PG_URL is None, reason="needs PostgreSQL: set STATSAPI_TEST_DATABASE_URL to run it"
)


def _is_page(statement: str) -> bool:
    """The statement of a list's page (the only one with LIMIT; the count has none)."""
    return "LIMIT" in statement.upper() and "observation" in statement


def _reads_the_data_version(statement: str) -> bool:
    return "data_version" in statement


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text[:500]
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    body = response.json()
    assert body["status"] == 503
    assert body["type"].endswith("database-unavailable")
    assert "Traceback" not in response.text


def _once_before(
    engine: Engine, matches: Callable[[str], bool], fault: Callable[[Any], None]
) -> list[bool]:
    """`fault(cursor)` just before the first statement that `matches` runs, then never again."""
    armed = [True]

    def before(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if armed and matches(statement):
            armed.clear()
            fault(cursor)

    event.listen(engine, "before_cursor_execute", before)
    return armed


@pytest.fixture
def seeded(databases: DatabaseFactory) -> Iterator[Engine]:
    engine = build_engine(databases.fresh("seeded"))
    yield engine
    engine.dispose()


# -- a driver error inside the fast lane is the 503 ---------------------------------------------


@needs_postgres
@pytest.mark.parametrize("path", LISTS, ids=LIST_IDS)
def test_a_postgresql_statement_timeout_on_a_list_answers_503_with_retry_after(
    databases: DatabaseFactory,
    make_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    path: str,
    uncached: None,
) -> None:
    """A lock held past the app's 300 ms statement_timeout: psycopg raises QueryCanceled."""
    monkeypatch.setattr(get_settings(), "pg_statement_timeout_ms", 300)
    errors_log = logging.getLogger("statsapi.errors")  # may not propagate (the app's JSON log)
    monkeypatch.setattr(errors_log, "handlers", [*errors_log.handlers, caplog.handler])
    url = databases.fresh("seeded")
    engine = build_engine(url)
    client = make_client(engine)
    assert client.get(path).status_code == 200
    blocker = create_engine(url)
    try:
        with blocker.connect() as holder, holder.begin():
            holder.execute(
                text("LOCK TABLE observation, observation_revision IN ACCESS EXCLUSIVE MODE")
            )
            started = time.monotonic()
            refused = client.get(path)
            waited = time.monotonic() - started
        again = client.get(path)
    finally:
        blocker.dispose()
        engine.dispose()

    _assert_unavailable(refused)
    assert waited < 5  # the statement timeout, not the lock's holder, ended the wait
    assert "database unavailable on /api/v1/observations: QueryCanceled" in caplog.messages
    assert again.status_code == 200, again.text[:500]


@needs_sqlite
@pytest.mark.parametrize("path", LISTS, ids=LIST_IDS)
def test_a_sqlite_error_inside_a_list_statement_answers_503_with_retry_after(
    seeded: Engine, make_client: ClientFactory, path: str
) -> None:
    """SQLite interrupts the page's statement as it runs (`OperationalError: interrupted`)."""
    client = make_client(seeded)
    errors: list[Any] = []
    event.listen(seeded, "handle_error", errors.append)

    def interrupt(cursor: Any) -> None:
        cursor.connection.set_progress_handler(_returns_1_once(), 1)

    armed = _once_before(seeded, _is_page, interrupt)
    refused = client.get(path)
    again = client.get(path)

    assert not armed  # the fault was made
    _assert_unavailable(refused)
    assert again.status_code == 200, again.text[:500]
    # Core's error event saw it, with the statement's execution context (tracers end their
    # span there).
    [error] = errors
    assert "interrupted" in str(error.original_exception)
    assert isinstance(error.execution_context, ExecutionContext)
    assert _is_page(error.statement)


@needs_sqlite
def test_a_sqlite_error_reading_the_data_version_for_a_304_answers_503(
    seeded: Engine, make_client: ClientFactory
) -> None:
    """The revalidation reads the data version alone, outside a transaction: the same 503."""
    client = make_client(seeded)
    etag = client.get(API).headers["etag"]

    def interrupt(cursor: Any) -> None:
        cursor.connection.set_progress_handler(_returns_1_once(), 1)

    armed = _once_before(seeded, _reads_the_data_version, interrupt)
    refused = client.get(API, headers={"If-None-Match": etag})
    again = client.get(API, headers={"If-None-Match": etag})

    assert not armed
    _assert_unavailable(refused)
    assert again.status_code == 304


def _returns_1_once() -> Callable[[], int]:
    """A SQLite progress handler that interrupts the statement running, and nothing after."""
    calls = [0]

    def handler() -> int:
        calls[0] += 1
        return 1 if calls[0] == 1 else 0

    return handler


# -- a disconnect: 503, and the dead connection leaves the pool ---------------------------------


def _kill(engine: Engine) -> Callable[[Any], None]:
    """A fault that kills the cursor's connection: closed (SQLite), its server process
    terminated (PostgreSQL, waiting until the server has let it go)."""
    if engine.dialect.name == "sqlite":
        return lambda cursor: cursor.connection.close()
    admin = create_engine(sqlalchemy_url(PG_URL or ""), isolation_level="AUTOCOMMIT")

    def terminate(cursor: Any) -> None:
        pid = cursor.connection.info.backend_pid
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            deadline = time.monotonic() + 5
            alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
            while connection.execute(alive, {"pid": pid}).scalar_one():
                assert time.monotonic() < deadline, "the backend outlived pg_terminate_backend"
                time.sleep(0.02)
        admin.dispose()

    return terminate


@pytest.fixture
def uncached(monkeypatch: pytest.MonkeyPatch) -> None:
    """Apps made after this keep no answers (app/answers.py): a request asked again runs its
    route's statements, which these tests watch."""
    monkeypatch.setattr(get_settings(), "answer_cache_bytes", 0)


@pytest.mark.parametrize("path", [*LISTS, "revalidation"], ids=[*LIST_IDS, "revalidation"])
def test_a_connection_lost_mid_read_answers_503_and_leaves_the_pool(
    seeded: Engine, make_client: ClientFactory, path: str, uncached: None
) -> None:
    """Killed just before the list's page runs, or before the data version that a 304 reads
    alone (outside a transaction, so that no rollback on the way out meets the dead
    connection first)."""
    client = make_client(seeded)
    headers, matches = {}, _is_page
    if path == "revalidation":
        path = API
        headers = {"If-None-Match": client.get(API).headers["etag"]}
        matches = _reads_the_data_version
    assert client.get(path, headers=headers).status_code in (200, 304)
    errors: list[Any] = []
    event.listen(seeded, "handle_error", errors.append)
    invalidated: list[Any] = []
    event.listen(seeded, "invalidate", lambda *args: invalidated.append(args))

    armed = _once_before(seeded, matches, _kill(seeded))
    refused = client.get(path, headers=headers)
    again = client.get(path, headers=headers)

    assert not armed
    _assert_unavailable(refused)
    assert invalidated, "the dead connection was handed back to the pool"
    assert again.status_code in (200, 304), again.text[:500]
    # The connection saw the disconnect on the statement itself, as Core's would.
    assert errors and errors[0].is_disconnect
    assert errors[0].statement is not None and matches(errors[0].statement)


# -- the cursor events are Core's ---------------------------------------------------------------


@contextmanager
def _listening(engine: Engine, name: str, listener: Any, *, retval: bool = False) -> Iterator[None]:
    event.listen(engine, name, listener, retval=retval)
    try:
        yield
    finally:
        event.remove(engine, name, listener)


@pytest.mark.parametrize("path", LISTS, ids=LIST_IDS)
def test_every_statement_fires_before_and_after_cursor_execute_with_one_real_context(
    world_engine: Engine, make_client: ClientFactory, path: str, uncached: None
) -> None:
    client = make_client(world_engine)
    client.get(path)  # warm the catalog and the statement caches
    before: list[tuple[str, Any]] = []
    after: list[tuple[str, Any]] = []

    def record_before(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, *_: Any
    ) -> None:
        before.append((statement, context))

    def record_after(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, *_: Any
    ) -> None:
        after.append((statement, context))

    with (
        _listening(world_engine, "before_cursor_execute", record_before),
        _listening(world_engine, "after_cursor_execute", record_after),
    ):
        response = client.get(path)

    assert response.status_code == 200, response.text[:500]
    assert before and after == before
    for _statement, context in before:
        assert isinstance(context, ExecutionContext)
    assert len({id(context) for _statement, context in before}) == len(before)
    assert any(_is_page(statement) for statement, _context in before)


def test_a_listener_may_rewrite_a_statement_as_in_core(
    world_engine: Engine, make_client: ClientFactory
) -> None:
    """`retval=True` listeners (SQL commenters) change what runs, on the fast lane too."""
    client = make_client(world_engine)
    ran: list[str] = []

    def comment(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any
    ) -> tuple[str, Any]:
        return f"{statement} /* traced */", parameters

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        ran.append(statement)

    with (
        _listening(world_engine, "before_cursor_execute", comment, retval=True),
        _listening(world_engine, "after_cursor_execute", record),
    ):
        response = client.get(API)

    assert response.status_code == 200
    pages = [statement for statement in ran if _is_page(statement)]
    assert pages and all(statement.endswith("/* traced */") for statement in pages)
