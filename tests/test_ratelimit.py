"""Rate limits: 429 problem+json with Retry-After, per key for writes, per address for reads."""

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.config import get_settings
from app.keys import Scope, create_key
from tests.conftest import ClientFactory

BODY = {"value": 1, "source": "synthetic-test-source", "quote": "synthetic"}


def test_writes_over_the_limit_get_429_with_retry_after(
    make_client: ClientFactory, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "write_rate_limit", "2/minute")
    name = f"limited-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {create_key(engine, name=name, scopes={Scope.write})}"}
    client = make_client(engine)
    url = "/api/v1/observations/trained/320400/2030"
    statuses = [client.put(url, json=BODY, headers=headers).status_code for _ in range(3)]
    assert statuses == [201, 200, 429]
    refused = client.put(url, json=BODY, headers=headers)
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["ratelimit-policy"] == "2;w=60"


def test_reads_are_unlimited_by_default_and_limited_when_set(
    world: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert all(world.get("/api/v1/years").status_code == 200 for _ in range(20))
    monkeypatch.setattr(get_settings(), "read_rate_limit", "3/minute")
    statuses = [world.get("/api/v1/years").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
