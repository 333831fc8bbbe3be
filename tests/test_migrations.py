"""The migrations are the schema: they match the models, and they go up and down cleanly."""

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, inspect, select, update
from sqlmodel import SQLModel

from app.db import build_engine
from app.migrate import current_revision, downgrade, head_revision, upgrade
from app.models import data_version_table, observation_table, revision_table
from app.seeding import seed_directory
from tests.conftest import PG_URL, SEED_DIR, DatabaseFactory

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


def test_the_change_sequence_numbers_the_existing_history_in_recorded_order(
    blank_engine,
) -> None:
    """Migration 0007 numbers the revisions already stored by when they were recorded (then by
    id), gives each observation its latest revision's number, and starts the counter after."""
    upgrade(blank_engine)
    seed_directory(blank_engine, SEED_DIR)
    downgrade(blank_engine, "-1")  # before the change sequence
    revisions = revision_table.c
    before = [column for column in revisions if column.name != "change_seq"]
    with blank_engine.begin() as connection:
        ids = connection.scalars(select(revisions.id).order_by(revisions.id)).all()
        # The last recorded first, and one value corrected later: order is not id order.
        connection.execute(
            update(revision_table)
            .where(revisions.id == ids[-1])
            .values(recorded_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
        corrected = (
            connection.execute(select(*before).where(revisions.id == ids[0])).mappings().one()
        )
        connection.execute(
            insert(revision_table).values(
                {k: v for k, v in corrected.items() if k != "id"}
                | {"revision": 2, "action": "update", "recorded_at": datetime.now(UTC)}
            )
        )
        connection.execute(
            update(observation_table)
            .where(
                observation_table.c.indicator_id == corrected["indicator_id"],
                observation_table.c.region_id == corrected["region_id"],
                observation_table.c.year == corrected["year"],
            )
            .values(revision=2)
        )

    upgrade(blank_engine)

    with blank_engine.connect() as connection:
        numbered = connection.execute(
            select(revisions.id, revisions.change_seq).order_by(revisions.change_seq)
        ).all()
        published = (
            connection.execute(
                select(observation_table.c.change_seq).order_by(observation_table.c.change_seq)
            )
            .scalars()
            .all()
        )
        counter = connection.scalar(select(data_version_table.c.change_seq))
    assert [seq for _, seq in numbered] == list(range(1, len(ids) + 2))
    assert [id_ for id_, _ in numbered] == [ids[-1], *ids[:-1], max(ids) + 1]
    # Each observation has its latest revision's number: the corrected one the last.
    assert published[-1] == len(ids) + 1
    assert published[0] == 1  # the revision recorded first (in 2020) is still published
    assert len(set(published)) == len(published) == len(ids)
    assert counter == len(ids) + 1
