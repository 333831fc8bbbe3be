"""A real browser for tests of what people see: Playwright driving Debian's Chromium, offline.

Playwright never downloads a browser here: it launches the system's `chromium` (apt), headless,
with every host name but the loopback made unresolvable and anything else sent to a dead proxy,
so a page that fetched from the internet would fail the test instead of passing by luck.
Without Chromium or Playwright the tests are skipped, saying why, except in CI (CI=true), where
a missing browser is a failure: .ci/run installs it.
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

OFFLINE_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=127.0.0.1;localhost",
]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; .ci/run installs Debian's chromium and the dev extras")
    pytest.skip(reason)


@contextmanager
def chromium() -> Iterator["Browser"]:
    """Debian's Chromium, headless and offline, driven by Playwright."""
    if CHROMIUM is None:
        _unavailable("needs Debian's chromium (apt-get install chromium) for browser tests")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("needs Playwright for Python (the dev extras) for browser tests")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=OFFLINE_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageWatch:
    """What went wrong on a page: console errors and requests that failed or answered >= 400."""

    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)

    def attach(self, page: "Page") -> "PageWatch":
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console_errors.append(f"pageerror: {error}"))
        page.on("requestfailed", self._failed)
        page.on(
            "response",
            lambda response: (
                self.failed_requests.append(f"{response.status} {response.url}")
                if response.status >= 400
                else None
            ),
        )
        return self

    def _console(self, message: "ConsoleMessage") -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _failed(self, request: "Request") -> None:
        self.failed_requests.append(f"{request.failure} {request.url}")

    def assert_clean(self) -> None:
        assert self.console_errors == [], self.console_errors
        assert self.failed_requests == [], self.failed_requests
