"""Answers kept per data version (app/answers.py): a GET asked again before the next write is
answered from memory with the data version read alone, a write is seen at once, and the store
stays within its bound whatever the clients ask."""

import asyncio
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.answers import AnswerCache, Kept
from tests.conftest import ClientFactory, bearer, count_statements
from tests.factories import SYNTHETIC_SOURCE

URL = "/api/v1/observations?region=320400&limit=5"


def _get(client: TestClient, url: str, answers: list[Any], **kwargs: Any) -> None:
    answers.append(client.get(url, **kwargs))


def test_a_repeated_get_is_answered_from_memory_with_the_data_version_alone(
    make_client: ClientFactory, world_engine: Engine
) -> None:
    client = make_client(world_engine)
    answers: list[Any] = []
    first = count_statements(world_engine, lambda: _get(client, URL, answers))
    again = count_statements(world_engine, lambda: _get(client, URL, answers))
    assert (first > 2, again) == (True, 1)
    assert answers[1].status_code == 200
    assert answers[1].content == answers[0].content
    for header in ("etag", "last-modified", "x-total-count", "x-change-seq", "content-type"):
        assert answers[1].headers[header] == answers[0].headers[header]
    assert answers[1].headers["x-request-id"] != answers[0].headers["x-request-id"]


def test_json_and_csv_of_the_same_url_are_kept_apart(
    make_client: ClientFactory, world_engine: Engine
) -> None:
    client = make_client(world_engine)
    json_first = client.get(URL)
    csv_first = client.get(URL, headers={"Accept": "text/csv"})
    assert client.get(URL).content == json_first.content
    assert client.get(URL, headers={"Accept": "text/csv"}).content == csv_first.content
    assert csv_first.headers["content-type"].startswith("text/csv")


def test_errors_are_not_kept(make_client: ClientFactory, world_engine: Engine) -> None:
    client = make_client(world_engine)
    bad = "/api/v1/observations?region=nowhere"
    assert client.get(bad).status_code == 422
    statements = count_statements(world_engine, lambda: client.get(bad))
    assert statements > 1  # routed and checked again, not answered from memory


def test_a_write_is_seen_by_the_next_get(api: TestClient, tokens: dict[str, str]) -> None:
    one = URL.replace("limit=5", "limit=1")
    [row] = api.get(one).json()["data"]
    assert api.get(one).json()["data"] == [row]  # kept
    path = f"/api/v1/observations/{row['indicator']}/{row['region']}/{row['year']}"
    body = {"value": "12345", "source": SYNTHETIC_SOURCE, "quote": "synthetic quote"}
    changed = api.put(path, json=body, headers=bearer(tokens["write"]))
    assert changed.status_code in (200, 201), changed.text
    [after] = api.get(one).json()["data"]
    assert after["value"] == 12345


def _kept(size: int) -> Kept:
    return Kept([(b"etag", b'"v1-x"')], b"x" * size)


def test_the_store_stays_within_its_bound_dropping_the_least_recently_used() -> None:
    cache = AnswerCache(8_000)
    for number in range(100):
        cache.put((1, f"/q{number}"), _kept(900))
        cache.get((1, "/q0"))  # used again and again: kept
        assert cache.size <= 8_000
    assert cache.get((1, "/q0")) is not None
    assert cache.get((1, "/q1")) is None
    assert cache.size == sum(kept.size for kept in cache.kept.values())


def test_an_answer_over_an_eighth_of_the_bound_is_never_kept() -> None:
    cache = AnswerCache(8_000)
    cache.put((1, "/big"), _kept(1_000))
    assert cache.get((1, "/big")) is None and cache.size == 0


def test_an_answer_whose_etag_is_not_its_keys_is_not_kept() -> None:
    cache = AnswerCache(8_000)
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def answer(etag: bytes, key: tuple[int, str]) -> None:
        record = cache.recording(key, '"v1-x"', send)
        await record({"type": "http.response.start", "status": 200, "headers": [(b"etag", etag)]})
        await record({"type": "http.response.body", "body": b"{}"})

    # The route answered at a newer version than the key's (a write landed in between)...
    asyncio.run(answer(b'"v2-x"', (1, "/q")))
    assert len(sent) == 2 and cache.get((1, "/q")) is None
    # ...and, for contrast, an answer at the key's own version is kept.
    asyncio.run(answer(b'"v1-x"', (1, "/r")))
    assert cache.get((1, "/r")) is not None
