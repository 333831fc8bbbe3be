"""Alembic environment: the models' metadata, and the URL from the app's settings.

`app.migrate` passes an open connection in `config.attributes["connection"]`; the `alembic`
command line builds one from DATABASE_URL.
"""

from alembic import context
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers the tables on the metadata)
from app.db import get_engine

target_metadata = SQLModel.metadata


def run_migrations(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    with get_engine().connect() as connection:
        run_migrations(connection)
        connection.commit()
