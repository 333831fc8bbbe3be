"""The query plans of the benchmark's read statements, on the synthetic database.

    python bench/explain.py [DATABASE_URL]   (default: bench/.data/synthetic.sqlite3)

Prints, for each statement a target runs, the plan (SQLite `EXPLAIN QUERY PLAN`, PostgreSQL
`EXPLAIN`) with the synthetic codes bound, and the statement's time alone (median of 50 runs):
the evidence for the indexes, quoted in docs/benchmarks.md.
"""

import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Select  # noqa: E402

from app import comparisons, queries  # noqa: E402
from app.db import build_engine, sqlalchemy_url  # noqa: E402
from app.filters import CATEGORY, REGION  # noqa: E402
from app.prepared import prepare  # noqa: E402
from app.schemas import ObservationQuery  # noqa: E402
from bench.targets import CODES  # noqa: E402


def statements() -> list[tuple[str, Select[Any], dict[str, Any]]]:
    codes = CODES["synthetic"]
    found = []
    filtered = ObservationQuery.model_validate(
        {"indicator": [codes.indicator], "region": [codes.region], "from": 2014, "to": codes.year}
    )
    page = ObservationQuery.model_validate(
        {"category": [codes.category], "year": codes.year, "limit": 100}
    )
    # The vintage read (hostile-input issue, item 4): one probe of ix_observation_revision_as_of
    # per revision read, never a ranking of the whole history.
    as_of = ObservationQuery.model_validate({"as_of": "2030-01-01T00:00:00Z", "limit": 1})
    for name, query in (("filtered", filtered), ("page", page), ("as_of", as_of)):
        rows, count = queries.list_statements(queries.ListShape.of(query.filters()))
        found.append((f"{name}: rows", rows, queries.list_parameters(query.filters())))
        found.append((f"{name}: count", count, queries.list_parameters(query.filters())))
    shape = comparisons.ComparisonShape(((CATEGORY, 1),))
    values = {"year": codes.year, "base_year": codes.year - 1, "category_0": codes.category}
    found.append(("comparisons", comparisons.comparison_statement(shape), values))
    series = comparisons.series_statement(((REGION, 1),))
    found.append(("series", series, {"code": codes.indicator, "region_0": codes.region}))
    found.append(("data version (every request)", queries._DATA_VERSION, {}))
    return found


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{ROOT}/bench/.data/synthetic.sqlite3"
    engine = build_engine(sqlalchemy_url(url))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        for name, statement, values in statements():
            prepared = prepare(statement, engine.dialect)
            parameters = prepared.parameters(values)
            cursor = raw.cursor()  # type: ignore[union-attr]
            explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
            cursor.execute(explain + prepared.sql, parameters)
            plan = [row[3] if sqlite else row[0] for row in cursor.fetchall()]
            times = []
            for _ in range(50):
                started = time.perf_counter()
                cursor.execute(prepared.sql, parameters)
                rows = cursor.fetchall()
                times.append(time.perf_counter() - started)
            print(f"== {name}: {len(rows)} rows, {statistics.median(times) * 1e3:.3f} ms")
            for line in plan:
                print(f"   {line}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
