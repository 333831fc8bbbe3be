"""Each read filter is declared once (app/filters.py); these tests iterate over the declarations,
so a filter added there is tested here without a line more.

For every route whose query model carries declared filters: each filter is a documented query
parameter, is repeatable exactly when it takes a list, refuses an unknown code naming itself
(when its codes come from a table), and on /observations narrows the answer as its kind says.
"""

from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app.filters import FILTER_SETS, LIST_KINDS, REPEATABLE, Filter, Kind
from app.main import API_PREFIX, app
from app.params import _api_routes

OBSERVATIONS = "/api/v1/observations"
# A valid request to each route, to which one filter at a time is added.
BASE_QUERIES = {
    "/api/v1/comparisons": {"year": "2023"},
    "/api/v1/comparisons/summary": {"year": "2023"},
}
PATH_VALUES = {"{code}": "trained"}  # the world's indicator (tests/factories.py)


def _declared_routes() -> list[tuple[APIRoute, tuple[Filter, ...]]]:
    found = []
    for route in _api_routes(app.routes):
        for dependency in route.dependant.dependencies:
            model = getattr(dependency.call, "query_model", None)
            if model is not None and model.declared_filters:
                found.append((route, model.declared_filters))
    return found


DECLARED = [
    (API_PREFIX + route.path, declared)
    for route, filters in _declared_routes()
    for declared in filters
]
IDS = [f"{path} {declared.name}" for path, declared in DECLARED]


def _url(path: str) -> str:
    for placeholder, value in PATH_VALUES.items():
        path = path.replace(placeholder, value)
    return path


def test_every_filter_set_is_read_by_a_route() -> None:
    used = {filters for _route, filters in _declared_routes()}
    assert used == set(FILTER_SETS)
    assert {path for path, _ in DECLARED} >= {OBSERVATIONS, "/api/v1/comparisons"}


@pytest.mark.parametrize(("path", "declared"), DECLARED, ids=IDS)
def test_a_declared_filter_is_a_documented_query_parameter(path: str, declared: Filter) -> None:
    operation = app.openapi()["paths"][path]["get"]
    parameter = {p["name"]: p for p in operation["parameters"]}[declared.name]
    assert parameter["in"] == "query"
    assert parameter["description"] == declared.description
    assert parameter.get("examples") or parameter["schema"].get("examples")
    is_list = parameter["schema"].get("type") == "array"
    assert is_list == (declared.kind in LIST_KINDS)


@pytest.mark.parametrize(("path", "declared"), DECLARED, ids=IDS)
def test_a_declared_filter_is_repeatable_exactly_when_it_takes_a_list(
    world: TestClient, path: str, declared: Filter
) -> None:
    value = _known_value(world, declared)
    params: list[tuple[str, str]] = [*BASE_QUERIES.get(path, {}).items()]
    params += [(declared.name, value), (declared.name, value)]

    response = world.get(_url(path), params=params)

    assert (declared.name in REPEATABLE) == declared.repeatable
    if declared.repeatable:
        assert response.status_code == 200, response.text[:300]
    else:
        assert response.status_code == 422
        [error] = response.json()["errors"]
        assert (error["field"], error["message"]) == (declared.name, "given more than once")


CHECKED = [(path, declared) for path, declared in DECLARED if declared.checked_by is not None]


@pytest.mark.parametrize(("path", "declared"), CHECKED, ids=[f"{p} {d.name}" for p, d in CHECKED])
def test_a_code_filter_refuses_an_unknown_code_naming_itself(
    world: TestClient, path: str, declared: Filter
) -> None:
    assert declared.kind is Kind.codes
    params = {**BASE_QUERIES.get(path, {}), declared.name: "no_such_code"}

    response = world.get(_url(path), params=params)

    assert response.status_code == 422, response.text[:300]
    [error] = response.json()["errors"]
    assert (error["field"], error["in"]) == (declared.name, "query")
    what = "code or name" if declared.named_by else "code"
    assert error["message"].startswith(f"unknown {what} 'no_such_code'")


