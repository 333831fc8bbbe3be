"""Reads an attacker would send (issue 11): history scans, edge times, huge lists, odd text.

Each test pins a bound: `as_of` reads probe an index instead of ranking the whole history, a
SQLite read past its time limit is a 503, times that overflow are 422s, every list is paged or
bounded, unknown parameters are listed up to a limit, and `q` matches text, not patterns.

The long histories here are SYNTHETIC (`synthetic_history`): made-up revisions of the test
world (tests/factories.py), written straight into a test database.
"""

import statistics
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, insert, select, update

from app import queries
from app.config import get_settings
from app.db import build_engine, write_transaction
from app.models import data_version_table, observation_table, revision_table
from app.prepared import prepare
from app.schemas import ObservationQuery
from tests.conftest import ClientFactory, DatabaseFactory
from tests.factories import load_document, world_document
from tests.live import serving

API = "/api/v1"
# 150 years x 5 series = 750 series, 80 revisions each: 60,000 revisions (issue 11 measured
# 120,000; half is enough to make a full ranking visibly slow and is built in a few seconds).
HISTORY_YEARS = range(1950, 2100)
HISTORY_REVISIONS = 80


def synthetic_history(engine: Engine, *, revisions: int = HISTORY_REVISIONS) -> Any:
    """Load the SYNTHETIC world over HISTORY_YEARS, then give every series `revisions` states
    in all, one second apart, the published value being the last. Returns the instant halfway
    through the history (an `as_of` that must read revisions, not the published values)."""
    load_document(engine, world_document(years=HISTORY_YEARS))
    with write_transaction(engine) as connection:
        first = list(connection.execute(select(revision_table)).mappings())
        start = connection.execute(select(func.max(revision_table.c.recorded_at))).scalar_one()
        rows = []
        for number in range(2, revisions + 1):
            recorded_at = start + timedelta(seconds=number)
            for state in first:
                rows.append(
                    {
                        **{k: v for k, v in state.items() if k != "id"},
                        "revision": number,
                        "change_seq": len(first) + len(rows) + 1,  # numbered as writes number
                        "action": "update",
                        "value": state["value"] + number,
                        "recorded_at": recorded_at,
                        "recorded_by": "synthetic",
                    }
                )
        connection.execute(insert(revision_table), rows)
        connection.execute(update(data_version_table).values(change_seq=len(first) + len(rows)))
        last = start + timedelta(seconds=revisions)
        connection.execute(
            update(observation_table).values(
                revision=revisions,
                value=observation_table.c.value + revisions,
                updated_at=last,
            )
        )
    return start + timedelta(seconds=revisions // 2, milliseconds=500)


@pytest.fixture(scope="module")
def history(databases: DatabaseFactory) -> Iterator[tuple[str, Any]]:
    """(URL of a database holding the 60,000-revision SYNTHETIC history, its middle instant);
    read-only."""
    url = databases.fresh("empty")
    engine = build_engine(url)
    middle = synthetic_history(engine)
    engine.dispose()
    yield url, middle


@pytest.fixture
def history_engine(history: tuple[str, Any]) -> Iterator[Engine]:
    engine = build_engine(history[0])
    yield engine
    engine.dispose()


# --- item 4: as_of reads probe an index ---------------------------------------------------


def _plan(engine: Engine, query: ObservationQuery) -> str:
    """The plan of the count statement of an observation list (the one that reads every
    series), as one text."""
    _page, count = queries.list_statements(queries.ListShape.of(query.filters()))
    prepared = prepare(count, engine.dialect)
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        explain = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
        cursor.execute(
            explain + prepared.sql, prepared.parameters(queries.list_parameters(query.filters()))
        )
        return "\n".join(str(row[3] if sqlite else row[0]) for row in cursor.fetchall())


def test_as_of_reads_probe_the_as_of_index_instead_of_ranking_the_history(
    history_engine: Engine, history: tuple[str, Any]
) -> None:
    query = ObservationQuery.model_validate({"limit": 1, "as_of": history[1].isoformat()})
    plan = _plan(history_engine, query)
    assert "WindowAgg" not in plan  # PostgreSQL's row_number() over the whole history
    if history_engine.dialect.name == "sqlite":
        assert "ix_observation_revision_as_of" in plan, plan
        assert "TEMP B-TREE" not in plan, plan  # no sort of the history
    else:
        assert "Anti Join" in plan, plan


def test_as_of_and_updated_after_answer_from_the_history(
    make_client: ClientFactory, history_engine: Engine, history: tuple[str, Any]
) -> None:
    client = make_client(history_engine)
    middle = history[1].isoformat()
    then = client.get(f"{API}/observations", params={"as_of": middle, "limit": 1})
    assert then.status_code == 200, then.text
    assert then.json()["total"] == 750
    assert then.json()["data"][0]["revision"] == HISTORY_REVISIONS // 2
    since = client.get(f"{API}/observations", params={"updated_after": middle, "limit": 1})
    assert since.json()["total"] == 750
    assert since.json()["data"][0]["revision"] == HISTORY_REVISIONS


# --- item 4: a SQLite read past its time limit is a 503 -------------------------------------


@pytest.fixture
def read_timeout_ms(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A 1 ms limit on SQLite reads (and on PostgreSQL statements, for engines built now)."""
    monkeypatch.setenv("STATSAPI_SQLITE_READ_TIMEOUT_MS", "1")
    monkeypatch.setenv("STATSAPI_PG_STATEMENT_TIMEOUT_MS", "1")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_a_read_past_the_time_limit_is_503_with_retry_after(
    read_timeout_ms: None,
    monkeypatch: pytest.MonkeyPatch,
    make_client: ClientFactory,
    history: tuple[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = build_engine(history[0])  # built under the 1 ms limits
    params = {"as_of": history[1].isoformat(), "limit": 1}
    try:
        client = make_client(engine)
        response = client.get(f"{API}/observations", params=params)
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"]
        assert response.headers["content-type"] == "application/problem+json"
        assert "Traceback" not in caplog.text
        if engine.dialect.name == "sqlite":  # the limit is read per read: lift it
            monkeypatch.setenv("STATSAPI_SQLITE_READ_TIMEOUT_MS", "5000")
            get_settings.cache_clear()
            again = client.get(f"{API}/observations", params=params)
            assert again.status_code == 200, again.text  # the interrupted connection serves on
    finally:
        engine.dispose()


# --- item 4: the live probe -------------------------------------------------------------------

PROBE_SECONDS = 6
PROBE_CLIENTS = 4
# /healthz answers in about a millisecond when idle. Issue 11 measured a median of 4.4 s with
# four clients reading `as_of` from 120,000 revisions on the event loop; with those reads off
# the loop (and SQL that probes an index), the median stays far below this bound, which leaves
# room for a machine shared with other work.
HEALTHZ_MEDIAN_BOUND_S = 0.25


@pytest.mark.slow
def test_as_of_reads_from_several_clients_leave_healthz_fast(
    history: tuple[str, Any], tmp_path: Path
) -> None:
    url, middle = history
    statuses: list[int] = []
    with serving(url, tmp_path / "server.log") as server:
        stop = time.monotonic() + PROBE_SECONDS

        def read_history(client_number: int) -> None:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                while time.monotonic() < stop:
                    as_of = (middle + timedelta(microseconds=client_number)).isoformat()
                    params = {"as_of": as_of, "limit": 1, "offset": len(statuses) % 700}
                    statuses.append(http.get(f"{API}/observations", params=params).status_code)

        readers = [threading.Thread(target=read_history, args=(n,)) for n in range(PROBE_CLIENTS)]
        for reader in readers:
            reader.start()
        latencies = []
        with httpx.Client(base_url=server.url, timeout=30) as http:
            time.sleep(0.5)  # let the readers start
            while time.monotonic() < stop:
                started = time.perf_counter()
                assert http.get("/healthz").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.05)
        for reader in readers:
            reader.join(timeout=60)
        log = server.log_tail(20_000)
    median = statistics.median(latencies)
    summary = (
        f"/healthz median {median * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms over "
        f"{len(latencies)} calls; {len(statuses)} as_of reads: "
        f"{ {s: statuses.count(s) for s in set(statuses)} }"
    )
    print(summary)
    assert set(statuses) <= {200, 503}, summary
    assert statuses.count(200) >= PROBE_CLIENTS, summary
    assert median < HEALTHZ_MEDIAN_BOUND_S, summary
    assert "Traceback" not in log


# --- item 12: times that overflow in UTC are 422s -------------------------------------------


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/observations?as_of=0001-01-01T00:00:00%2B01:00", "as_of"),
        ("/observations?updated_after=9999-12-31T23:59:59-01:00", "updated_after"),
        ("/comparisons?year=2023&as_of=0001-01-01T00:00:00%2B01:00", "as_of"),
        ("/comparisons?year=2023&as_of=9999-12-31T23:59:59-01:00", "as_of"),
    ],
)
def test_a_time_outside_the_utc_calendar_is_422_naming_it(
    client: Any, path: str, field: str, caplog: pytest.LogCaptureFixture
) -> None:
    response = client.get(API + path)
    assert response.status_code == 422, response.text
    assert [(e["field"], e["in"]) for e in response.json()["errors"]] == [(field, "query")]
    assert "UTC" in response.json()["errors"][0]["message"]
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize(
    "query",
    [
        "as_of=0001-01-01T00:00:00Z",
        "updated_after=9999-12-31T23:59:59Z",
        "as_of=2024-01-01T00:00:00%2B23:59",
    ],
)
def test_times_at_the_edges_of_the_calendar_are_answered(client: Any, query: str) -> None:
    assert client.get(f"{API}/observations?{query}").status_code == 200


# --- item 13: comparisons are paged ---------------------------------------------------------

WIDE_INDICATORS = 120  # more pairs than the default page of 100


def wide_document() -> dict[str, Any]:
    """The SYNTHETIC world's reference data with WIDE_INDICATORS more indicators, each with a
    2023 value in one region: 120 comparison pairs (plus the world's own 5)."""
    document = world_document(years=range(2023, 2024))
    for number in range(WIDE_INDICATORS):
        code = f"wide{number:03d}"
        document["indicators"].append(
            {
                "code": code,
                "category": "beta",
                "unit": "person",
                "measure_type": "flow",
                "name_zh": f"合成{number}",
                "name_en": f"Synthetic {number}",
            }
        )
        document["observations"].append(
            {
                "indicator": code,
                "region": "320411",
                "year": 2023,
                "value": str(number),
                "qualifier": "exact",
                "source": document["sources"][0]["code"],
                "quote": f"synthetic {code}",
            }
        )
    return document


@pytest.fixture(scope="module")
def wide_engine(databases: DatabaseFactory) -> Iterator[Engine]:
    engine = build_engine(databases.fresh("empty"))
    load_document(engine, wide_document())
    yield engine
    engine.dispose()


def test_comparisons_answer_one_page_of_100_by_default(
    make_client: ClientFactory, wide_engine: Engine
) -> None:
    response = make_client(wide_engine).get(f"{API}/comparisons", params={"year": 2023})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (len(body["data"]), body["total"], body["limit"], body["offset"]) == (100, 125, 100, 0)
    assert body["next"] == "/api/v1/comparisons?year=2023&limit=100&offset=100"
    assert response.headers["link"] == f'<{body["next"]}>; rel="next"'
    assert response.headers["x-total-count"] == "125"


def test_comparison_pages_follow_next_to_the_end_in_one_stable_order(
    make_client: ClientFactory, wide_engine: Engine
) -> None:
    client = make_client(wide_engine)
    whole = client.get(f"{API}/comparisons", params={"year": 2023, "limit": 1000}).json()
    assert whole["next"] is None and len(whole["data"]) == whole["total"] == 125
    seen: list[dict[str, Any]] = []
    url: str | None = f"{API}/comparisons?year=2023&region=320411&region=320400,320412&limit=40"
    while url:
        body = client.get(url).json()
        assert body["total"] == 125
        seen += body["data"]
        url = body["next"]
    assert seen == whole["data"]  # review display order, then region, as unpaged


def test_comparison_pages_in_csv_carry_the_link_and_the_limits_are_enforced(
    make_client: ClientFactory, wide_engine: Engine
) -> None:
    client = make_client(wide_engine)
    csv = client.get(f"{API}/comparisons", params={"year": 2023, "limit": 7, "format": "csv"})
    assert csv.status_code == 200
    assert len(csv.text.strip().splitlines()) == 1 + 7
    assert "offset=7" in csv.headers["link"]
    for bad in ({"limit": 1001}, {"limit": 0}, {"offset": -1}):
        response = client.get(f"{API}/comparisons", params={"year": 2023, **bad})
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == next(iter(bad))
    past = client.get(f"{API}/comparisons", params={"year": 2023, "offset": 500}).json()
    assert (past["data"], past["total"], past["next"]) == ([], 125, None)


# --- item 17: bounded error lists, q as text ------------------------------------------------


def test_unknown_parameters_are_listed_up_to_a_limit_and_counted_past_it(client: Any) -> None:
    from app.params import MAX_LISTED_ERRORS

    unknown = "&".join(f"unknown{number}=x" for number in range(4000))  # about 55 KB
    response = client.get(f"{API}/observations?{unknown}")
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert len(errors) == MAX_LISTED_ERRORS + 1
    assert errors[0]["field"] == "unknown0"
    assert f"and {4000 - MAX_LISTED_ERRORS} more" in errors[-1]["message"]
    assert len(response.content) < 10_000  # was 690 KB


def test_a_few_unknown_parameters_are_all_named(client: Any) -> None:
    response = client.get(f"{API}/indicators?colour=red&size=big")
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["colour", "size"]


@pytest.mark.parametrize("text", ["_", "%", "__", "%_%", "\\"])
def test_q_matches_its_text_not_a_like_pattern(client: Any, text: str) -> None:
    everything = client.get(f"{API}/indicators").json()["data"]
    literal = [
        i["code"]
        for i in everything
        if text in i["name_zh"].lower() or text in i["name_en"].lower()
    ]
    response = client.get(f"{API}/indicators", params={"q": text})
    assert response.status_code == 200
    assert [i["code"] for i in response.json()["data"]] == literal
    assert len(literal) < len(everything)


def test_q_still_finds_names_in_either_language(client: Any) -> None:
    for text in ("培训", "TRAINING"):
        found = client.get(f"{API}/indicators", params={"q": text}).json()["data"]
        assert found and all(text.lower() in (i["name_zh"] + i["name_en"]).lower() for i in found)
