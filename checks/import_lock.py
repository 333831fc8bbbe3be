"""How long a large import holds the write lock: `python -m checks.import_lock [--rows N]
[--database-url URL]`.

Builds a fresh, seeded database (a SQLite file under a temporary folder, or the given
PostgreSQL database, which must be empty: it is migrated and seeded), then imports N SYNTHETIC
observations twice, all created, then all changed, and prints how long each import's write
transaction lasted (from BEGIN to COMMIT: the time the lock is held) and how many statements
it ran. The rows are SYNTHETIC (tests/test_hostile_imports.py makes them): the seed's
indicators x its regions x made-up years.
"""

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import event

from app.bundle import parse_csv
from app.config import PROJECT_ROOT
from app.db import build_engine, sqlalchemy_url, write_transaction
from app.importer import apply_bundle
from app.migrate import upgrade
from app.seeding import seed_directory
from tests.test_hostile_imports import synthetic_csv


def timed_import(engine, text: str) -> tuple[float, int, str]:  # type: ignore[no-untyped-def]
    loaded = parse_csv(text, name="synthetic.csv")
    statements = 0

    def count(*_: object) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine, "before_cursor_execute", count)
    try:
        started = time.perf_counter()
        with write_transaction(engine) as connection:
            report = apply_bundle(connection, loaded, recorded_by="SYNTHETIC")
        held = time.perf_counter() - started
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return held, statements, str(report.summary()["observations"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'lock.sqlite3'}"
        engine = build_engine(sqlalchemy_url(url))
        upgrade(engine)
        seed_directory(engine, PROJECT_ROOT / "seed")
        for label, offset in (("create", 0), ("change", 1)):
            held, statements, summary = timed_import(
                engine, synthetic_csv(args.rows, value_offset=offset)
            )
            print(
                f"{engine.dialect.name} {args.rows} rows, {label}: lock held {held:.2f} s, "
                f"{statements} statements, {summary}"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
