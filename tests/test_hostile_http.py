"""The HTTP edge under hostile clients: metric labels, slow and unauthenticated bodies, failed
authentication floods, security headers. Issue 11, items 6, 7, 15 and 17."""

import asyncio
import base64
import hashlib
import json
import re
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.types import Message

from app.config import get_settings
from app.keys import Scope, create_key
from app.middleware import DEFAULT_HTML_POLICY, Edge
from tests.conftest import ClientFactory, DatabaseFactory, count_statements
from tests.live import rss_mb, serving


def _metric_lines(client: TestClient) -> int:
    return len(client.get("/metrics").text.splitlines())


def test_encoded_paths_and_odd_methods_add_no_metric_series(world: TestClient) -> None:
    # `%2541` decodes to `%41`, which no longer matches its own segment once unquoted again:
    # the old label rebuilt from the raw path kept every such path as a series of its own.
    world.get("/api/v1/categories/%2541x-warm-up")
    world.request("BREW", "/healthz")
    world.get("/no/such/route")
    world.get("/metrics")  # its own series, too
    before = _metric_lines(world)
    for i in range(2000):
        assert world.get(f"/api/v1/categories/%2541x{i}").status_code == 404
    for i in range(50):
        world.request(f"BREW{i}", "/healthz")
        world.get(f"/no/such/route/{i}")
    text = world.get("/metrics").text
    assert len(text.splitlines()) == before
    assert 'method="GET",route="/api/v1/categories/{code}",status="404"' in text
    assert 'method="OTHER",route="/healthz"' in text
    assert 'route="unmatched",status="404"' in text
    assert "x1999" not in text and "BREW" not in text


# --- Item 7: a write is authenticated before its body is read; a body has a time limit ---

PUT_URL = "/api/v1/observations/trained/320400/2030"
BODY = {"value": 1, "source": "synthetic-test-source", "quote": "synthetic"}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    reads: int  # how many times the app asked for the request body


def _call(app: Any, method: str, path: str, headers: dict[str, str], chunks: list[bytes]) -> Answer:
    """Drive the ASGI app directly with a body that sends `chunks` and then stalls forever
    (a client that declared more than it sends); the whole call is bounded by 10 s."""
    messages: list[Message] = []
    reads = 0

    async def receive() -> Message:
        nonlocal reads
        reads += 1
        if reads <= len(chunks):
            return {"type": "http.request", "body": chunks[reads - 1], "more_body": True}
        await asyncio.Event().wait()  # the rest of the body never comes
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": (f"198.51.100.{uuid.uuid4().int % 250}", 50000),
        "server": ("testserver", 80),
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), timeout=10))
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    decoded = {k.decode(): v.decode() for k, v in start["headers"]}
    return Answer(start["status"], decoded, body, reads)


MIB = {"Content-Type": "application/json", "Content-Length": str(1024 * 1024 - 1)}


@pytest.mark.parametrize(
    "authorization", [None, "Basic dXNlcjpwYXNz", "Bearer not-a-key-anyone-made"]
)
def test_an_unauthenticated_write_is_refused_before_its_body_is_read(
    make_client: ClientFactory, engine: Engine, authorization: str | None
) -> None:
    app = make_client(engine).app
    headers = MIB | ({"Authorization": authorization} if authorization else {})
    started = time.monotonic()
    answer = _call(app, "PUT", PUT_URL, headers, chunks=[b'{"value": '])
    assert time.monotonic() - started < 5  # the call alone is bounded by 10 s
    assert (answer.status, answer.reads) == (401, 0)
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"].startswith('Bearer realm="statsapi"')
    assert answer.headers["connection"] == "close"  # the rest of the body is not waited for


def test_an_unauthenticated_import_is_refused_before_its_body_is_read(
    make_client: ClientFactory, engine: Engine
) -> None:
    app = make_client(engine).app
    headers = {"Content-Type": "text/csv", "Content-Length": str(5 * 1024 * 1024)}
    answer = _call(app, "POST", "/api/v1/imports", headers, chunks=[b"indicator,"])
    assert (answer.status, answer.reads) == (401, 0)


