"""The front door (`/`) and the dashboard (`/dashboard`).

Served pages and assets are checked with the test client; what people see is checked in Debian's
Chromium (tests/browser.py: Playwright, every host but the loopback unreachable) against a live
server over the real 2023 seed, and over the seed plus a SYNTHETIC 2024 bundle built here (never
seeded anywhere else) for the year-on-year changes.
"""

import hashlib
import os
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import PROJECT_ROOT
from app.db import build_engine
from app.routers.pages import PAGE_POLICY, STATIC_DIR, prefers_json
from tests.browser import PageWatch, chromium
from tests.conftest import DatabaseFactory
from tests.factories import load_document
from tests.live import Server, serving

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ECHARTS_DIR = STATIC_DIR / "vendor" / "echarts"
SYNTHETIC_SOURCE = "synthetic-test-2024"
QUALIFIER_PREFIX = {"zh": {"approximate": "约"}, "en": {"approximate": "about "}}
BOUNDS = {"at_least": "≥", "at_most": "≤"}
DESKTOP = {"width": 1366, "height": 1000}
PHONE = {"width": 360, "height": 780}


# --- served pages and assets ------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "json_wanted"),
    [
        ("", False),
        ("*/*", False),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
        ("application/json", True),
        ("application/json, text/html;q=0.5", True),
        ("text/html, application/json", False),
        ("application/*", True),
        ("text/html;q=0, application/json;q=0.1", True),
        ("application/json;q=bad, text/html;q=0.2", False),
    ],
)
def test_front_door_negotiates_html_or_json(accept: str, json_wanted: bool) -> None:
    assert prefers_json(accept) is json_wanted


def test_front_door_is_a_page_for_browsers_and_an_index_for_programs(client: TestClient) -> None:
    page = client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == PAGE_POLICY
    assert 'href="dashboard"' in page.text and 'href="docs"' in page.text
    index = client.get("/", headers={"Accept": "application/json"})
    assert index.status_code == 200
    assert index.headers["content-type"] == "application/json"
    assert "Accept" in index.headers["vary"]
    links = index.json()["links"]
    for name, href in links.items():  # every link leads somewhere (comparisons needs a year)
        assert client.get(href).status_code == (422 if name == "comparisons" else 200), name
    assert client.get(links["observations_csv"]).headers["content-type"].startswith("text/csv")


