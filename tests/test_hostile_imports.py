"""Large and concurrent imports: off the event loop, one at a time per worker, few statements,
short write locks, small idempotency records (issue 11, items 3, 8 and 9).

Every row here is SYNTHETIC: the seed's indicators and regions over made-up years and values,
derived from a clause of the review, noted as SYNTHETIC (tests/factories.py REVIEW_CLAUSE).
"""

import asyncio
import contextlib
import json
import statistics
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from app import imports as import_service
from app.bounds import MIN_YEAR
from app.bundle import read_bundle_file
from app.config import get_settings
from app.keys import Scope, create_key
from app.models import idempotency_table, utcnow
from app.routers import imports as imports_router
from tests.conftest import SEED_DIR, ClientFactory, DatabaseFactory, count_statements
from tests.factories import REVIEW_CLAUSE, SYNTHETIC_DERIVED
from tests.live import serving, write_key
from tests.test_faults import _write_in_progress as write_in_progress

URL = "/api/v1/imports"
SOURCE = "cz-tyjrswj-2023-review"
HEADER = "indicator,region,year,value,qualifier,note,source,quote,derived"
LARGE_IMPORT_ROWS = 10_000  # the default row limit (app/config.py max_import_rows)
# 10,000 changed rows ran 55 statements in the write once batched (10,000 more before: one
# UPDATE a row); the bound leaves room for the request's own (the key, the data version).
LARGE_IMPORT_MAX_STATEMENTS = LARGE_IMPORT_ROWS // 100


@cache
def _seed_cells() -> tuple[list[str], list[str]]:
    seed = read_bundle_file(SEED_DIR / "changzhou-2023-review.yaml").bundle
    return [i.code for i in seed.indicators], [r.code for r in seed.regions]


