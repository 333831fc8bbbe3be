"""The OpenAPI document is the contract: every operation, parameter and schema is described."""

from typing import Any

import pytest

from app.main import create_app

SPEC = create_app().openapi()
OPERATIONS = [
    (method.upper(), path, operation)
    for path, methods in SPEC["paths"].items()
    for method, operation in methods.items()
]


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


def test_observation_value_is_documented_as_a_number() -> None:
    value = SPEC["components"]["schemas"]["Observation"]["properties"]["value"]
    assert value["type"] == "number"