def test_pages_stay_out_of_the_api_contract(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and "/dashboard" not in paths


@pytest.mark.parametrize("page", ["/", "/dashboard"])
def test_pages_run_no_inline_script_and_load_only_their_own_assets(
    client: TestClient, page: str
) -> None:
    html = client.get(page).text
    assert "script-src 'self';" in PAGE_POLICY and "unsafe-inline" not in PAGE_POLICY
    for script in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in script, f"inline script: {script}"
    assets = re.findall(r"""(?:src|href)="(static/[^"]+)\"""", html)
    assert assets
    for asset in assets:
        response = client.get(f"/{asset}")
        assert response.status_code == 200, asset
    assert not re.search(r"""(?:src|href)="(?:https?:)?//""", html)


def test_vendored_echarts_matches_its_checksums_and_pinned_version() -> None:
    sums = (ECHARTS_DIR / "SHA256SUMS").read_text().splitlines()
    assert {line.split()[1] for line in sums} >= {"echarts.min.js", "LICENSE", "NOTICE"}
    for line in sums:
        digest, name = line.split()
        assert hashlib.sha256((ECHARTS_DIR / name).read_bytes()).hexdigest() == digest, name
    version = (ECHARTS_DIR / "VERSION").read_text().strip()
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert f"ECHARTS_VERSION := {version}\n" in makefile
    # The page names the version in the library's URL, which is what lets browsers cache it
    # for a year: a refresh must change that URL too.
    assert f"echarts.min.js?v={version}" in (STATIC_DIR / "dashboard.html").read_text()


def test_the_library_is_cached_long_and_compressed_and_the_pages_revalidate(
    client: TestClient,
) -> None:
    library = client.get(
        "/static/vendor/echarts/echarts.min.js?v=x", headers={"Accept-Encoding": "gzip"}
    )
    assert library.status_code == 200
    assert library.headers["content-encoding"] == "gzip"
    assert "immutable" in library.headers["cache-control"]
    own = client.get("/static/js/dashboard.js")
    assert own.headers["cache-control"] == "no-cache" and own.headers["etag"]
    again = client.get("/static/js/dashboard.js", headers={"If-None-Match": own.headers["etag"]})
    assert again.status_code == 304


# --- in the browser ---------------------------------------------------------------------


def synthetic_2024() -> dict[str, Any]:
    """A SYNTHETIC next-year bundle: invented figures, for these tests only. Each quote states
    its number, as a real one would."""
    return {
        "format": "statsapi-bundle/1",
        "sources": [
            {
                "code": SYNTHETIC_SOURCE,
                "title_zh": "SYNTHETIC test fixture：虚构的2024年数字，仅供测试",
                "title_en": "SYNTHETIC test fixture: invented 2024 figures, for tests only",
                "publisher_zh": "测试（tests/test_dashboard.py）",
                "publisher_en": "tests/test_dashboard.py",
                "published_on": "2025-01-02",
                "year_covered": 2024,
            }
        ],
        "defaults": {"source": SYNTHETIC_SOURCE, "year": 2024, "region": "320400"},
        "observations": [
            # A plain count: 608 -> 680.
            {"indicator": "adaptive_training_trainees", "value": 680, "quote": "培训680人次"},
            # A rate, in points: 96.6% -> 95.1%.
            {
                "indicator": "transferred_officers_public_placement_rate",
                "value": Decimal("95.1"),
                "quote": "安置比例达到95.1%",
            },
            # Against a qualified base (近800, approximate): 1000 exact.
            {"indicator": "visitor_person_times", "value": 1000, "quote": "接待调研交流1000人次"},
            # Two lower bounds (300余 -> 350余): the change cannot be told.
            {
                "indicator": "storytelling_sessions",
                "value": 350,
                "qualifier": "at_least",
                "quote": "组织宣讲350余场",
            },
            {"indicator": "job_fairs_held", "value": 25, "quote": "举办招聘会25场"},
        ],
    }


@pytest.fixture(scope="module")
def browser() -> Iterator["Browser"]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def seed_server(databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("dashboard-seed") / "server.log"
    with serving(databases.fresh("seeded"), log) as server:
        yield server


@pytest.fixture(scope="module")
def two_year_server(databases: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory):
    url = databases.fresh("seeded")
    engine = build_engine(url)
    load_document(engine, synthetic_2024(), name="synthetic-2024")
    engine.dispose()
    log = tmp_path_factory.mktemp("dashboard-2024") / "server.log"
    with serving(url, log) as server:
        yield server


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the run writes its screenshots (STATSAPI_SCREENSHOT_DIR, else a temporary dir)."""
    chosen = os.environ.get("STATSAPI_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_dashboard(
    browser: "Browser", url: str, *, viewport: dict[str, int] = DESKTOP
) -> tuple["Page", PageWatch]:
    page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
    watch = PageWatch().attach(page)
    page.goto(url)
    page.wait_for_selector("body[data-ready]")
    return page, watch


def api(server: Server, path: str) -> Any:
    response = httpx.get(f"{server.url}/api/v1/{path}")
    assert response.status_code == 200, response.text
    return response.json()


def shown_value(row: dict[str, Any], lang: str) -> str:
    """A value as the dashboard writes it, from the API's row: "608 人次", "≥300 场"."""
    qualifier = row["qualifier"]
    prefix = QUALIFIER_PREFIX[lang].get(qualifier) or BOUNDS.get(qualifier, "")
    number = f"{prefix}{row['value']:,}"
    return f"{number}%" if row["unit"] == "percent" else f"{number} {row[f'unit_name_{lang}']}"


def tile(page: "Page", indicator: str, region: str = "320400") -> Any:
    return page.locator(f'li.tile[data-indicator="{indicator}"][data-region="{region}"]')


def test_the_dashboard_shows_every_2023_figure_with_its_sentence(
    browser: "Browser", seed_server: Server
) -> None:
    page, watch = open_dashboard(browser, f"{seed_server.url}/dashboard")
    observations = api(seed_server, "observations?year=2023&limit=1000")["data"]
    assert len(observations) == 57
    assert page.locator("li.tile").count() == 57
    for row in observations:
        card = tile(page, row["indicator"], row["region"])
        assert card.locator(".tile-value").inner_text() == shown_value(row, "zh"), row
        assert card.locator("blockquote").text_content() == row["source"]["quote"]
        # One year only: every comparison says so, plainly; a single event is never compared.
        single_event = row["indicator"] == "large_accident_claim_paid"
        expected = "单次事件，不作逐年比较" if single_event else "无上年数据（2022年无此项）"
        assert card.locator(".tile-change").inner_text() == expected
        assert card.get_attribute("data-direction") == "unknown"
    assert tile(page, "adaptive_training_trainees").locator(".tile-value").inner_text() == (
        "608 人次"
    )
    assert tile(page, "military_support_project_funds").locator(".tile-value").inner_text() == (
        "10,273,000 元"
    )
    assert tile(page, "visitor_person_times").locator(".tile-value").inner_text() == ("约800 人次")
    # The sentence opens on click or tap, with a link to the stored text.
    source = tile(page, "adaptive_training_trainees").locator("details")
    source.locator("summary").click()
    link = source.locator("a")
    link.wait_for()
    text = httpx.get(f"{seed_server.url}/{link.get_attribute('href')}")
    assert text.status_code == 200 and "退役士兵适应性培训608人次" in text.text
    # A district chart of the first indicator with district values, drawn on a canvas.
    assert page.locator("#chart canvas").count() >= 1
    assert "各区" in page.locator("#chart-title").inner_text()
    watch.assert_clean()


def test_the_first_view_needs_four_api_calls_and_under_500_kb(
    browser: "Browser", seed_server: Server
) -> None:
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    page = context.new_page()
    responses: list[Any] = []
    page.on("requestfinished", lambda request: responses.append(request))
    page.goto(f"{seed_server.url}/dashboard")
    page.wait_for_selector("body[data-ready]")
    page.wait_for_load_state("networkidle")
    api_calls = [r.url for r in responses if "/api/" in r.url]
    transferred = sum(
        sizes["responseBodySize"] + sizes["responseHeadersSize"]
        for sizes in (request.sizes() for request in responses)
    )
    library = next(r for r in responses if "echarts.min.js" in r.url)
    assert library.response().header_value("content-encoding") == "gzip"
    print(f"first view: {len(api_calls)} API calls, {transferred} bytes transferred")
    assert len(api_calls) <= 4, api_calls
    assert transferred < 500_000
    context.close()


def test_tiles_show_the_change_and_direction_the_comparisons_give(
    browser: "Browser", two_year_server: Server
) -> None:
    rows = {
        row["indicator"]: row
        for row in api(two_year_server, "comparisons?year=2024&base_year=2023&limit=1000")["data"]
        if row["region"] == "320400"
    }
    page, watch = open_dashboard(browser, f"{two_year_server.url}/dashboard?lang=en")
    assert page.locator("#year").input_value() == "2024"
    assert page.locator("#base").input_value() == "2023"

    def change(indicator: str) -> str:
        card = tile(page, indicator)
        assert card.get_attribute("data-direction") == rows[indicator]["direction"]
        return card.locator(".tile-change").inner_text()

    count = rows["adaptive_training_trainees"]
    assert (count["direction"], count["change"], count["change_pct"]) == ("up", 72, 11.84)
    assert change("adaptive_training_trainees") == "↑ up +72 person-times (+11.84%) vs 2023"
    rate = rows["transferred_officers_public_placement_rate"]
    assert (rate["direction"], rate["change_pp"], rate["change_pct"]) == ("down", -1.5, None)
    assert change("transferred_officers_public_placement_rate") == "↓ down -1.5 pp vs 2023"
    approximate = rows["visitor_person_times"]
    assert (approximate["direction"], approximate["change_qualifier"]) == ("up", "approximate")
    assert change("visitor_person_times") == (
        f"↑ up about +{approximate['change']} person-times (+{approximate['change_pct']}%) vs 2023"
    )
    bounds = rows["storytelling_sessions"]
    assert (bounds["direction"], bounds["change_qualifier"]) == ("unknown", "unbounded")
    assert change("storytelling_sessions") == "change unknown: both figures are bounds"
    assert rows["volunteers_honoured"]["reason"] == "no_current_value"
    assert tile(page, "volunteers_honoured").locator(".tile-value").inner_text() == "—"
    assert change("volunteers_honoured") == "no value for 2024"
    # The synthetic source has no stored text: its sentence shows, without a dead link.
    source = tile(page, "job_fairs_held").locator("details")
    source.locator("summary").click()
    page.wait_for_function(
        "el => el.querySelector('.source-link').textContent.includes('SYNTHETIC')",
        arg=source.element_handle(),
    )
    assert source.locator("a").count() == 0
    assert source.locator("blockquote").text_content() == "举办招聘会25场"
    watch.assert_clean()


def test_the_language_switch_changes_every_label(browser: "Browser", seed_server: Server) -> None:
    page, watch = open_dashboard(browser, f"{seed_server.url}/dashboard")
    assert page.locator("h1").inner_text() == "常州市退役军人工作数据看板"
    page.locator("#lang").click()
    page.wait_for_url(re.compile(r"lang=en"))
    assert page.locator("h1").inner_text() == "Changzhou veterans affairs dashboard"
    assert page.locator("html").get_attribute("lang") == "en"
    card = tile(page, "adaptive_training_trainees")
    assert card.locator("h3").inner_text() == (
        "Adaptive training of demobilised soldiers (person-times)"
    )
    assert card.locator(".tile-value").inner_text() == "608 person-times"
    assert card.locator(".tile-change").inner_text() == "no earlier value (none for 2022)"
    assert card.locator("summary").inner_text() == "Source"
    assert page.locator("label", has=page.locator("#year")).inner_text().startswith("Year")
    headings = page.locator("section.category h2").all_inner_texts()
    assert "Employment, training and entrepreneurship" in headings
    assert not any(re.search(r"[\u4e00-\u9fff]", heading) for heading in headings)
    watch.assert_clean()


def test_a_shared_url_restores_the_same_view(browser: "Browser", seed_server: Server) -> None:
    page, watch = open_dashboard(browser, f"{seed_server.url}/dashboard")
    page.locator("#lang").click()
    page.locator("#category").select_option("employment_entrepreneurship")
    tile(page, "adaptive_training_trainees").locator(".chart-button").click()
    page.wait_for_function(
        "() => document.querySelector('#chart-title').textContent.includes('across years')"
    )
    shared = page.url
    view = {
        "#year": page.locator("#year").input_value(),
        "#base": page.locator("#base").input_value(),
        "#category": page.locator("#category").input_value(),
        "#chart-indicator": page.locator("#chart-indicator").input_value(),
    }
    tiles = page.locator("li.tile").count()
    title = page.locator("#chart-title").inner_text()
    assert view["#category"] == "employment_entrepreneurship" and 0 < tiles < 57
    assert view["#chart-indicator"] == "adaptive_training_trainees"

    again, again_watch = open_dashboard(browser, shared)
    again.wait_for_function(
        "() => document.querySelector('#chart-title').textContent.includes('across years')"
    )
    assert {selector: again.locator(selector).input_value() for selector in view} == view
    assert again.locator("li.tile").count() == tiles
    assert again.locator("#chart-title").inner_text() == title
    assert again.locator("h1").inner_text() == "Changzhou veterans affairs dashboard"
    assert again.locator("#chart-years").get_attribute("aria-pressed") == "true"
    watch.assert_clean()
    again_watch.assert_clean()


def test_every_control_and_every_sentence_is_reachable_by_keyboard(
    browser: "Browser", seed_server: Server
) -> None:
    page, watch = open_dashboard(browser, f"{seed_server.url}/dashboard")
    reached: list[str] = []
    for _ in range(20):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.id || document.activeElement.tagName"))
    controls = ["lang", "year", "base", "category", "chart-indicator", "chart-years"]
    assert set(controls) <= set(reached), reached
    assert "SUMMARY" in reached, reached
    # Enter on the focused summary opens the sentence.
    while page.evaluate("document.activeElement.tagName") != "SUMMARY":
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.parentElement.open") is True
    page.locator("#category").focus()
    page.keyboard.press("ArrowDown")
    assert page.locator("#category").input_value() != ""
    watch.assert_clean()


def test_readable_at_360_px_and_screenshots_written(
    browser: "Browser", seed_server: Server, screenshots: Path
) -> None:
    page, watch = open_dashboard(browser, f"{seed_server.url}/dashboard?lang=en", viewport=PHONE)
    page.wait_for_selector("#chart canvas")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    # The tiles, which come after the chart: what a phone shows once scrolled to the figures.
    page.evaluate("document.querySelector('#chart-data').scrollIntoView()")
    page.locator("li.tile summary").first.click()  # one sentence open, as a tap shows it
    page.locator("li.tile details a").first.wait_for()
    page.screenshot(path=screenshots / "dashboard-360.png")
    desktop, desktop_watch = open_dashboard(browser, f"{seed_server.url}/dashboard")
    desktop.wait_for_selector("#chart canvas")
    desktop.screenshot(path=screenshots / "dashboard-desktop.png")
    for name in ("dashboard-360.png", "dashboard-desktop.png"):
        assert (screenshots / name).read_bytes().startswith(b"\x89PNG")
    watch.assert_clean()
    desktop_watch.assert_clean()


def test_the_front_door_lists_years_and_sources_and_leads_to_the_dashboard(
    browser: "Browser", seed_server: Server
) -> None:
    page, watch = open_dashboard(browser, f"{seed_server.url}/")
    assert "2023" in page.locator("#years").inner_text()
    assert "年度盘点" in page.locator("#sources").inner_text()
    text = page.locator("#sources a", has_text="存档全文")
    assert httpx.get(f"{seed_server.url}/{text.get_attribute('href')}").status_code == 200
    page.locator("#lang").click()
    assert page.locator("h1").inner_text() == "Changzhou veterans affairs statistics"
    assert "Annual review" in page.locator("#sources").inner_text()
    page.locator("#to-dashboard").click()
    page.wait_for_url(re.compile(r"/dashboard\?"))  # the landing page's body is ready too
    page.wait_for_selector("body[data-ready]")
    assert page.locator("h1").inner_text() == "Changzhou veterans affairs dashboard"
    assert page.locator("li.tile").count() == 57
    watch.assert_clean()


def test_an_empty_database_says_so_without_an_error(
    browser: "Browser", databases: DatabaseFactory, tmp_path: Path
) -> None:
    with serving(databases.fresh("empty"), tmp_path / "server.log") as server:
        page, watch = open_dashboard(browser, f"{server.url}/dashboard")
        assert page.locator("#status").inner_text() == "尚无数据。"
        assert page.locator("li.tile").count() == 0
        landing, landing_watch = open_dashboard(browser, f"{server.url}/")
        assert landing.locator("#years li").count() == 0
    watch.assert_clean()
    landing_watch.assert_clean()