def _synthetic_cells(rows: int) -> Iterator[tuple[int, str, str, int]]:
    """(n, indicator, region, year): the seed's indicators x regions, years counting up from
    MIN_YEAR + 1 (a source cannot state a year after it; the seed's own year, 2023, is reached
    only past about 20,000 rows; MIN_YEAR itself is the probes')."""
    indicators, regions = _seed_cells()
    per_year = len(indicators) * len(regions)
    for n in range(rows):
        indicator = indicators[n % len(indicators)]
        region = regions[(n // len(indicators)) % len(regions)]
        yield n, indicator, region, MIN_YEAR + 1 + n // per_year


def _sensible(value: int, indicator: str) -> int:
    """A SYNTHETIC value that makes sense (app/sanity.py): the seed's one rate within 0-100."""
    return value % 100 if indicator == "transferred_officers_public_placement_rate" else value


def synthetic_csv(rows: int, *, value_offset: int = 0) -> str:
    """A SYNTHETIC CSV import of `rows` observations."""
    lines = [HEADER]
    for n, indicator, region, year in _synthetic_cells(rows):
        value = _sensible(n + value_offset, indicator)
        lines.append(
            f"{indicator},{region},{year},{value},exact,SYNTHETIC row {n},{SOURCE},"
            f"{REVIEW_CLAUSE},true"
        )
    return "\r\n".join(lines) + "\r\n"


def _post_csv(api: TestClient, token: str, body: str, **kw):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    headers.update(kw.pop("headers", {}))
    return api.post(URL, content=body.encode(), headers=headers, **kw)


def test_a_large_import_runs_a_bounded_number_of_statements(
    make_client: ClientFactory, seeded_engine: Engine
) -> None:
    api = make_client(seeded_engine)
    token = create_key(seeded_engine, name="bulk", scopes={Scope.write})
    created = _post_csv(api, token, synthetic_csv(LARGE_IMPORT_ROWS))
    assert created.status_code == 200, created.text[:500]
    changed_body = synthetic_csv(LARGE_IMPORT_ROWS, value_offset=1)
    answers = []
    statements = count_statements(
        seeded_engine, lambda: answers.append(_post_csv(api, token, changed_body))
    )
    assert answers[0].status_code == 200, answers[0].text[:500]
    counts = answers[0].json()["summary"]["observations"]
    assert counts == {"created": 0, "changed": LARGE_IMPORT_ROWS, "unchanged": 0}
    assert statements <= LARGE_IMPORT_MAX_STATEMENTS


# -- item 3: parsing off the event loop, one import per worker at a time ---------------------


@pytest.fixture
def api_and_token(make_client: ClientFactory, seeded_engine: Engine) -> tuple[TestClient, str]:
    return make_client(seeded_engine), create_key(seeded_engine, name="bulk", scopes={Scope.write})


def test_uploads_are_parsed_off_the_event_loop(api_and_token, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    api, token = api_and_token
    loops_seen = []

    def parse(body: bytes, content_type: str):  # type: ignore[no-untyped-def]
        try:
            loops_seen.append(asyncio.get_running_loop())
        except RuntimeError:
            loops_seen.append(None)
        return real_parse(body, content_type)

    real_parse = import_service.parse_upload
    monkeypatch.setattr(import_service, "parse_upload", parse)
    response = _post_csv(api, token, synthetic_csv(3), params={"dry_run": "true"})
    assert response.status_code == 200, response.text
    assert loops_seen == [None]  # parsed in a worker thread, where no event loop runs


def test_a_second_import_waits_its_turn_then_gets_503_with_retry_after(
    api_and_token, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    api, token = api_and_token
    parsing, release = threading.Event(), threading.Event()
    real_parse = import_service.parse_upload

    def slow_parse(body: bytes, content_type: str):  # type: ignore[no-untyped-def]
        parsing.set()
        assert release.wait(timeout=10)
        return real_parse(body, content_type)

    monkeypatch.setattr(import_service, "parse_upload", slow_parse)
    monkeypatch.setattr(imports_router, "IMPORT_WAIT_SECONDS", 0.3)
    with api:  # one event loop for every request, as in a worker
        first: list[Any] = []
        thread = threading.Thread(
            target=lambda: first.append(_post_csv(api, token, synthetic_csv(3))), daemon=True
        )
        thread.start()
        assert parsing.wait(timeout=10)
        started = time.monotonic()
        health = api.get("/healthz")
        assert health.status_code == 200 and time.monotonic() - started < 1
        started = time.monotonic()
        second = _post_csv(api, token, synthetic_csv(2))
        waited = time.monotonic() - started
        release.set()
        thread.join(timeout=10)
    assert second.status_code == 503
    assert second.headers["content-type"] == "application/problem+json"
    assert second.headers["retry-after"] == str(imports_router.IMPORT_RETRY_AFTER_SECONDS)
    assert 0.3 <= waited < 5
    assert first and first[0].status_code == 200, first


NOTE = (
    "SYNTHETIC probe data, made up only to give an upload its weight; "
    "not a statistic of any agency and not even a guess"
)


def synthetic_yaml(rows: int) -> str:
    """A SYNTHETIC bundle of `rows` observations, about 250 bytes each."""
    lines = [
        "format: statsapi-bundle/1",
        f"defaults: {{source: {SOURCE}, qualifier: exact}}",
        "observations:",
    ]
    for n, indicator, region, year in _synthetic_cells(rows):
        lines.append(
            f'  - {{indicator: {indicator}, region: "{region}", year: {year}, '
            f"value: {_sensible(n, indicator)}, "
            f"quote: {REVIEW_CLAUSE}, derived: true, note: '{NOTE}'}}"
        )
    return "\n".join(lines) + "\n"


# /healthz answers at the median within this while two 2.5 MB imports run (it took 20 s when
# they parsed on the event loop).
HEALTHZ_MEDIAN_BOUND_S = 0.5
PROBE_SECONDS = 20


def _post_import(
    base_url: str, body: bytes, headers: dict[str, str], **params: str
) -> httpx.Response | BaseException:
    """POST an import to a live server: its answer, or the error that stood for one."""
    try:
        return httpx.post(
            f"{base_url}{URL}",
            params=params,
            content=body,
            headers=headers,
            timeout=PROBE_SECONDS + 10,
        )
    except httpx.HTTPError as error:
        return error


@pytest.mark.slow
def test_live_healthz_answers_while_two_large_yaml_dry_runs_run(
    databases: DatabaseFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = databases.fresh("seeded")
    headers = {**write_key(url, name="probe"), "Content-Type": "application/yaml"}
    body = synthetic_yaml(get_settings().max_import_rows).encode()
    assert 2_300_000 < len(body) < 2_700_000, len(body)
    answers: list[httpx.Response | BaseException] = []

    def post() -> None:
        answers.append(_post_import(server.url, body, headers, dry_run="true"))

    with serving(url, tmp_path / "server.log") as server:
        posts = [threading.Thread(target=post, daemon=True) for _ in range(2)]
        started = time.monotonic()
        for thread in posts:
            thread.start()
        latencies = []
        while any(t.is_alive() for t in posts) and time.monotonic() - started < PROBE_SECONDS:
            sent = time.monotonic()
            with contextlib.suppress(httpx.TimeoutException):  # a stalled loop: time waited
                assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
            latencies.append(time.monotonic() - sent)
            time.sleep(0.05)
        for thread in posts:
            thread.join(timeout=PROBE_SECONDS + 10)
        log_tail = server.log_tail()
    statuses = [a.status_code if isinstance(a, httpx.Response) else repr(a) for a in answers]
    with capsys.disabled():
        print(
            f"\n[hostile imports] two 2.5 MB YAML dry runs: answered {statuses} within "
            f"{time.monotonic() - started:.1f} s; /healthz median "
            f"{statistics.median(latencies):.3f} s, max {max(latencies):.3f} s "
            f"({len(latencies)} requests)",
            flush=True,
        )
    assert set(statuses) <= {200, 503} and 200 in statuses, (statuses, log_tail)
    for answer in answers:
        if isinstance(answer, httpx.Response) and answer.status_code == 503:
            assert answer.headers["retry-after"]
    assert statistics.median(latencies) <= HEALTHZ_MEDIAN_BOUND_S


# -- item 9: idempotency records are small and expire ------------------------------------------


def _idempotency_rows(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(select(idempotency_table).order_by(idempotency_table.c.id)))


def _expire_all(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            update(idempotency_table).values(expires_at=utcnow() - timedelta(seconds=1))
        )


def test_an_idempotency_record_keeps_the_summary_not_the_rows_and_expires_in_a_day(
    api_and_token, seeded_engine: Engine
) -> None:  # type: ignore[no-untyped-def]
    api, token = api_and_token
    before = utcnow()
    first = _post_csv(api, token, synthetic_csv(3000), headers={"Idempotency-Key": "big-1"})
    assert first.status_code == 200 and len(first.json()["rows"]) == 3000
    [record] = _idempotency_rows(seeded_engine)
    stored = json.loads(record.response_summary)
    assert stored == {name: v for name, v in first.json().items() if name != "rows"}
    assert len(record.response_summary) < 500  # the full answer is about 250 KB
    assert timedelta(hours=24) <= record.expires_at - before < timedelta(hours=24, minutes=1)


def test_an_expired_key_imports_again_and_expired_records_are_pruned(
    api_and_token, seeded_engine: Engine
) -> None:  # type: ignore[no-untyped-def]
    api, token = api_and_token
    for key in ("old-1", "old-2"):
        assert _post_csv(api, token, synthetic_csv(2), headers={"Idempotency-Key": key}).is_success
    _expire_all(seeded_engine)
    # Expired: not replayed (a fresh answer, with its rows), and the key may name a new body.
    again = _post_csv(api, token, synthetic_csv(3), headers={"Idempotency-Key": "old-1"})
    assert again.status_code == 200, again.text
    assert "idempotent-replayed" not in again.headers and len(again.json()["rows"]) == 3
    # Storing it deleted the key's expired records: only the new one is left.
    assert [(r.key, r.expires_at > utcnow()) for r in _idempotency_rows(seeded_engine)] == [
        ("old-1", True)
    ]


# -- item 8: a writer waits for a large import instead of failing ------------------------------

# A PUT waits behind an import at the row limit: the import holds the lock about 2 s
# (app/config.py, max_import_rows), and a writer gives up at 5 s (busy timeout, statement
# timeout) with a 503, which is what this probe must never see. The client waits twice that.
PUT_WAIT_BOUND_S = 5.0


@pytest.mark.slow
def test_live_puts_during_an_import_at_the_row_limit_wait_rather_than_fail(
    databases: DatabaseFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = databases.fresh("seeded")
    headers = write_key(url, name="probe")
    rows = get_settings().max_import_rows
    body = synthetic_csv(rows, value_offset=1).encode()  # changes every row created below
    answer: list[httpx.Response | BaseException] = []
    csv_headers = {**headers, "Content-Type": "text/csv"}

    def post() -> None:
        answer.append(_post_import(server.url, body, csv_headers))

    puts: list[tuple[int, float, float]] = []  # status, sent at, answered at
    writing_at: list[float] = []  # when the import was seen holding the write lock

    def watch_the_lock() -> None:
        while importer.is_alive():
            if write_in_progress(url):
                writing_at.append(time.monotonic())
            time.sleep(0.02)

    with serving(url, tmp_path / "server.log", workers=2) as server:
        created = _post_import(server.url, synthetic_csv(rows).encode(), csv_headers)
        assert isinstance(created, httpx.Response) and created.status_code == 200, created
        importer = threading.Thread(target=post, daemon=True)
        watcher = threading.Thread(target=watch_the_lock, daemon=True)
        started = time.monotonic()
        importer.start()
        watcher.start()
        while importer.is_alive() and time.monotonic() - started < PROBE_SECONDS:
            sent = time.monotonic()
            response = httpx.put(
                f"{server.url}/api/v1/observations/adaptive_training_trainees/320400/1949",
                json={"value": len(puts), "source": SOURCE, "note": "SYNTHETIC probe value"}
                | SYNTHETIC_DERIVED,
                headers=headers,
                timeout=PUT_WAIT_BOUND_S * 2,
            )
            puts.append((response.status_code, sent, time.monotonic()))
            time.sleep(0.1)
        importer.join(timeout=PROBE_SECONDS + 10)
        watcher.join(timeout=5)
        log_tail = server.log_tail()
    overlapping = [
        (status, done - sent)
        for status, sent, done in puts
        if any(sent <= seen <= done for seen in writing_at)
    ]
    longest = max(done - sent for _, sent, done in puts)
    with capsys.disabled():
        print(
            f"\n[hostile imports] {rows}-row import changing every row: "
            f"{answer[0].status_code if isinstance(answer[0], httpx.Response) else answer}; "
            f"{len(puts)} PUTs meanwhile, statuses {sorted({s for s, _, _ in puts})}, "
            f"{len(overlapping)} waited on its write lock {overlapping}; longest wait "
            f"{longest:.2f} s",
            flush=True,
        )
    assert isinstance(answer[0], httpx.Response) and answer[0].status_code == 200, log_tail
    assert overlapping, "no PUT was sent while the import held the write lock"
    # Every PUT got its answer, none a 503: the wait is printed above, not asserted (a loaded
    # machine makes it longer; the busy timeout is what turns a wait into a failure).
    assert {status for status, _, _ in puts} <= {200, 201}, (puts, log_tail)