NAMED = [(path, declared) for path, declared in DECLARED if declared.named_by]


@pytest.mark.parametrize(("path", "declared"), NAMED, ids=[f"{p} {d.name}" for p, d in NAMED])
def test_a_named_filter_reads_each_name_as_its_code(
    world: TestClient, path: str, declared: Filter
) -> None:
    """`region=新北区` and `region=XINBEI DISTRICT` answer what `region=320411` answers (the
    body's own links aside), and a name given beside its code counts once."""
    assert declared.checked_by is not None
    code, *names = {"region": ("320411", "新北区", "Xinbei District")}[declared.name]
    base = BASE_QUERIES.get(path, {})

    def answer(value: str) -> Any:
        response = world.get(_url(path), params={**base, declared.name: value})
        assert response.status_code == 200, response.text[:300]
        body = response.json()
        return body.get("data", body.get("series", body)) if isinstance(body, dict) else body

    expected = answer(code)
    assert expected
    for name in [*names, names[-1].upper(), names[-1].lower(), f"{code},{names[0]}"]:
        assert answer(name) == expected, name


@pytest.mark.parametrize(("path", "declared"), NAMED, ids=[f"{p} {d.name}" for p, d in NAMED])
def test_an_unknown_name_lists_the_names_beside_the_codes(
    world: TestClient, path: str, declared: Filter
) -> None:
    params = {**BASE_QUERIES.get(path, {}), declared.name: "武进"}
    response = world.get(_url(path), params=params)
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["unknown"] == ["武进"]
    assert error["names"]["320412"] == ["武进区", "Wujin District"]
    assert "320412 (武进区, Wujin District)" in error["message"]


OBSERVATION_FILTERS = [declared for path, declared in DECLARED if path == OBSERVATIONS]


def _field(declared: Filter) -> str:
    """The field of an observation that the filter's column shows."""
    table, column = declared.column.split(".")
    return column if table == "states" else table


def _known_value(world: TestClient, declared: Filter) -> str:
    """A value of the filter that the world's data holds."""
    if declared.kind in (Kind.year, Kind.year_from, Kind.year_to):
        return "2021"
    if declared.kind is Kind.choices:
        return "at_least"
    first = world.get(OBSERVATIONS, params={"limit": 1}).json()["data"][0]
    return str(first[_field(declared)])


MATCHES: dict[Kind, Any] = {
    Kind.codes: lambda found, given: found == given,
    Kind.choices: lambda found, given: found == given,
    Kind.year: lambda found, given: found == int(given),
    Kind.year_from: lambda found, given: found >= int(given),
    Kind.year_to: lambda found, given: found <= int(given),
}


@pytest.mark.parametrize("declared", OBSERVATION_FILTERS, ids=[d.name for d in OBSERVATION_FILTERS])
def test_an_observation_filter_keeps_only_the_rows_it_matches(
    world: TestClient, declared: Filter
) -> None:
    given = _known_value(world, declared)
    everything = world.get(OBSERVATIONS, params={"limit": 1000}).json()["data"]

    response = world.get(OBSERVATIONS, params={declared.name: given, "limit": 1000})

    assert response.status_code == 200, response.text[:300]
    rows = response.json()["data"]
    matches = MATCHES[declared.kind]
    assert rows == [row for row in everything if matches(row[_field(declared)], given)]
    assert rows


def test_names_resolve_before_the_statement_shape(world: TestClient) -> None:
    """A name reaches the statement cache as its code: names add no shapes (app/prepared.py)."""
    from app.queries import list_statements

    world.get(OBSERVATIONS, params={"region": "320411"})
    before = list_statements.cache_info()
    for value in ("新北区", "Xinbei District", "xinbei district", "320411,新北区,XINBEI DISTRICT"):
        assert world.get(OBSERVATIONS, params={"region": value}).status_code == 200
    after = list_statements.cache_info()
    assert (after.misses, after.currsize) == (before.misses, before.currsize)
    assert after.hits == before.hits + 4
