"""Test databases: each test gets its own, cloned from a template built once per session.

By default the tests run on SQLite files. With STATSAPI_TEST_DATABASE_URL naming a PostgreSQL
database (a maintenance database the tests may connect to, such as `test`), they run on
PostgreSQL: each template and each test database is a database of its own on that server.
"""

import os
import shutil
import uuid

# Tests write far faster than any partner; rate limits have tests of their own.
os.environ.setdefault("STATSAPI_WRITE_RATE_LIMIT", "1000000/minute")
os.environ.setdefault("STATSAPI_AUTH_FAILURE_RATE_LIMIT", "1000000/minute")
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, Table, create_engine, event, func, select, text
from sqlalchemy.engine import make_url

from app.config import PROJECT_ROOT
from app.db import build_engine, engine_dependency, sqlalchemy_url
from app.keys import Scope, create_key
from app.main import create_app
from app.migrate import upgrade
from app.models import data_version_table, observation_table, revision_table
from app.seeding import seed_directory
from tests.factories import load_document, world_document

PG_URL = os.environ.get("STATSAPI_TEST_DATABASE_URL")
SEED_DIR = PROJECT_ROOT / "seed"
SOURCE_TEXT = SEED_DIR / "sources" / "changzhou-veterans-affairs-2023-review.txt"


class DatabaseFactory:
    """Makes fresh databases, empty (migrated) or seeded, on the backend under test."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.backend = "postgresql" if PG_URL else "sqlite"
        self._templates: dict[str, str] = {}
        self._created: list[str] = []

    def _admin(self) -> Engine:
        # Not build_engine: creating and dropping databases may take longer than the app's
        # statement timeout when the server is busy.
        assert PG_URL
        return create_engine(sqlalchemy_url(PG_URL), isolation_level="AUTOCOMMIT")

    def _new_url(self, name: str) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.workdir / f'{name}.sqlite3'}"
        admin = self._admin()
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        self._created.append(name)
        return (
            make_url(sqlalchemy_url(PG_URL or ""))
            .set(database=name)
            .render_as_string(hide_password=False)
        )

    def _template(self, kind: str) -> str:
        if kind not in self._templates:
            url = self._new_url(f"statsapi_tpl_{kind}_{uuid.uuid4().hex[:8]}")
            engine = build_engine(url)
            upgrade(engine)
            if kind == "seeded":
                seed_directory(engine, SEED_DIR)
            engine.dispose()  # closes every connection: SQLite checkpoints, PG allows cloning
            self._templates[kind] = url
        return self._templates[kind]

    def fresh(self, kind: str = "empty") -> str:
        """A new database URL: `empty` (at the migration head) or `seeded` (the real seed)."""
        template = self._template(kind)
        name = f"statsapi_t_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            target = self.workdir / f"{name}.sqlite3"
            shutil.copyfile(make_url(template).database or "", target)
            return f"sqlite:///{target}"
        admin = self._admin()
        template_name = make_url(template).database
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
        admin.dispose()
        self._created.append(name)
        return make_url(template).set(database=name).render_as_string(hide_password=False)

    def blank(self) -> str:
        """A new database with no tables at all (for migration tests)."""
        return self._new_url(f"statsapi_t_{uuid.uuid4().hex[:12]}")

    def cleanup(self) -> None:
        if self.backend != "postgresql" or not self._created:
            return
        admin = self._admin()
        with admin.connect() as connection:
            for name in reversed(self._created):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    factory = DatabaseFactory(tmp_path_factory.mktemp("databases"))
    yield factory
    factory.cleanup()


def _engine(url: str) -> Iterator[Engine]:
    engine = build_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def empty_engine(databases: DatabaseFactory) -> Iterator[Engine]:
    """A fresh database at the migration head, with no rows."""
    yield from _engine(databases.fresh("empty"))


@pytest.fixture
def seeded_engine(databases: DatabaseFactory) -> Iterator[Engine]:
    """A fresh database holding the real 2023 seed; the test may write to it."""
    yield from _engine(databases.fresh("seeded"))


@pytest.fixture(scope="module")
def shared_seeded_engine(databases: DatabaseFactory) -> Iterator[Engine]:
    """The real seed, shared by a module's read-only tests (they must not write)."""
    yield from _engine(databases.fresh("seeded"))


ClientFactory = Callable[[Engine], TestClient]


def count_statements(engine: Engine, call: Callable[[], object]) -> int:
    """How many SQL statements `call` runs on `engine` (transaction control not counted)."""
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return len([s for s in statements if not s.startswith(("BEGIN", "PRAGMA", "LOCK"))])


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """Builds a TestClient of a fresh app bound to the given engine."""
    clients: list[TestClient] = []

    def build(engine: Engine) -> TestClient:
        app = create_app()
        app.dependency_overrides[engine_dependency] = lambda: engine
        client = TestClient(app, raise_server_exceptions=False)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: ClientFactory, shared_seeded_engine: Engine) -> TestClient:
    """A client of the app over the shared seeded database (read-only tests)."""
    return make_client(shared_seeded_engine)


@pytest.fixture(scope="module")
def world_engine(databases: DatabaseFactory) -> Iterator[Engine]:
    """The SYNTHETIC test world (tests/factories.py), shared by a module's read-only tests."""
    for engine in _engine(databases.fresh("empty")):
        load_document(engine, world_document())
        yield engine


@pytest.fixture
def world(make_client: ClientFactory, world_engine: Engine) -> TestClient:
    """A client over the synthetic world (read-only tests)."""
    return make_client(world_engine)


@pytest.fixture
def engine(empty_engine: Engine) -> Engine:
    """A per-test database holding the synthetic world; the test may write to it."""
    load_document(empty_engine, world_document())
    return empty_engine


@pytest.fixture
def api(make_client: ClientFactory, engine: Engine) -> TestClient:
    """A client over `engine`, the per-test synthetic world."""
    return make_client(engine)


@pytest.fixture
def tokens(engine: Engine) -> dict[str, str]:
    """Tokens of two keys on `engine`: `write` (named partner) and `admin` (named bureau)."""
    return {
        "write": create_key(engine, name="partner", scopes={Scope.write}),
        "admin": create_key(engine, name="bureau", scopes={Scope.admin}),
    }


@pytest.fixture
def token(tokens: dict[str, str]) -> str:
    """The write key's token."""
    return tokens["write"]


def bearer(token: str, **extra: str) -> dict[str, str]:
    """Headers sending `token`, with any others."""
    return {"Authorization": f"Bearer {token}", **extra}


def count_rows(engine: Engine, table: Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def data_version(engine: Engine) -> int | None:
    with engine.connect() as connection:
        return connection.execute(select(data_version_table.c.version)).scalar()


def snapshot(engine: Engine) -> tuple[Any, ...]:
    """Everything a write could change: published rows, history size, data version."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                observation_table.c.indicator_id,
                observation_table.c.region_id,
                observation_table.c.year,
                observation_table.c.value,
                observation_table.c.revision,
            ).order_by(observation_table.c.id)
        ).all()
    return tuple(map(tuple, rows)), count_rows(engine, revision_table), data_version(engine)
