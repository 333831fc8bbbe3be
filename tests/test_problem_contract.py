"""The error contract as /openapi.json publishes it: every problem the server sends validates
against the `Problem` schema (with no member the schema leaves out), and each operation lists
only the statuses it can answer."""

import copy
import json
from typing import Any

import jsonschema_rs  # schemathesis' validator: installed with the dev dependencies
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine

from app.config import get_settings
from app.errors import PROBLEM_MEDIA_TYPE
from tests.conftest import ClientFactory, bearer

VALUE = "/api/v1/observations/trained/320400/2030"
BODY = {"value": 1, "source": "synthetic-test-source", "quote": "synthetic"}
CSV = (
    "indicator,region,year,value,qualifier,note,source,quote\r\n"
    "fundz,320400,2030,1,exact,,synthetic-test-source,synthetic\r\n"
    "funds,320400,2030,x,exact,,synthetic-test-source,synthetic\r\n"
)


def _strict_problem_validator(document: dict[str, Any]) -> Any:
    """A validator of `Problem` that refuses any member the schema does not declare: RFC 9457
    lets clients ignore unknown members, but a member we send and do not document is a gap."""
    schemas = copy.deepcopy(document["components"]["schemas"])
    for name in ("Problem", "FieldError"):
        schemas[name]["additionalProperties"] = False
    root = {"$ref": "#/components/schemas/Problem", "components": {"schemas": schemas}}
    return jsonschema_rs.validator_for(root)


@pytest.fixture
def validator(api: TestClient) -> Any:
    return _strict_problem_validator(api.get("/openapi.json").json())


def _provoke(api: TestClient, tokens: dict[str, str]) -> dict[str, Any]:
    """One response of each kind of error, by name."""
    write = bearer(tokens["write"])
    admin = bearer(tokens["admin"], **{"Content-Type": "application/json"})
    csv = {**write, "Content-Type": "text/csv"}
    return {
        "404 unknown code": api.get("/api/v1/indicators/nope"),
        "404 unknown route": api.get("/api/v1/nowhere"),
        "405": api.post("/api/v1/indicators"),
        "401": api.put(VALUE, json=BODY),
        "403": api.post(
            "/api/v1/extractions", content="text", headers={**write, "Content-Type": "text/plain"}
        ),
        "412": api.put(VALUE, json=BODY, headers={**write, "If-Match": '"r99"'}),
        "413": api.post("/api/v1/imports", content=b"x" * (11 * 1024 * 1024), headers=csv),
        "415": api.post("/api/v1/imports", content="x", headers={**write, "Content-Type": "a/b"}),
        "422 unknown region": api.get("/api/v1/observations", params={"region": "320499"}),
        "422 enum parameter": api.get("/api/v1/observations", params={"qualifier": "maybe"}),
        "422 body field": api.put(VALUE, json={**BODY, "value": "lots"}, headers=write),
        "422 body not JSON": api.put(
            VALUE, content="{", headers={**write, "Content-Type": "application/json"}
        ),
        "422 body not UTF-8": api.put(
            VALUE, content=b"\xc7\xa6\tK\xff", headers={**write, "Content-Type": "application/json"}
        ),
        "422 import rows": api.post("/api/v1/imports", content=CSV, headers=csv),
        "422 import bundle": api.post(
            "/api/v1/imports", content=json.dumps({"units": [{}]}), headers=admin
        ),
    }


def test_every_problem_the_server_sends_validates_against_the_published_schema(
    api: TestClient, tokens: dict[str, str], validator: Any
) -> None:
    answers = _provoke(api, tokens)
    for name, response in answers.items():
        status = int(name.split()[0])
        assert response.status_code == status, (name, response.text[:300])
        assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE, name
        body = response.json()
        faults = [error.message for error in validator.iter_errors(body)]
        assert not faults, (name, faults, body)
    # The members the issue found missing, each sent by one of the answers above.
    sent = json.dumps([response.json() for response in answers.values()])
    for member in ("allowed", "names", "unknown", "close_matches", "record", "error_count"):
        assert f'"{member}"' in sent, member
    assert "current_etag" not in answers["412"].json()  # no value yet: the member is left out


def test_a_412_with_a_current_value_names_its_etag_as_the_schema_says(
    api: TestClient, tokens: dict[str, str], validator: Any
) -> None:
    assert api.put(VALUE, json=BODY, headers=bearer(tokens["write"])).status_code == 201
    response = api.put(VALUE, json=BODY, headers=bearer(tokens["write"], **{"If-Match": '"r9"'}))
    assert response.status_code == 412
    assert response.json()["current_etag"] == '"r1"'
    assert validator.is_valid(response.json())


def test_429_and_503_validate_too(
    make_client: ClientFactory,
    engine: Engine,
    validator: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    monkeypatch.setattr(get_settings(), "read_rate_limit", "1/minute")
    limited = make_client(engine)
    statuses = [limited.get("/api/v1/years") for _ in range(2)]
    assert [r.status_code for r in statuses] == [200, 429]
    assert validator.is_valid(statuses[1].json())
    monkeypatch.setattr(get_settings(), "read_rate_limit", None)
    # A database that cannot be opened (a folder that does not exist): the documented 503.
    unreachable = create_engine(f"sqlite:///{tmp_path}/missing/statsapi.sqlite3")
    response = make_client(unreachable).get("/api/v1/years")
    assert response.status_code == 503
    assert validator.is_valid(response.json())


def test_the_examples_say_what_the_server_says(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    problem = document["components"]["schemas"]["Problem"]
    answer = api.get("/api/v1/observations", params={"region": "320499"}).json()
    assert problem["properties"]["title"]["examples"] == [answer["title"]]


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


def test_each_operation_documents_only_what_it_can_answer(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    writes = 0
    for method, path, operation in _operations(document):
        statuses = set(operation["responses"])
        where = f"{method.upper()} {path}"
        if not path.startswith("/api/"):
            continue
        assert "400" not in statuses, f"{where}: a body that is not JSON is a 422"
        if method != "get":
            writes += 1
            assert "304" not in statuses, f"{where}: only a conditional GET answers 304"
            assert {"401", "403", "422"} <= statuses, where
        else:
            assert "304" in statuses, where
            assert not statuses & {"401", "403", "408", "413", "415", "412"}, where
        for status, response in operation["responses"].items():
            content = response.get("content", {})
            if status.startswith(("4", "5")):
                schema = content[PROBLEM_MEDIA_TYPE]["schema"]
                assert schema == {"$ref": "#/components/schemas/Problem"}, (where, status)
                assert "application/json" not in content, (where, status)
    assert writes == 4
    imports = document["paths"]["/api/v1/imports"]["post"]["responses"]
    assert "404" not in imports  # an import names no resource by its path
