"""The comparison, series and indicator statements answer through the reads' fast lane
(app/prepared.py) exactly as through SQLAlchemy Core, on the same SYNTHETIC data with history
(tests/factories.py). The observation lists, the data version and `prepare` itself are in
tests/test_prepared.py.
"""

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine

from app import comparisons, queries
from app.db import build_engine, sqlalchemy_url
from app.filters import COMPARISON_FILTERS, FROM, REGION, Selection
from app.prepared import fetch
from tests.conftest import DatabaseFactory
from tests.factories import inexact_corrections, load_document, world_document


@pytest.fixture(scope="module")
def history(databases: DatabaseFactory) -> Any:
    """The world, then corrections and a deletion, with a moment between the two."""
    engine = _engine(databases)
    load_document(engine, world_document())
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    corrected = world_document(years=range(2022, 2024))
    inexact_corrections(corrected)
    load_document(engine, corrected, name="corrections")
    yield engine, between
    engine.dispose()


def _core(connection: Any, statement: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in connection.execute(statement, values)]


def _engine(databases: DatabaseFactory) -> Engine:
    return build_engine(sqlalchemy_url(databases.fresh("empty")))


@pytest.mark.parametrize(
    "filters",
    [{}, {"category": ["alpha"]}, {"region": ["320400", "320412"]}, {"indicator": ["share"]}],
)
def test_comparisons_are_the_same_rows_through_the_cursor_and_through_core(
    history: Any, filters: dict[str, list[str]]
) -> None:
    engine, between = history
    where = Selection(COMPARISON_FILTERS, {name: tuple(codes) for name, codes in filters.items()})
    for as_of in (None, between):
        shape = comparisons.ComparisonShape(where.shape, as_of=as_of is not None)
        values: dict[str, Any] = {"year": 2023, "base_year": 2022, "as_of": as_of}
        for name, codes in filters.items():
            values.update({f"{name}_{i}": code for i, code in enumerate(codes)})
        statement = comparisons.comparison_statement(shape)
        with engine.connect() as connection:
            assert fetch(connection, statement, values) == _core(connection, statement, values)


def test_series_and_indicators_are_the_same_rows_through_the_cursor_and_through_core(
    history: Any,
) -> None:
    engine, _between = history
    statement = comparisons.series_statement(((REGION, 1), (FROM, 1)))
    values = {"code": "funds", "region_0": "320412", "from": 2020}
    with engine.connect() as connection:
        rows = fetch(connection, statement, values)
        assert rows == _core(connection, statement, values)
        assert [r["year"] for r in rows] == [2020, 2021, 2022, 2023]
        indicators = queries.list_indicators_by_code(connection, codes=["share", "trained"])
    assert [i["code"] for i in indicators] == ["trained", "share"]  # display order, not asked
