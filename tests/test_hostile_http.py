"""The HTTP edge under hostile clients: metric labels, slow and unauthenticated bodies, failed
authentication floods, security headers. Issue 11, items 6, 7, 15 and 17."""

from fastapi.testclient import TestClient


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
