"""Statement shapes cannot grow a worker (issue 11, item 5).

A read's statement is built and compiled once per shape: which filters, how many codes in each,
the sort. Shapes come from the query string, so each statement builder keeps only its latest
`STATEMENT_CACHE_SIZE` shapes, and a compiled statement lives only as long as its statement
(app/prepared.py). Before, compiled statements were kept forever: 3,000 `sort` orders grew a
worker by 240 MB. The last test is a probe: a real server's memory while thousands of shapes
arrive.
"""

import gc
import itertools
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, bindparam, select
from sqlalchemy.engine import Dialect

from app import prepared
from app.comparisons import ComparisonShape, comparison_statement, series_statement
from app.filters import FROM, INDICATOR, REGION, TO, YEAR, Filter, Shape
from app.models import observation_table
from app.prepared import STATEMENT_BUILDERS, STATEMENT_CACHE_SIZE, prepare
from app.queries import ListShape, _indicators_by_code, list_statements
from app.schemas import MAX_CODES_PER_FILTER, ObservationQuery
from tests.conftest import DatabaseFactory
from tests.live import rss_mb, serving

API = "/api/v1/observations"
# The probe: warm-up shapes (every cache full, the allocator at its steady state), then the
# shapes measured. On SQLite, with the caches unbounded (before), the 600 shapes grew the
# worker by 52 MB; bounded, by 2 to 4 MB.
WARM_UP_SHAPES = 4 * STATEMENT_CACHE_SIZE
PROBE_SHAPES = 600
PROBE_RSS_GROWTH_MB = 15
# Each builder and how many statements one of its shapes holds.
BUILDERS: dict[Any, int] = {
    list_statements: 2,  # the page and the count
    comparison_statement: 1,
    series_statement: 1,
    _indicators_by_code: 1,
}


SORT_KEYS = ("indicator", "region", "year", "value", "category")  # what `sort` accepts


def sort_orders() -> Iterator[str]:
    """Every `sort` the API accepts: each key at most once, ascending or descending."""
    for length in range(1, len(SORT_KEYS) + 1):
        for keys in itertools.permutations(SORT_KEYS, length):
            for signs in itertools.product(("", "-"), repeat=length):
                yield ",".join(sign + key for sign, key in zip(signs, keys, strict=True))


def _given(*counts: tuple[Filter, int]) -> Shape:
    """A statement shape: the filters given (a count above zero) and their counts."""
    return tuple((declared, count) for declared, count in counts if count)


def list_shapes(count: int) -> Iterator[ListShape]:
    """`count` distinct observation-list shapes: every sort order, with filters varied too (the
    heavier history filters now and then: they double the time to build a statement)."""
    for i, sort in enumerate(itertools.islice(sort_orders(), count)):
        counts = ((REGION, i % 4), (INDICATOR, i % 3), (YEAR, int(i % 2 == 0)))
        yield ListShape(
            sort=sort,
            filters=_given(*counts),
            latest=i % 13 == 0,
            as_of=i % 29 == 0,
            changed_after=i % 31 == 0,
        )


