"""Settings: every one is documented, and SQLite runs as the README promises."""

import pytest
from sqlalchemy import Engine, text

from app.config import PROJECT_ROOT, Settings

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_in_the_readme(name: str) -> None:
    variable = "DATABASE_URL" if name == "database_url" else f"STATSAPI_{name.upper()}"
    assert f"`{variable}`" in README


def test_sqlite_connections_use_wal_a_busy_timeout_and_foreign_keys(empty_engine: Engine) -> None:
    if empty_engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas: this run is on PostgreSQL")
    with empty_engine.connect() as connection:
        pragmas = {
            name: connection.execute(text(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "busy_timeout", "foreign_keys")
        }
    assert pragmas == {"journal_mode": "wal", "busy_timeout": 5000, "foreign_keys": 1}


def test_postgresql_connections_have_a_statement_timeout(empty_engine: Engine) -> None:
    if empty_engine.dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL: set STATSAPI_TEST_DATABASE_URL (.ci/run does)")
    with empty_engine.connect() as connection:
        assert connection.execute(text("SHOW statement_timeout")).scalar() == "5s"
