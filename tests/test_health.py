"""Liveness and readiness."""

from sqlalchemy import Engine

from app.db import build_engine
from tests.conftest import ClientFactory, DatabaseFactory


def test_healthz_answers_without_a_database(make_client: ClientFactory, tmp_path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path / 'never-created' / 'x.sqlite3'}")
    response = make_client(engine).get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_at_the_migration_head(
    make_client: ClientFactory, empty_engine: Engine
) -> None:
    response = make_client(empty_engine).get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_readyz_is_503_with_a_reason_before_migrations(
    make_client: ClientFactory, databases: DatabaseFactory
) -> None:
    engine = build_engine(databases.blank())
    response = make_client(engine).get("/readyz")
    engine.dispose()
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert "statsapi migrate" in response.json()["detail"]
