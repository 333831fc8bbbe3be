"""The OpenAPI document is the contract: every operation, parameter and schema is described."""

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app.bundle import SECTIONS, Bundle
from app.main import create_app
from app.schemas import (
    ComparisonQuery,
    FormatQuery,
    IndicatorQuery,
    ObservationQuery,
    SeriesQuery,
    SummaryQuery,
)

APP = create_app()
SPEC = APP.openapi()
OPERATIONS = [
    (method.upper(), path, operation)
    for path, methods in SPEC["paths"].items()
    for method, operation in methods.items()
]


def _documented_routes(routes: list[Any]) -> list[APIRoute]:
    """Every route of the OpenAPI document, through included routers."""
    found = []
    for route in routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            found.append(route)
        elif hasattr(route, "original_router"):
            found += _documented_routes(route.original_router.routes)
    return found


def test_operation_ids_are_unique_snake_case_method_names() -> None:
    ids = [operation["operationId"] for _, _, operation in OPERATIONS]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    for operation_id in ids:
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", operation_id), operation_id
    assert SPEC["paths"]["/api/v1/observations"]["get"]["operationId"] == "list_observations"


def test_each_operation_id_is_its_route_functions_name() -> None:
    names = [route.name for route in _documented_routes(APP.routes) for _ in route.methods]
    assert sorted(operation["operationId"] for _, _, operation in OPERATIONS) == sorted(names)


def _has_example(parameter: dict[str, Any]) -> bool:
    schema = parameter.get("schema", {})
    return any(key in holder for holder in (parameter, schema) for key in ("example", "examples"))


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=lambda x: str(x)[:60])
def test_every_operation_has_a_summary_description_and_documented_errors(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    assert operation.get("summary"), f"{method} {path} has no summary"
    assert operation.get("description"), f"{method} {path} has no description"
    if path.startswith("/api/v1"):
        for status in ("422", "503"):
            assert status in operation["responses"], f"{method} {path} omits {status}"
            assert "application/problem+json" in operation["responses"][status]["content"]


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS, ids=lambda x: str(x)[:60])
def test_every_parameter_has_a_description_and_an_example(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    for parameter in operation.get("parameters", []):
        name = f"{method} {path} {parameter['name']}"
        described = parameter.get("description") or parameter.get("schema", {}).get("description")
        assert described, f"{name} has no description"
        assert _has_example(parameter), f"{name} has no example"


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("/api/v1/observations", ObservationQuery),
        ("/api/v1/comparisons", ComparisonQuery),
        ("/api/v1/comparisons/summary", SummaryQuery),
        ("/api/v1/indicators/{code}/series", SeriesQuery),
        ("/api/v1/indicators", IndicatorQuery),
        ("/api/v1/regions", FormatQuery),
    ],
)
def test_query_models_read_by_app_params_are_documented_parameter_by_parameter(
    path: str, model: type[BaseModel]
) -> None:
    documented = {
        p["name"]: p for p in SPEC["paths"][path]["get"]["parameters"] if p["in"] == "query"
    }

    expected = {field.alias or name for name, field in model.model_fields.items()}
    assert set(documented) == expected
    for name, field in model.model_fields.items():
        assert documented[field.alias or name]["description"] == field.description


@pytest.mark.parametrize("name", sorted(SPEC["components"]["schemas"]))
def test_every_schema_has_a_description(name: str) -> None:
    assert SPEC["components"]["schemas"][name].get("description"), name


def test_writes_declare_the_bearer_scheme_and_reads_do_not() -> None:
    schemes = SPEC["components"]["securitySchemes"]
    assert [s["scheme"] for s in schemes.values()] == ["bearer"]
    for method, path, operation in OPERATIONS:
        if method in ("PUT", "DELETE", "POST"):
            assert operation.get("security"), f"{method} {path} does not declare its key"
        else:
            assert not operation.get("security"), f"{method} {path} should be public"


