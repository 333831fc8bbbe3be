"""CORS: a dashboard on another origin reads, revalidates and (with a key) writes from a browser.

Preflights are checked for each request header and method the API documents (TestClient), and
then for real: headless Chromium on a page of one loopback origin (`http://localhost:P1`) calls
the API on another (`http://127.0.0.1:P2`), a live server over the real seed, with the origin
allow-list naming the page's origin.
"""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import CORS_EXPOSED_HEADERS, CORS_MAX_AGE_S
from tests.browser import PageWatch, chromium
from tests.conftest import DatabaseFactory
from tests.live import free_port, serving, write_token

ORIGIN = "https://dashboard.example"
READ_URL = "/api/v1/observations"
WRITE_URL = "/api/v1/observations/adaptive_training_trainees/320400/2023"


def _preflight(client: TestClient, url: str, method: str, headers: str | None = None) -> Any:
    asked = {"Origin": ORIGIN, "Access-Control-Request-Method": method}
    if headers is not None:
        asked["Access-Control-Request-Headers"] = headers
    return client.options(url, headers=asked)


@pytest.mark.parametrize(
    ("method", "url", "header"),
    [
        ("GET", READ_URL, "if-none-match"),
        ("GET", READ_URL, "accept"),
        ("GET", READ_URL, "x-request-id"),
        ("PUT", WRITE_URL, "authorization"),
        ("PUT", WRITE_URL, "if-match"),
        ("PUT", WRITE_URL, "if-none-match"),
        ("PUT", WRITE_URL, "content-type"),
        ("PUT", WRITE_URL, "authorization,content-type,if-match"),
        ("DELETE", WRITE_URL, "authorization,if-match"),
        ("POST", "/api/v1/imports", "authorization,content-type,idempotency-key"),
    ],
)
def test_preflight_allows_each_documented_method_and_header(
    world: TestClient, method: str, url: str, header: str
) -> None:
    response = _preflight(world, url, method, header)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert method in response.headers["access-control-allow-methods"].split(", ")
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert set(header.split(",")) <= allowed
    assert response.headers["access-control-max-age"] == str(CORS_MAX_AGE_S)
    assert "access-control-allow-credentials" not in response.headers


@pytest.mark.parametrize(
    ("method", "header"), [("PATCH", None), ("PUT", "cookie"), ("GET", "x-anything")]
)
def test_preflight_refuses_what_the_api_does_not_read(
    world: TestClient, method: str, header: str | None
) -> None:
    assert _preflight(world, WRITE_URL, method, header).status_code == 400


def test_every_header_a_client_acts_on_is_exposed(world: TestClient) -> None:
    response = world.get(f"{READ_URL}?limit=1", headers={"Origin": ORIGIN})
    exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
    for header in ("ETag", "Last-Modified", "Link", "X-Total-Count", "Retry-After"):
        assert header in exposed
    assert {"X-Request-ID", "Idempotent-Replayed", "Location", "WWW-Authenticate"} <= exposed
    assert "X-Change-Seq" in exposed  # a dashboard keeping a copy in sync reads its cursor
    assert exposed == set(CORS_EXPOSED_HEADERS)
    assert "access-control-allow-credentials" not in response.headers


def test_a_refused_write_still_tells_the_browser_why(world: TestClient) -> None:
    """A 401 from the write guard (answered before the body is read) carries the CORS headers,
    so the page's script reads the status instead of an opaque network error."""
    response = world.put(WRITE_URL, json={}, headers={"Origin": ORIGIN})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "*"


