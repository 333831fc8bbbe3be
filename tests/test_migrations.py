"""The migrations are the schema: they match the models, and they go up and down cleanly."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from app.db import build_engine
from app.migrate import current_revision, downgrade, head_revision, upgrade
from tests.conftest import PG_URL, DatabaseFactory

APP_TABLES = {
    "category",
    "unit",
    "region",
    "indicator",
    "source",
    "observation",
    "observation_revision",
    "data_version",
}


def _blank_url(databases: DatabaseFactory, backend: str, tmp_path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
    if not PG_URL:
        pytest.skip("needs PostgreSQL: set STATSAPI_TEST_DATABASE_URL (.ci/run does)")
    if databases.backend != "postgresql":
        pytest.skip("PostgreSQL databases come from the PostgreSQL run of the suite")
    return databases.blank()


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_engine(request, databases, tmp_path):
    engine = build_engine(_blank_url(databases, request.param, tmp_path))
    yield engine
    engine.dispose()


def test_models_and_migration_head_agree(blank_engine) -> None:
    upgrade(blank_engine)
    with blank_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_upgrade_downgrade_to_base_and_upgrade_again(blank_engine) -> None:
    upgrade(blank_engine)
    assert current_revision(blank_engine) == head_revision()
    assert set(inspect(blank_engine).get_table_names()) >= APP_TABLES

    downgrade(blank_engine, "base")
    assert current_revision(blank_engine) is None
    assert not APP_TABLES & set(inspect(blank_engine).get_table_names())

    upgrade(blank_engine)
    assert current_revision(blank_engine) == head_revision()
    assert set(inspect(blank_engine).get_table_names()) >= APP_TABLES
