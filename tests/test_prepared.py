"""app/prepared.py, the reads' fast lane: the driver's cursor answers exactly what Core answers.

Each observation list statement (app/queries.py, one per `ListShape`) is run three ways on the
same SYNTHETIC data (tests/factories.py): through `prepared.fetch` on the raw DBAPI cursor,
through the straightforward `connection.execute` of SQLAlchemy Core, and through
GET /api/v1/observations. The data has history written through the API (corrections, a new
series, deletions, a re-creation, a unit change) so that `as_of` and `updated_after` read
revisions, and values that no binary float holds exactly (96.6, 0.1, 0.000001). Rows are
compared with their Python types, so 0 is not taken for False nor 203.0 for Decimal(203).
"""

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, bindparam, func, literal, select

from app import queries
from app.db import build_engine, engine_dependency
from app.keys import Scope, create_key
from app.main import create_app
from app.models import data_version_table, observation_table, revision_table
from app.prepared import Prepared, fetch, fetch_one, prepare
from app.schemas import ObservationQuery
from tests.conftest import ClientFactory, DatabaseFactory
from tests.factories import SYNTHETIC_SOURCE, inexact_corrections, load_document, world_document

API = "/api/v1/observations"
# Decimals with no exact binary float; each survives SQLite's REAL (at most 15 digits).
BEIJING = timezone(timedelta(hours=8))


@dataclass
class History:
    engine: Engine
    moments: dict[str, datetime]  # instants between the writes, and one a write happened at


def _tick() -> datetime:
    """An instant strictly between the write before and the write after."""
    time.sleep(0.01)
    now = datetime.now(UTC)
    time.sleep(0.01)
    return now


def _client(engine: Engine) -> TestClient:
    app = create_app()
    app.dependency_overrides[engine_dependency] = lambda: engine
    return TestClient(app, raise_server_exceptions=False)


def _put(client: TestClient, token: str, path: str, value: str, **fields: Any) -> None:
    body = {
        "value": value,
        "source": SYNTHETIC_SOURCE,
        "quote": f"synthetic {path.replace('/', ' ')}",
        **fields,
    }
    response = client.put(f"{API}/{path}", json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 201), response.text