def test_a_body_that_stalls_gets_408_after_the_body_timeout(
    make_client: ClientFactory, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "body_timeout_s", 0.5)
    app = make_client(engine).app
    token = create_key(engine, name=f"slow-{uuid.uuid4().hex[:8]}", scopes={Scope.write})
    headers = MIB | {"Authorization": f"Bearer {token}"}
    started = time.monotonic()
    answer = _call(app, "PUT", PUT_URL, headers, chunks=[b'{"value": ', b"1"])
    assert 0.5 <= time.monotonic() - started < 3
    assert answer.status == 408
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["connection"] == "close"
    assert "did not arrive within 0.5 s" in json.loads(answer.body)["detail"]


def test_a_chunked_body_over_the_limit_is_413_not_a_parse_error(
    make_client: ClientFactory, engine: Engine
) -> None:
    app = make_client(engine).app
    token = create_key(engine, name=f"big-{uuid.uuid4().hex[:8]}", scopes={Scope.write})
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    answer = _call(app, "PUT", PUT_URL, headers, chunks=[b" " * 700_000, b" " * 700_000])
    assert answer.status == 413
    assert answer.headers["content-type"] == "application/problem+json"


def test_reads_and_unknown_write_routes_are_not_asked_for_a_key(world: TestClient) -> None:
    assert world.get("/api/v1/years").status_code == 200
    assert world.post("/api/v1/categories").status_code == 405
    assert world.put("/api/v1/nothing-here").status_code == 404


# --- Item 15: failed authentications are limited per client address ---


def test_failed_authentications_are_limited_per_address_before_any_lookup(
    make_client: ClientFactory, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "auth_failure_rate_limit", "3/minute")
    app = make_client(engine).app
    guesser = TestClient(app, client=(f"203.0.113.{uuid.uuid4().int % 250}", 1))
    bystander = TestClient(app, client=(f"192.0.2.{uuid.uuid4().int % 250}", 1))
    bad = {"Authorization": "Bearer guessed"}
    statuses = [guesser.put(PUT_URL, json=BODY, headers=bad).status_code for _ in range(3)]
    assert statuses == [401, 401, 401]

    lookups = count_statements(engine, lambda: guesser.put(PUT_URL, json=BODY, headers=bad))
    assert lookups == 0  # refused on the counter alone
    refused = guesser.put(PUT_URL, json=BODY, headers=bad)
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # The address is refused whatever it sends next, a good key too; other addresses are not.
    good = {"Authorization": f"Bearer {create_key(engine, name='ok', scopes={Scope.write})}"}
    assert guesser.put(PUT_URL, json=BODY, headers=good).status_code == 429
    assert bystander.put(PUT_URL, json=BODY, headers=good).status_code == 201
    assert bystander.put(PUT_URL, json=BODY, headers=bad).status_code == 401


# --- Item 17: security headers ---


PREFLIGHT = {"Origin": "https://a.example", "Access-Control-Request-Method": "GET"}


