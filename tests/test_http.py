"""HTTP behaviour shared by every endpoint: CORS, compression, caching headers, error shape."""

from fastapi.testclient import TestClient

URL = "/api/v1/observations"


def test_cors_allows_any_origin_to_read_without_credentials(world: TestClient) -> None:
    response = world.get(URL, headers={"Origin": "https://dashboard.example"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    assert "etag" in response.headers["access-control-expose-headers"].lower()


def test_cors_preflight_for_get(world: TestClient) -> None:
    response = world.options(
        URL,
        headers={"Origin": "https://dashboard.example", "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


def test_large_bodies_are_gzipped_and_vary_once_on_accept_and_encoding(world: TestClient) -> None:
    response = world.get(f"{URL}?limit=1000", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept, Accept-Encoding, Origin"  # Origin: from CORS


def test_small_bodies_still_vary_on_accept_and_encoding(world: TestClient) -> None:
    response = world.get("/api/v1/years", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept, Accept-Encoding, Origin"  # Origin: from CORS


def test_unknown_route_is_404_problem_json(world: TestClient) -> None:
    response = world.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "Not Found",
        "instance": "/api/v1/nothing-here",
    }


def test_wrong_method_is_405_problem_json(world: TestClient) -> None:
    response = world.post("/api/v1/categories")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == "GET"
