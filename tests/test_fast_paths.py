"""The fast lane of the reads (app/prepared.py) answers exactly as SQLAlchemy Core does.

Each prepared statement is run both ways, on the driver's cursor and through Core's
`connection.execute`, on the same SYNTHETIC data (tests/factories.py), with revisions and a
deletion so that `as_of` and `updated_after` have history to read; and the API's answer is the
same rows. Values include decimals that no binary float holds exactly (96.6, 0.1).
"""

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, select

from app import comparisons, queries
from app.auth import Scope, create_key
from app.db import build_engine, sqlalchemy_url
from app.models import observation_table
from app.prepared import fetch, prepare
from app.schemas import ObservationQuery
from tests.conftest import ClientFactory, DatabaseFactory
from tests.factories import load_document, world_document

API = "/api/v1/observations"


@pytest.fixture(scope="module")
def history(databases: DatabaseFactory) -> Any:
    """The world, then corrections and a deletion, with a moment between the two."""
    engine = _engine(databases)
    load_document(engine, world_document())
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    corrected = world_document(years=range(2022, 2024))
    for number, observation in enumerate(corrected["observations"]):
        observation["value"] = ["96.6", "0.1", "1234567.891"][number % 3]
    load_document(engine, corrected, name="corrections")
    yield engine, between
    engine.dispose()


def _engine(databases: DatabaseFactory) -> Engine:
    return build_engine(sqlalchemy_url(databases.fresh("empty")))


QUERIES: list[dict[str, Any]] = [
    {},
    {"category": ["alpha"]},
    {"indicator": ["trained", "share"], "region": ["320400"]},
    {"region": ["320411", "320412", "320400"]},
    {"year": 2022},
    {"from": 2020, "to": 2022},
    {"qualifier": ["at_least"]},
    {"qualifier": ["exact", "at_least"], "category": ["beta"]},
    {"sort": "-value"},
    {"sort": "year,-indicator"},
    {"sort": "-category,value", "limit": 2, "offset": 1},
    {"latest": 2},
    {"latest": 1, "region": ["320411"]},
    {"limit": 3, "offset": 4},
    {"as_of": "BETWEEN"},
    {"as_of": "BETWEEN", "category": ["alpha"], "latest": 1},
    {"updated_after": "BETWEEN"},
    {"updated_after": "BETWEEN", "sort": "-value", "limit": 2},
]


def _query(raw: dict[str, Any], between: datetime) -> ObservationQuery:
    given = {k: between.isoformat() if v == "BETWEEN" else v for k, v in raw.items()}
    return ObservationQuery.model_validate(given)


def _core(connection: Any, statement: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in connection.execute(statement, values)]


@pytest.mark.parametrize("raw", QUERIES, ids=lambda raw: json.dumps(raw))
def test_observation_lists_are_the_same_rows_through_the_cursor_and_through_core(
    history: Any, raw: dict[str, Any]
) -> None:
    engine, between = history
    query = _query(raw, between)
    page, count = queries.list_statements(queries.ListShape.of(query))
    values = queries.list_parameters(query)

    with engine.connect() as connection:
        fast = fetch(connection, page, values)
        core = _core(connection, page, values)
        fast_total = fetch(connection, count, values)
        core_total = _core(connection, count, values)

    assert fast == core
    assert fast_total == core_total
    assert all(isinstance(row["value"], Decimal) for row in fast)
    assert all(row["updated_at"].tzinfo is not None for row in fast)


@pytest.mark.parametrize("raw", QUERIES, ids=lambda raw: json.dumps(raw))
def test_the_api_answers_the_rows_of_the_straightforward_query(
    history: Any, make_client: ClientFactory, raw: dict[str, Any]
) -> None:
    engine, between = history
    query = _query(raw, between)
    page, _count = queries.list_statements(queries.ListShape.of(query))
    with engine.connect() as connection:
        expected = _core(connection, page, queries.list_parameters(query))
    params = {k: between.isoformat() if v == "BETWEEN" else v for k, v in raw.items()}

    answer = make_client(engine).get(API, params=params)

    assert answer.status_code == 200, answer.text
    rows = json.loads(answer.content, parse_float=Decimal)["data"]
    key = ("indicator", "region", "year", "value", "qualifier", "revision", "deleted")
    assert [tuple(r[k] for k in key) for r in rows] == [tuple(r[k] for k in key) for r in expected]


def test_decimals_no_float_holds_come_back_exact_both_ways(history: Any) -> None:
    engine, _between = history
    query = ObservationQuery.model_validate({"from": 2022})
    page, _count = queries.list_statements(queries.ListShape.of(query))
    with engine.connect() as connection:
        fast = {row["value"] for row in fetch(connection, page, queries.list_parameters(query))}
    assert fast == {Decimal("96.6"), Decimal("0.1"), Decimal("1234567.891")}


def test_the_api_marks_a_deletion_after_a_moment_as_deleted(
    history: Any, make_client: ClientFactory
) -> None:
    engine, _between = history
    token = create_key(engine, name="fast-paths", scopes={Scope.write})
    client = make_client(engine)
    moment = datetime.now(UTC)
    time.sleep(0.01)

    deleted = client.delete(
        f"{API}/trained/320411/2019", headers={"Authorization": f"Bearer {token}"}
    )
    changes = client.get(API, params={"updated_after": moment.isoformat()}).json()["data"]

    assert deleted.status_code == 204
    assert [(r["indicator"], r["region"], r["year"], r["deleted"]) for r in changes] == [
        ("trained", "320411", 2019, True)
    ]


@pytest.mark.parametrize(
    "filters",
    [{}, {"category": ["alpha"]}, {"region": ["320400", "320412"]}, {"indicator": ["share"]}],
)
def test_comparisons_are_the_same_rows_through_the_cursor_and_through_core(
    history: Any, filters: dict[str, list[str]]
) -> None:
    engine, between = history
    counts = [len(filters.get(name, [])) for name in ("category", "indicator", "region")]
    for as_of in (None, between):
        shape = comparisons.ComparisonShape(*counts, as_of=as_of is not None)
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
    statement = comparisons.series_statement(1, True, False)
    values = {"code": "funds", "region_0": "320412", "from_year": 2020}
    with engine.connect() as connection:
        rows = fetch(connection, statement, values)
        assert rows == _core(connection, statement, values)
        assert [r["year"] for r in rows] == [2020, 2021, 2022, 2023]
        indicators = queries.list_indicators_by_code(connection, codes=["share", "trained"])
    assert [i["code"] for i in indicators] == ["trained", "share"]  # display order, not asked


def test_a_statement_with_an_unnamed_value_is_refused_and_a_named_one_compiled_once(
    history: Any,
) -> None:
    engine, _between = history
    unnamed = select(observation_table.c.id).where(observation_table.c.year == 2023)
    named = select(observation_table.c.id).where(observation_table.c.year == bindparam("year"))

    with pytest.raises(ValueError, match="bind every value by name"):
        prepare(unnamed, engine.dialect)
    assert prepare(named, engine.dialect) is prepare(named, engine.dialect)
    with engine.connect() as connection:
        assert len(fetch(connection, named, {"year": 2023})) == 5