@pytest.mark.parametrize(
    ("method", "url", "headers"),
    [
        ("GET", "/api/v1/years", {}),
        ("GET", "/api/v1/observations?format=csv", {}),
        ("GET", "/api/v1/nothing-here", {}),
        ("PUT", PUT_URL, {}),
        ("GET", "/openapi.json", {}),
        ("GET", "/docs-assets/swagger-ui.css", {}),
        ("GET", "/healthz", {}),
        (
            "OPTIONS",
            "/api/v1/years",
            {"Origin": "https://a.example", "Access-Control-Request-Method": "GET"},
        ),
    ],
)
def test_every_response_says_nosniff(
    world: TestClient, method: str, url: str, headers: dict[str, str]
) -> None:
    response = world.request(method, url, headers=headers)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers  # HTML only


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_have_a_policy_allowing_only_their_own_assets_and_scripts(
    world: TestClient, page: str
) -> None:
    response = world.get(page)
    assert response.headers["x-frame-options"] == "DENY"
    directives = [
        p.strip().split(" ", 1) for p in response.headers["content-security-policy"].split(";")
    ]
    policy = {name: value for name, value in directives}
    assert policy["default-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    for directive in policy.values():
        assert "http" not in directive and "*" not in directive  # no other host
    assert "'unsafe-inline'" not in policy["script-src"]
    for script in re.findall(r"<script>(.*?)</script>", response.text, re.DOTALL):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy["script-src"]


def test_other_html_gets_a_policy_that_allows_nothing() -> None:
    app = FastAPI()

    @app.get("/page", response_class=HTMLResponse)
    async def page() -> str:
        return "<p>hello</p>"

    app.add_middleware(
        Edge,
        cors={"allow_origins": ["*"]},
        gzip_minimum_size=1024,
        api_prefix="/api/",
        write_guard={"default_limit": 1024, "limits": {}, "body_timeout": 1.0},
    )
    response = TestClient(app).get("/page")
    assert response.headers["content-security-policy"] == DEFAULT_HTML_POLICY
    assert response.headers["x-frame-options"] == "DENY"


# --- Item 7: `statsapi serve` passes its limits to uvicorn ---


def test_serve_passes_the_connection_limit_and_trusted_proxies_to_uvicorn(
    monkeypatch: pytest.MonkeyPatch, databases: DatabaseFactory
) -> None:
    from typer.testing import CliRunner

    from app import cli

    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli.uvicorn, "run", lambda *a, **k: seen.update(k))
    monkeypatch.setattr(get_settings(), "database_url", databases.fresh("empty"))  # serve's check
    monkeypatch.setattr(get_settings(), "limit_concurrency", 7)
    assert CliRunner().invoke(cli.cli, ["serve"]).exit_code == 0
    assert seen["limit_concurrency"] == 7
    assert (seen["proxy_headers"], seen["forwarded_allow_ips"]) == (True, "127.0.0.1")
    assert seen["timeout_keep_alive"] == cli.KEEP_ALIVE_TIMEOUT_S

    monkeypatch.setattr(get_settings(), "forwarded_allow_ips", "")
    assert CliRunner().invoke(cli.cli, ["serve"]).exit_code == 0
    assert seen["proxy_headers"] is False  # no proxy trusted: X-Forwarded-For is ignored


# --- Live probes: a real server, its worker's memory and /healthz latency ---

HEALTHZ_BOUND_S = 0.5  # /healthz answers in about a millisecond when the worker is not stalled


async def _healthz_latencies(url: str, count: int) -> list[float]:
    latencies = []
    async with httpx.AsyncClient(timeout=10) as client:
        for _ in range(count):
            started = time.monotonic()
            response = await client.get(f"{url}/healthz")
            latencies.append(time.monotonic() - started)
            assert response.status_code == 200
            await asyncio.sleep(0.2)
    return latencies