def test_the_import_documents_the_bundle_models_field_by_field() -> None:
    content = SPEC["paths"]["/api/v1/imports"]["post"]["requestBody"]["content"]
    schemas = SPEC["components"]["schemas"]
    for media_type in ("application/json", "application/yaml"):
        assert content[media_type]["schema"] == {"$ref": "#/components/schemas/Bundle"}
    assert set(schemas["Bundle"]["properties"]) == {*Bundle.model_fields, "defaults"}
    for section, model in SECTIONS.items():
        item = schemas["Bundle"]["properties"][section]["items"]["$ref"].rsplit("/", 1)[1]
        assert set(schemas[item]["properties"]) == set(model.model_fields), section
    # An observation may leave to `defaults` what it gives.
    assert set(schemas["ObservationRecord"]["required"]) == {"indicator", "value", "quote"}


def test_the_bundle_schema_accepts_null_defaults_as_the_server_does(api, token) -> None:  # type: ignore[no-untyped-def]
    # schemathesis found the server accepting `defaults: null` that the schema refused.
    defaults = SPEC["components"]["schemas"]["Bundle"]["properties"]["defaults"]
    assert {"type": "null"} in defaults["anyOf"]
    answer = api.post(
        "/api/v1/imports?dry_run=true",
        json={"defaults": None, "observations": []},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    for wrong in (False, 0, "", []):  # anything else that is not a mapping names `defaults`
        answer = api.post(
            "/api/v1/imports?dry_run=true",
            json={"defaults": wrong, "observations": []},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 422, (wrong, answer.text)
        assert answer.json()["errors"][0]["record"] == "defaults", answer.text


def test_observation_value_is_documented_as_a_number() -> None:
    value = SPEC["components"]["schemas"]["Observation"]["properties"]["value"]
    assert value["type"] == "number"


VOLATILE = {"updated_at", "recorded_at"}
EXAMPLE_SOURCES = {
    "Category": ("/api/v1/categories", "code", "employment_entrepreneurship"),
    "CategoryDetail": ("/api/v1/categories/leadership_recognition", None, None),
    "Indicator": ("/api/v1/indicators", "code", "adaptive_training_trainees"),
    "IndicatorDetail": ("/api/v1/indicators/adaptive_training_trainees", None, None),
    "Region": ("/api/v1/regions", "code", "320411"),
    "RegionDetail": ("/api/v1/regions/320411", None, None),
    "YearSummary": ("/api/v1/years", "year", 2023),
    "Source": ("/api/v1/sources", "id", "cz-tyjrswj-2023-review"),
    "Observation": (
        "/api/v1/observations/transferred_officers_public_placement_rate/320400/2023",
        None,
        None,
    ),
    "Comparison": ("/api/v1/comparisons?year=2023", "indicator", "adaptive_training_trainees"),
    "CategoryTile": (
        "/api/v1/comparisons/summary?year=2023",
        "category",
        "employment_entrepreneurship",
    ),
    "Revision": (
        "/api/v1/observations/adaptive_training_trainees/320400/2023/revisions",
        "revision",
        1,
    ),
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_SOURCES))
def test_schema_examples_are_the_apis_own_answers_on_the_seed(client, name: str) -> None:  # type: ignore[no-untyped-def]
    [example] = SPEC["components"]["schemas"][name]["examples"]
    path, key, value = EXAMPLE_SOURCES[name]
    body = client.get(path).json()
    actual = body if key is None else next(x for x in body["data"] if x[key] == value)
    assert _comparable(actual) == _comparable(example)


def _comparable(value: Any) -> Any:
    """FastAPI drops nulls from the OpenAPI document (examples included); timestamps vary."""
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if v is not None and k not in VOLATILE}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def test_a_second_app_in_the_same_process_lists_each_parameter_once() -> None:
    create_app()  # route objects are module globals: a second app must not add them again
    spec = create_app().openapi()
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            names = [(p["name"], p["in"]) for p in operation.get("parameters", [])]
            assert len(names) == len(set(names)), f"{method.upper()} {path}: {names}"