def _flood_every_builder(count: int, dialect: Dialect) -> None:
    """`count` distinct shapes for each builder (codes per filter bounded as the API bounds
    them), each statement compiled for `dialect` as a request would."""
    codes = MAX_CODES_PER_FILTER
    for i, shape in enumerate(list_shapes(count)):
        statements = [
            *list_statements(shape),
            comparison_statement(
                ComparisonShape(
                    ((INDICATOR, i % codes + 1), (REGION, i // codes + 1)), as_of=i % 2 == 0
                )
            ),
            series_statement(
                _given((REGION, i % codes + 1), (FROM, i // codes % 2), (TO, i // codes // 2 % 2))
            ),
            _indicators_by_code(i % codes + 1),
        ]
        for statement in statements:
            prepare(statement, dialect)


def _statements_held() -> int:
    return sum(per * builder.cache_info().currsize for builder, per in BUILDERS.items())


def _compiled_apart_from_the_builders() -> int:
    """Compiled statements that no builder holds (module constants, other tests' statements)."""
    for builder in STATEMENT_BUILDERS:
        builder.cache_clear()
    gc.collect()
    return len(prepared._prepared)


def _assert_every_cache_at_its_bound(apart: int) -> None:
    for builder in STATEMENT_BUILDERS:
        info = builder.cache_info()
        assert (info.maxsize, info.currsize) == (STATEMENT_CACHE_SIZE, STATEMENT_CACHE_SIZE)
    gc.collect()
    assert len(prepared._prepared) <= apart + _statements_held()
    assert _statements_held() == 5 * STATEMENT_CACHE_SIZE


def test_every_statement_builder_has_the_one_bound() -> None:
    assert set(BUILDERS) <= set(STATEMENT_BUILDERS)
    for builder in STATEMENT_BUILDERS:
        assert builder.cache_info().maxsize == STATEMENT_CACHE_SIZE


def test_shapes_past_the_bound_leave_every_statement_cache_at_its_bound(
    world_engine: Engine, world: TestClient
) -> None:
    assert world.get(API).status_code == 200  # the module's constant statements compiled
    apart = _compiled_apart_from_the_builders()

    _flood_every_builder(STATEMENT_CACHE_SIZE + 16, world_engine.dialect)

    _assert_every_cache_at_its_bound(apart)
    # Evicted shapes are built again when asked for, and answer as before.
    assert world.get(API, params={"sort": "-value"}).status_code == 200
    assert world.get(API, params={"sort": "-year,value", "region": "320400"}).json()["total"] == 15
    assert _compiled_apart_from_the_builders() == apart  # the compiled ones went with them


@pytest.mark.slow
def test_five_thousand_list_shapes_leave_every_statement_cache_at_its_bound(
    world_engine: Engine,
) -> None:
    """The issue's figure: 5,000 distinct sort orders and filter combinations (about 30 s:
    building and compiling a statement takes milliseconds)."""
    apart = _compiled_apart_from_the_builders()
    _flood_every_builder(STATEMENT_CACHE_SIZE, world_engine.dialect)  # every builder full

    for shape in list_shapes(5000):
        for statement in list_statements(shape):
            prepare(statement, world_engine.dialect)

    _assert_every_cache_at_its_bound(apart)


def test_a_compiled_statement_goes_with_its_statement(world_engine: Engine) -> None:
    """Compiled forms are keyed by the statement object itself, weakly: none outlives its
    statement, so none can be found for a later statement at the same address."""
    dialect = world_engine.dialect
    statement = select(observation_table.c.id).where(observation_table.c.year == bindparam("y"))
    first = prepare(statement, dialect)
    assert prepare(statement, dialect) is first
    gc.collect()
    compiled = len(prepared._prepared)
    statement_ref = weakref.ref(statement)

    del statement
    gc.collect()

    assert statement_ref() is None
    assert len(prepared._prepared) == compiled - 1


def test_every_sort_order_the_api_accepts_is_counted_in_the_bound_s_reasoning() -> None:
    """app/prepared.py's comment: 6,330 sort orders, far more than a cache should hold."""
    orders = list(sort_orders())
    assert len(set(orders)) == 6330
    for sort in orders[:: len(orders) // 50]:
        assert ObservationQuery.model_validate({"sort": sort}).sort == sort


@pytest.mark.parametrize(
    ("sort", "repeated"),
    [
        ("year,-year", "year"),
        ("year,year", "year"),
        ("-value,indicator,value", "value"),
        ("region,-category,-region,category", "category, region"),
    ],
)
def test_a_sort_key_given_twice_is_422_naming_sort(
    world: TestClient, sort: str, repeated: str
) -> None:
    response = world.get(API, params={"sort": sort})

    assert response.status_code == 422, response.text[:300]
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert [(error["field"], error["in"]) for error in body["errors"]] == [("sort", "query")]
    assert f"repeated: {repeated}" in body["errors"][0]["message"]
    assert "'sort'" in body["detail"]


def test_a_sort_with_each_key_once_is_accepted(world: TestClient) -> None:
    response = world.get(API, params={"sort": "-year,indicator,-region,value,category"})
    assert response.status_code == 200
    assert [row["year"] for row in response.json()["data"]][:1] == [2023]


@pytest.mark.slow
def test_a_live_worker_stays_small_while_thousands_of_shapes_arrive(
    databases: DatabaseFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Anonymous lists, each with a sort order and filters never sent before (15-20 s)."""
    url = databases.fresh("seeded")
    with serving(url, tmp_path / "server.log") as server, httpx.Client(timeout=10) as client:
        [worker] = server.worker_pids()
        regions = [r["code"] for r in client.get(f"{server.url}/api/v1/regions").json()["data"]]

        def send(shapes: list[tuple[str, int, bool]]) -> None:
            for sort, region_count, as_of in shapes:
                params: dict[str, Any] = {"sort": sort, "limit": 1}
                if region_count:
                    params["region"] = ",".join(regions[:region_count])
                if as_of:
                    params["as_of"] = "2999-01-01T00:00:00Z"
                response = client.get(f"{server.url}{API}", params=params)
                assert response.status_code == 200, response.text[:300]

        shapes = [
            (sort, i % len(regions), i % 10 == 0)
            for i, sort in enumerate(itertools.islice(sort_orders(), WARM_UP_SHAPES + PROBE_SHAPES))
        ]
        send(shapes[:WARM_UP_SHAPES])
        before = rss_mb(worker)
        started = time.monotonic()
        send(shapes[WARM_UP_SHAPES:])
        seconds = time.monotonic() - started
        after = rss_mb(worker)
    with capsys.disabled():
        print(
            f"\n{PROBE_SHAPES} new list shapes in {seconds:.1f} s: worker RSS "
            f"{before:.0f} -> {after:.0f} MB ({after - before:+.1f} MB, bound "
            f"{PROBE_RSS_GROWTH_MB} MB)"
        )
    assert after - before < PROBE_RSS_GROWTH_MB