@pytest.mark.slow
def test_live_metrics_stay_small_under_2000_encoded_paths(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    with serving(databases.fresh("seeded"), tmp_path / "server.log") as server:
        client = httpx.Client(base_url=server.url, timeout=10)
        client.get("/api/v1/categories/%2541x-warm-up")
        client.get("/metrics")
        before = len(client.get("/metrics").content)
        for i in range(2000):
            client.get(f"/api/v1/categories/%2541x{i}")
        after = len(client.get("/metrics").content)
        client.close()
    # Only the counts' digits may grow (the issue measured 31 KB growing to 3.3 MB).
    assert after - before < 2048, (before, after)


SLOW_CLIENTS = 100  # of each kind: trickling headers, and partial anonymous 1 MiB PUTs
SLOW_CLIENTS_RSS_BOUND_MB = 40  # measured: under 1 MiB; the issue measured +570 MB


async def _first_line(reader: asyncio.StreamReader) -> bytes:
    """The answer's status line, or RESET: the server answered 401 and closed with the body
    unread, and the kernel then resets the connection, which may discard the 401 before the
    client reads it (seen once in CI). Either way the body was not waited for; a hang fails."""
    try:
        return await asyncio.wait_for(reader.readline(), 5)
    except ConnectionResetError:
        return b"RESET"


async def _slow_clients(url: str, pid: int) -> tuple[float, list[float], list[bytes]]:
    """Open the trickling and partial-PUT connections, keep trickling for 6 s while measuring
    /healthz; answer the worker's RSS growth, the latencies and the PUTs' first answer lines."""
    host, port = url.removeprefix("http://").split(":")
    baseline = rss_mb(pid)
    tricklers = []
    for _ in range(SLOW_CLIENTS):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /api/v1/years HTTP/1.1\r\nHost: x\r\n")
        tricklers.append((reader, writer))
    putters = []
    for _ in range(SLOW_CLIENTS):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"PUT {PUT_URL} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {1024 * 1024}\r\n\r\n".encode()
            + b'{"value": "'
            + b"9" * 65536
        )
        putters.append((reader, writer))
    latencies_task = asyncio.create_task(_healthz_latencies(url, 20))
    for _ in range(12):
        for _reader, writer in tricklers:
            writer.write(b"X-Slow: 1\r\n")
        await asyncio.sleep(0.5)
    first_lines = [await _first_line(reader) for reader, _w in putters]
    grown = rss_mb(pid) - baseline
    latencies = await latencies_task
    for _reader, writer in tricklers + putters:
        writer.close()
    return grown, latencies, first_lines


@pytest.mark.slow
def test_live_slow_clients_neither_grow_the_worker_nor_stall_healthz(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    with serving(databases.fresh("seeded"), tmp_path / "server.log") as server:
        [pid] = server.worker_pids()
        httpx.get(f"{server.url}/healthz")  # warm up
        grown, latencies, first_lines = asyncio.run(_slow_clients(server.url, pid))
    assert all(line.startswith(b"HTTP/1.1 401") or line == b"RESET" for line in first_lines), set(
        first_lines
    )
    assert grown < SLOW_CLIENTS_RSS_BOUND_MB, f"the worker grew by {grown:.1f} MiB"
    assert max(latencies) < HEALTHZ_BOUND_S, latencies


@pytest.mark.slow
def test_live_connections_past_the_limit_get_503(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    limit = 5
    log = tmp_path / "server.log"
    with serving(databases.fresh("seeded"), log, STATSAPI_LIMIT_CONCURRENCY=str(limit)) as server:
        host, port = server.url.removeprefix("http://").split(":")
        held = [socket.create_connection((host, int(port))) for _ in range(limit - 2)]
        try:
            time.sleep(0.2)
            # uvicorn counts the asking connection too: limit - 1 open ones are still served...
            assert httpx.get(f"{server.url}/healthz").status_code == 200
            held.append(socket.create_connection((host, int(port))))
            time.sleep(0.2)
            # ...and with `limit` open, the next request is refused at once.
            refused = httpx.get(f"{server.url}/healthz")
            assert refused.status_code == 503
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.2)
        assert httpx.get(f"{server.url}/healthz").status_code == 200


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379 for shared counters")
def test_live_two_workers_share_the_failed_authentication_limit_in_redis(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    env = {
        "STATSAPI_RATE_LIMIT_STORAGE": "redis://127.0.0.1:6379/15",
        "STATSAPI_AUTH_FAILURE_RATE_LIMIT": "5/minute",
    }
    # The server trusts X-Forwarded-For from the loopback (the default): a fresh address makes
    # this run's counter its own, and shows which address the limit counts.
    address = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    headers = {"Authorization": "Bearer guessed", "X-Forwarded-For": address}
    with serving(databases.fresh("seeded"), tmp_path / "server.log", workers=2, **env) as server:
        statuses = [
            httpx.put(f"{server.url}{PUT_URL}", json=BODY, headers=headers).status_code
            for _ in range(20)  # a new connection each: both workers answer some
        ]
    assert statuses.count(401) == 5 and statuses.count(429) == 15, statuses