def _delete(client: TestClient, token: str, path: str) -> None:
    response = client.delete(f"{API}/{path}", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 204, response.text


@pytest.fixture(scope="module")
def history(databases: DatabaseFactory) -> Iterator[History]:
    """The world, a bundle of corrections, then two rounds of API writes, with instants between."""
    engine = build_engine(databases.fresh("empty"))
    moments = {"before": _tick()}
    load_document(engine, world_document())
    moments["loaded"] = _tick()
    corrections = world_document(years=range(2022, 2024))
    # A unit that counts the trained another way: a unit change app/sanity.py accepts.
    corrections["units"].append({"code": "person_time", "name_zh": "人次", "name_en": "visits"})
    inexact_corrections(corrections)
    load_document(engine, corrections, name="corrections")
    moments["corrected"] = _tick()

    token = create_key(engine, name="prepared-tests", scopes={Scope.write})
    client = _client(engine)
    _put(client, token, "trained/320400/2021", "100", qualifier="approximate", note="synthetic")
    _put(client, token, "funds/320411/2023", "123456789.123456")  # a new series
    _put(client, token, "share/320400/2023", "96.6", qualifier="at_most")  # a third revision
    _delete(client, token, "funds/320412/2020")
    moments["written"] = _tick()
    _delete(client, token, "funds/320411/2023")  # the new series goes again
    _put(client, token, "funds/320412/2020", "0.000001")  # deleted, then created again
    _put(client, token, "funds/320400/2019", "2.5")
    _put(client, token, "trained/320400/2019", "25", unit="person_time")  # another unit
    moments["end"] = _tick()
    client.close()

    with engine.connect() as connection:
        first_delete = connection.execute(
            select(func.min(revision_table.c.recorded_at)).where(
                revision_table.c.action == "delete"
            )
        ).scalar_one()
    assert moments["written"] > first_delete > moments["corrected"]
    moments["delete"] = first_delete  # a state counts from the instant it was recorded
    moments["delete-1us"] = first_delete - timedelta(microseconds=1)
    moments["delete+08"] = first_delete.astimezone(BEIJING)
    yield History(engine, moments)
    engine.dispose()


# "@name" stands for the ISO text of history.moments[name].
QUERIES: list[dict[str, Any]] = [
    {},
    {"category": ["alpha"]},
    {"category": ["alpha", "beta"]},
    {"category": ["beta", "empty", "alpha"]},
    {"indicator": ["funds"]},
    {"indicator": ["trained", "share"], "region": ["320400"]},
    {"indicator": ["share", "funds", "trained"], "sort": "-value"},
    {"region": ["320411"]},
    {"region": ["320412", "320400"], "year": 2023},
    {"region": ["320400", "320411", "320412"], "qualifier": ["exact"]},
    {"qualifier": ["at_least"]},
    {"qualifier": ["approximate", "at_most"]},
    {"qualifier": ["exact", "at_least", "approximate"], "category": ["alpha"]},
    {"year": 2022},
    {"year": 2031},
    {"from": 2020},
    {"to": 2021},
    {"from": 2020, "to": 2022},
    {"latest": 1},
    {"latest": 2, "region": ["320411"]},
    {"latest": 1, "year": 2022},  # `year` is bound twice: in the filter and in the ranking
    {"latest": 2, "from": 2020, "to": 2022, "indicator": ["funds"]},
    {"sort": "-value"},
    {"sort": "value"},
    {"sort": "year,-indicator"},
    {"sort": "-category,value,-region"},
    {"sort": "-year", "limit": 4},
    {"limit": 3, "offset": 4},
    {"limit": 5, "offset": 20, "sort": "-value"},
    {"limit": 1, "offset": 10000},
    {"as_of": "@before"},
    {"as_of": "@loaded"},
    {"as_of": "@corrected", "category": ["alpha"], "latest": 1},
    {"as_of": "@written", "sort": "-value", "limit": 7, "offset": 2},
    {"as_of": "@delete", "region": ["320412"]},
    {"as_of": "@delete-1us", "region": ["320412"]},
    {"as_of": "@delete+08", "region": ["320412"]},
    {"as_of": "@end", "qualifier": ["approximate", "at_most"]},
    {"updated_after": "@before"},
    {"updated_after": "@loaded"},
    {"updated_after": "@corrected", "sort": "-value"},
    {"updated_after": "@written"},
    {"updated_after": "@delete"},
    {"updated_after": "@delete-1us"},
    {"updated_after": "@delete+08", "year": 2020},
    {"updated_after": "@end"},
    {"updated_after": "@corrected", "indicator": ["funds", "trained"], "limit": 2, "offset": 1},
    {"updated_after": "@loaded", "as_of": "@written", "sort": "year,-indicator"},
    {"updated_after": "@delete-1us", "as_of": "@written"},
    {"updated_after": "@delete", "as_of": "@written"},
    {"since": 0},
    {"since": 20, "limit": 5},
    {"since": 20, "region": ["320412"]},
    {"since": 0, "updated_after": "@corrected"},
    {"since": 10, "as_of": "@written", "sort": "change_seq"},
    {"since": 100000},
    {"sort": "-change_seq", "limit": 4},
]
# The queries whose page is rightly empty; every other one must have rows to compare.
EMPTY = [
    {"year": 2031},
    {"limit": 1, "offset": 10000},
    {"as_of": "@before"},
    {"updated_after": "@end"},
    {"updated_after": "@delete", "as_of": "@written"},
    {"since": 100000},
]


def _params(raw: dict[str, Any], history: History) -> dict[str, Any]:
    """The query's parameters, with "@name" replaced by that moment's ISO text."""
    return {
        key: history.moments[value[1:]].isoformat()
        if isinstance(value, str) and value.startswith("@")
        else value
        for key, value in raw.items()
    }


def _query(raw: dict[str, Any], history: History) -> ObservationQuery:
    return ObservationQuery.model_validate(_params(raw, history))


def _core(connection: Connection, statement: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    """The straightforward way: Core executes the statement, rows become dicts."""
    return [
        {str(k): v for k, v in row._mapping.items()}
        for row in connection.execute(statement, values)
    ]


def _typed(rows: list[dict[str, Any]]) -> list[list[tuple[str, str, str]]]:
    """Each row's columns in order, with type and repr: Decimal('96.6') is not 96.6 here, nor
    False 0, nor a naive datetime an aware one."""
    return [
        [(key, type(value).__name__, repr(value)) for key, value in row.items()] for row in rows
    ]


def _both_ways(
    history: History, raw: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any, Any]:
    query = _query(raw, history)
    page, count = queries.list_statements(queries.ListShape.of(query.filters()))
    values = queries.list_parameters(query.filters())
    with history.engine.connect() as connection:
        fast = fetch(connection, page, values)
        core = _core(connection, page, values)
        fast_total = fetch(connection, count, values)
        core_total = _core(connection, count, values)
    return fast, core, (fast_total, core_total), query


IDS = [json.dumps(raw) for raw in QUERIES]


@pytest.mark.parametrize("raw", QUERIES, ids=IDS)
def test_a_list_page_is_the_same_rows_through_the_cursor_and_through_core(
    history: History, raw: dict[str, Any]
) -> None:
    fast, core, (fast_total, core_total), query = _both_ways(history, raw)

    assert fast == core
    assert _typed(fast) == _typed(core)
    assert _typed(fast_total) == _typed(core_total)
    assert (fast == []) == (raw in EMPTY)
    assert len(fast) <= query.limit
    for row in fast:
        assert type(row["value"]) is Decimal
        assert type(row["deleted"]) is bool
        assert type(row["updated_at"]) is datetime and row["updated_at"].utcoffset() == timedelta()


@pytest.mark.parametrize("raw", QUERIES, ids=IDS)
def test_the_api_answers_the_rows_and_total_of_the_straightforward_query(
    history: History, make_client: ClientFactory, raw: dict[str, Any]
) -> None:
    query = _query(raw, history)
    page, count = queries.list_statements(queries.ListShape.of(query.filters()))
    values = queries.list_parameters(query.filters())
    with history.engine.connect() as connection:
        expected = _core(connection, page, values)
        [total] = _core(connection, count, values)
    for row in expected:
        row["source"] = {"id": row.pop("source_id"), "quote": row.pop("quote")}

    answer = make_client(history.engine).get(API, params=_params(raw, history))

    assert answer.status_code == 200, answer.text
    body = json.loads(answer.content, parse_float=Decimal)  # never through a float
    rows = body["data"]
    for row in rows:
        assert type(row["value"]) in (int, Decimal), row["value"]
        row["value"] = Decimal(row["value"])
        row["updated_at"] = datetime.fromisoformat(row["updated_at"])
    assert rows == expected
    assert [type(row["deleted"]) for row in rows] == [bool] * len(rows)
    assert body["total"] == total["total"]
    assert (body["limit"], body["offset"]) == (query.limit, query.offset)


def test_history_is_there_to_read(history: History) -> None:
    """The comparisons above are not vacuous: vintages differ, and deletions are listed."""

    def rows(raw: dict[str, Any]) -> dict[tuple[str, str, int], dict[str, Any]]:
        fast, core, _totals, _query = _both_ways(history, raw)
        assert fast == core
        return {(r["indicator"], r["region"], r["year"]): r for r in fast}

    loaded = rows({"as_of": "@loaded", "limit": 1000})
    now = rows({"limit": 1000})
    assert loaded[("share", "320400", 2023)]["value"] == Decimal("92.5")
    assert now[("share", "320400", 2023)]["value"] == Decimal("96.6")
    assert now[("share", "320400", 2023)]["revision"] == 3
    assert now[("trained", "320400", 2019)]["unit"] == "person_time"
    assert now[("trained", "320400", 2021)]["note"] == "synthetic"
    assert ("funds", "320411", 2023) not in now
    assert ("funds", "320411", 2023) in rows({"as_of": "@written"})

    key = ("funds", "320412", 2020)
    assert key not in rows({"as_of": "@delete", "region": ["320412"]})
    assert key in rows({"as_of": "@delete-1us", "region": ["320412"]})
    assert rows({"as_of": "@delete+08", "region": ["320412"]}) == rows(
        {"as_of": "@delete", "region": ["320412"]}
    )
    changed = rows({"updated_after": "@corrected", "limit": 1000})
    assert changed[("funds", "320411", 2023)]["deleted"] is True
    assert changed[key]["deleted"] is False
    assert rows({"updated_after": "@corrected", "as_of": "@written"})[key]["deleted"] is True
    assert rows({"updated_after": "@delete"})[key]["deleted"] is False  # created again since
    # As things stood after the first round, the deletion is the last change: it counts from
    # the instant it was recorded, not after.
    assert key not in rows({"updated_after": "@delete", "as_of": "@written"})
    assert rows({"updated_after": "@delete-1us", "as_of": "@written"})[key]["deleted"] is True


def test_decimals_no_float_holds_are_exact_through_the_cursor_core_and_json(
    history: History, make_client: ClientFactory
) -> None:
    query = ObservationQuery.model_validate({"limit": 1000})
    page, _count = queries.list_statements(queries.ListShape.of(query.filters()))
    values = queries.list_parameters(query.filters())
    with history.engine.connect() as connection:
        fast = [repr(row["value"]) for row in fetch(connection, page, values)]
        core = [repr(row["value"]) for row in _core(connection, page, values)]
    published = ("96.6", "0.1", "1234567.891", "0.000001", "2.5")
    assert {repr(Decimal(text)) for text in published} <= set(fast)
    assert fast == core

    client = make_client(history.engine)
    text = client.get(API, params={"limit": 1000}).text
    for value in published:
        assert f'"value":{value},' in text
    assert "96.59999" not in text and "0.1000000" not in text and "e-" not in text.lower()
    deleted = client.get(API, params={"updated_after": history.moments["written"].isoformat()})
    assert '"value":123456789.123456,' in deleted.text  # the last state of a deletion


def test_the_data_version_is_the_same_through_the_cursor_and_through_core(
    history: History, empty_engine: Engine
) -> None:
    statement = select(
        data_version_table.c.version,
        data_version_table.c.changed_at,
        data_version_table.c.change_seq,
    ).where(data_version_table.c.id == 1)
    with history.engine.connect() as connection:
        version, changed_at, change_seq = connection.execute(statement).one()
        assert queries.get_data_version(connection) == (version, changed_at, change_seq)
    with history.engine.connect() as connection:
        assert queries.get_data_version(connection, transaction=False) == (
            version,
            changed_at,
            change_seq,
        )
        assert not connection.in_transaction()
    assert version > 0 and change_seq > 0
    assert changed_at.utcoffset() == timedelta()
    assert history.moments["written"] < changed_at < history.moments["end"]

    with empty_engine.connect() as connection:
        before_any_load = connection.execute(statement).one_or_none()
        expected = tuple(before_any_load) if before_any_load else (0, None, 0)
        assert queries.get_data_version(connection) == expected


# --- prepare: named values only, compiled once ----------------------------------------------

year_is = observation_table.c.year


@pytest.mark.parametrize(
    "unnamed",
    [
        select(observation_table.c.id).where(year_is == 2023),
        select(observation_table.c.id).where(year_is == bindparam("year")).limit(10),
        select(observation_table.c.id).where(observation_table.c.qualifier.in_(["exact"])),
        select(observation_table.c.id, literal(5).label("five")),
    ],
    ids=["equals-literal", "limit-literal", "in-literal-list", "selected-literal"],
)
def test_a_statement_with_an_anonymous_value_is_refused(history: History, unnamed: Any) -> None:
    dialect = history.engine.dialect
    with pytest.raises(ValueError, match="bind every value by name"):
        prepare(unnamed, dialect)
    with pytest.raises(ValueError, match="bind every value by name"):
        prepare(unnamed, dialect)  # a refusal is not remembered as a success
    with history.engine.connect() as connection, pytest.raises(ValueError):
        fetch(connection, unnamed, {})


def test_the_same_statement_with_a_named_value_is_accepted_and_answers_as_core(
    history: History,
) -> None:
    named = (
        select(observation_table.c.id, observation_table.c.value)
        .where(year_is == bindparam("year"))
        .order_by(observation_table.c.id)
    )
    prepared = prepare(named, history.engine.dialect)
    assert isinstance(prepared, Prepared)
    assert prepared.columns == ("id", "value")
    with history.engine.connect() as connection:
        rows = fetch(connection, named, {"year": 2023})
        assert rows == _core(connection, named, {"year": 2023})
        assert _typed(rows) == _typed(_core(connection, named, {"year": 2023}))
        assert fetch(connection, named, {"year": 1990}) == []
        assert fetch_one(connection, named, {"year": 1990}) is None
        assert fetch_one(connection, named, {"year": 2023}) == rows[0]
    assert len(rows) == 5  # the world's five series; trained 320412 2023 was deleted again


def test_a_statement_object_is_compiled_once(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    statement = select(observation_table.c.id).where(year_is >= bindparam("from_year"))
    compiled: list[Any] = []
    compile_ = type(statement).compile

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        compiled.append(self)
        return compile_(self, *args, **kwargs)

    monkeypatch.setattr(type(statement), "compile", counting)
    dialect = history.engine.dialect

    first = prepare(statement, dialect)
    assert prepare(statement, dialect) is first
    with history.engine.connect() as connection:
        for year in (2019, 2022, 2023):
            fetch(connection, statement, {"from_year": year})
    assert prepare(statement, dialect) is first
    assert compiled == [statement]


def test_one_list_statement_per_shape_whatever_the_values(history: History) -> None:
    """The values are bound, so queries of one shape share the statement and its compilation."""
    one = _query({"category": ["alpha"], "year": 2022, "limit": 3}, history)
    other = _query({"category": ["beta"], "year": 2019, "limit": 7}, history)
    wider = _query({"category": ["alpha", "beta"], "year": 2022}, history)

    assert queries.ListShape.of(one.filters()) == queries.ListShape.of(other.filters())
    same = queries.list_statements(queries.ListShape.of(one.filters()))
    assert queries.list_statements(queries.ListShape.of(other.filters())) is same
    assert queries.list_statements(queries.ListShape.of(wider.filters())) is not same
    dialect = history.engine.dialect
    assert prepare(same[0], dialect) is prepare(same[0], dialect)
    assert prepare(same[1], dialect) is prepare(same[1], dialect)
    with history.engine.connect() as connection:
        alpha = fetch(connection, same[0], queries.list_parameters(one.filters()))
        beta = fetch(connection, same[0], queries.list_parameters(other.filters()))
    assert {row["category"] for row in alpha} == {"alpha"} and len(alpha) == 3
    assert [row["category"] for row in beta] == ["beta"]  # the one beta series


def test_an_expanding_parameter_is_refused_up_front(history: History) -> None:
    statement = (
        select(observation_table.c.id)
        .where(observation_table.c.qualifier.in_(bindparam("qualifiers", expanding=True)))
        .order_by(observation_table.c.id)
    )
    # Its SQL keeps a `__[POSTCOMPILE_qualifiers]` placeholder that only Core's execution
    # expands: the cursor would fail on it at the first request.
    with pytest.raises(ValueError, match="expanding"):
        prepare(statement, history.engine.dialect)