def test_an_origin_off_the_allow_list_is_refused(
    make_client: Any, world_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.config import get_settings

    monkeypatch.setenv("STATSAPI_CORS_ORIGINS", '["https://allowed.example"]')
    get_settings.cache_clear()
    try:
        client = make_client(world_engine)
        refused = _preflight(client, READ_URL, "GET", "if-none-match")
        allowed = client.options(
            READ_URL,
            headers={
                "Origin": "https://allowed.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "if-none-match",
            },
        )
    finally:
        get_settings.cache_clear()
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://allowed.example"


# --- in a browser --------------------------------------------------------------------------

PAGE = b"<!doctype html><meta charset=utf-8><title>dashboard</title><p>another origin</p>"

# Run in the page (origin http://localhost:P1) against the API (http://127.0.0.1:P2).
SCRIPT = """
async ({api, token}) => {
  const out = {};
  const list = await fetch(`${api}/api/v1/observations?limit=2`);
  out.list = {status: list.status, etag: list.headers.get("ETag"),
              total: list.headers.get("X-Total-Count"), link: list.headers.get("Link"),
              requestId: list.headers.get("X-Request-ID"),
              lastModified: list.headers.get("Last-Modified")};
  const first = (await list.json()).data[0];
  const again = await fetch(`${api}/api/v1/observations?limit=2`,
                            {headers: {"If-None-Match": out.list.etag}});
  out.revalidated = {status: again.status, etag: again.headers.get("ETag")};

  const path = `${api}/api/v1/observations/${first.indicator}/${first.region}/${first.year}`;
  const one = await fetch(path);
  const etag = one.headers.get("ETag");
  const raw = await one.text();  // the value as the server wrote it, kept exact
  const value = raw.match(/"value":(-?[0-9.]+)/)[1];
  const current = JSON.parse(raw);
  const body = {value: value, qualifier: current.qualifier, source: current.source.id,
                quote: current.source.quote, unit: current.unit,
                note: "browser CORS test: the same value, quote and source"};
  const put = await fetch(path, {method: "PUT", body: JSON.stringify(body), headers: {
    "Authorization": `Bearer ${token}`, "If-Match": etag, "Content-Type": "application/json"}});
  out.put = {status: put.status, etag: put.headers.get("ETag"), before: etag,
             body: await put.json()};
  const stale = await fetch(path, {method: "PUT", body: JSON.stringify(body), headers: {
    "Authorization": `Bearer ${token}`, "If-Match": etag, "Content-Type": "application/json"}});
  out.stale = {status: stale.status, type: stale.headers.get("Content-Type")};
  try {
    await fetch(`${api}/api/v1/years`, {credentials: "include"});
    out.credentialed = "allowed";
  } catch (error) {
    out.credentialed = "refused";
  }
  out.value = value;
  out.path = path.slice(api.length);
  out.current = current;
  return out;
}
"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *_: Any) -> None:  # quiet: the test's output is its assertions
        pass


@pytest.fixture
def page_origin() -> Iterator[str]:
    """A page on its own loopback origin: `localhost`, not the API's `127.0.0.1`."""
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{port}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_on_another_origin_revalidates_reads_headers_and_writes(
    databases: DatabaseFactory, page_origin: str, tmp_path: Path
) -> None:
    database = databases.fresh("seeded")
    token = write_token(database, name="dashboard-editor")
    cors = json.dumps([page_origin])
    with (
        serving(database, tmp_path / "server.log", STATSAPI_CORS_ORIGINS=cors) as server,
        chromium() as browser,
    ):
        page = browser.new_page()
        watch = PageWatch().attach(page)
        page.goto(f"{page_origin}/")
        out = page.evaluate(SCRIPT, {"api": server.url, "token": token})

    listed = out["list"]
    assert listed["status"] == 200
    assert listed["etag"] and listed["etag"].startswith('"v')
    assert int(listed["total"]) > 2
    assert 'rel="next"' in listed["link"]
    assert listed["requestId"] and listed["lastModified"]
    assert out["revalidated"] == {"status": 304, "etag": listed["etag"]}

    put = out["put"]
    written_path = out["path"]
    assert put["status"] == 200, put
    assert (put["before"], put["etag"]) == ('"r1"', '"r2"')
    assert put["body"]["note"] == "browser CORS test: the same value, quote and source"
    assert put["body"]["source"] == out["current"]["source"]
    assert str(put["body"]["value"]) == str(out["current"]["value"])
    assert out["stale"] == {"status": 412, "type": "application/problem+json"}
    # No cookies: a credentialed request is refused by the browser itself.
    assert out["credentialed"] == "refused"
    # The page met only the failures it provoked: the 412, and the credentialed fetch that the
    # browser refused. (Chromium reports the 304 of a hand-made revalidation as an aborted
    # load: the page asked for it and read its status above.)
    provoked = [f"412 {server.url}{written_path}", f"net::ERR_FAILED {server.url}/api/v1/years"]
    revalidation = f"net::ERR_ABORTED {server.url}/api/v1/observations?limit=2"
    assert [f for f in watch.failed_requests if f != revalidation] == provoked
    blocked = [e for e in watch.console_errors if "CORS policy" in e]
    assert len(blocked) == 1 and "/api/v1/years" in blocked[0] and "Credentials" in blocked[0]
