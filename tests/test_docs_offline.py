"""/docs and /redoc work on an offline intranet: the app serves their assets itself.

The browser test runs Debian's Chromium headless against a real server with every host but the
loopback address made unreachable, and checks that Swagger UI rendered the operations (so its
JavaScript loaded and it fetched /openapi.json), and that the pages' Content-Security-Policy
blocked nothing of their own. Without Chromium it is skipped, saying why, except in CI
(CI=true), where a missing browser is a failure: .ci/run installs it.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import DatabaseFactory

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_another_host(world: TestClient, page: str) -> None:
    html = world.get(page).text
    references = ASSET.findall(html) + re.findall(r"""url:\s*['"]([^'"]+)['"]""", html)
    assert references, "the page references no assets at all"
    for reference in references:
        assert not reference.startswith(("http:", "https:", "//")), reference
        response = world.get(reference)
        assert response.status_code == 200, reference
    assert "fonts.googleapis" not in html and "cdn.jsdelivr" not in html


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(databases: DatabaseFactory) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": databases.fresh("seeded")}
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("the server did not start within 30 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
        pytest.skip("needs Debian's chromium (apt-get install chromium) for the offline check")
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            # Offline: every host name fails to resolve and anything else goes to a dead proxy.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9",
            "--proxy-bypass-list=127.0.0.1",
            "--virtual-time-budget=15000",
            "--enable-logging=stderr",  # the console, with any Content-Security-Policy violation
            "--v=0",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


_VIOLATION = re.compile(r"(?:'([^']*)' )?violates the following Content Security Policy")


def _own_csp_violations(console: str) -> list[str]:
    """Console lines where the page's policy blocked something of the page's own: only
    resources from other hosts may be blocked (ReDoc's logo from its CDN is)."""
    own = []
    for line in console.splitlines():
        found = _VIOLATION.search(line)
        if found is None:
            continue
        resource = found.group(1) or ""  # empty: an inline script or style
        foreign = resource.startswith(("http:", "https:")) and "//127.0.0.1" not in resource
        if not foreign:
            own.append(line)
    return own


def test_swagger_ui_renders_every_operation_with_the_network_cut_off(
    server: str, tmp_path: Path
) -> None:
    result = _chromium("--dump-dom", f"{server}/docs", profile=tmp_path / "profile")
    dom = result.stdout
    assert "opblock" in dom, result.stderr[-2000:]
    assert _own_csp_violations(result.stderr) == []
    for path in ("/api/v1/observations", "/api/v1/comparisons", "/api/v1/imports"):
        assert f'data-path="{path}"' in dom
    screenshot = tmp_path / "docs.png"
    _chromium(
        f"--screenshot={screenshot}",
        "--window-size=1280,1600",
        f"{server}/docs",
        profile=tmp_path / "profile2",
    )
    assert screenshot.read_bytes().startswith(b"\x89PNG") and screenshot.stat().st_size > 20_000


def test_redoc_renders_with_the_network_cut_off(server: str, tmp_path: Path) -> None:
    result = _chromium("--dump-dom", f"{server}/redoc", profile=tmp_path / "profile")
    assert "Changzhou Veterans Affairs Statistics API" in result.stdout
    assert "/api/v1/observations" in result.stdout, result.stderr[-2000:]
    assert _own_csp_violations(result.stderr) == []
