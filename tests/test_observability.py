"""Request ids, JSON access logs (never a token), and Prometheus metrics per route template."""

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import ClientFactory


def _log_lines(text: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_sane_request_id_is_echoed_and_logged(
    make_client: ClientFactory, shared_seeded_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_client(shared_seeded_engine)
    response = client.get("/api/v1/years", headers={"X-Request-ID": "dash-42"})
    assert response.headers["x-request-id"] == "dash-42"
    [line] = [x for x in _log_lines(capsys.readouterr().err) if x["path"] == "/api/v1/years"]
    assert (line["request_id"], line["status"], line["route"]) == ("dash-42", 200, "/api/v1/years")
    assert line["duration_ms"] >= 0


@pytest.mark.parametrize("bad", ["has space", "x" * 200, "semi;colon"])
def test_an_unsafe_request_id_is_replaced(world: TestClient, bad: str) -> None:
    response = world.get("/healthz", headers={"X-Request-ID": bad})
    assert response.headers["x-request-id"] != bad
    assert len(response.headers["x-request-id"]) == 32


def test_no_token_ever_reaches_the_log(
    make_client: ClientFactory, shared_seeded_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_client(shared_seeded_engine)
    secret = "Tok3n-that-must-never-be-logged"
    client.put(
        "/api/v1/observations/x/320400/2023?token=" + secret,
        json={"value": 1},
        headers={"Authorization": f"Bearer {secret}"},
    )
    client.get("/api/v1/years", headers={"Authorization": f"Bearer {secret}"})
    output = capsys.readouterr()
    assert secret not in output.err + output.out


def test_metrics_count_requests_per_route_template(world: TestClient) -> None:
    world.get("/api/v1/categories/nope-1")
    world.get("/api/v1/categories/nope-2")
    text = world.get("/metrics").text
    assert 'route="/api/v1/categories/{code}",status="404"' in text
    assert "nope-1" not in text
    assert "statsapi_request_duration_seconds_bucket" in text


def test_a_304_answered_before_routing_is_counted_under_its_route(world: TestClient) -> None:
    url = "/api/v1/observations?region=320400"
    etag = world.get(url).headers["etag"]
    assert world.get(url, headers={"If-None-Match": etag}).status_code == 304
    text = world.get("/metrics").text
    assert 'method="GET",route="/api/v1/observations",status="304"' in text
    assert 'route="unmatched",status="304"' not in text
