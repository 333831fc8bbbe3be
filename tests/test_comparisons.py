"""Comparisons with hand-checked numbers, on SYNTHETIC fixtures that live only in tests.

Each indicator below is one case; its 2021-2023 values are chosen so that the expected change,
percentage and direction can be checked by hand (written next to each case).
"""

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.comparisons import APPROXIMATE_TOLERANCE, Value, cagr_pct, compare
from tests.conftest import count_statements
from tests.factories import SYNTHETIC_SOURCE, load_document, world_document

API = "/api/v1"

# indicator: ({year: (value, qualifier[, unit])}, unit, measure_type)
CASES: dict[str, tuple[dict[int, tuple[str, ...]], str, str]] = {
    "rise": ({2022: ("100", "exact"), 2023: ("150", "exact")}, "person", "flow"),
    "fall": ({2022: ("200", "exact"), 2023: ("150", "exact")}, "person", "flow"),
    "rate": ({2022: ("90.1", "exact"), 2023: ("96.6", "exact")}, "percent", "rate"),
    "from_zero": ({2022: ("0", "exact"), 2023: ("5", "exact")}, "person", "flow"),
    "new": ({2023: ("12", "exact")}, "person", "flow"),
    "gone": ({2022: ("12", "exact")}, "person", "flow"),
    "floor_base": ({2022: ("300", "at_least"), 2023: ("320", "exact")}, "person", "flow"),
    "floor_now": ({2022: ("300", "exact"), 2023: ("320", "at_least")}, "person", "flow"),
    "floors": ({2022: ("300", "at_least"), 2023: ("320", "at_least")}, "person", "flow"),
    "ceilings": ({2022: ("300", "at_most"), 2023: ("320", "at_most")}, "person", "flow"),
    "rate_floors": ({2022: ("90", "at_least"), 2023: ("95", "at_least")}, "percent", "rate"),
    "near_clear": ({2022: ("800", "approximate"), 2023: ("1000", "exact")}, "person", "flow"),
    "near_open": ({2022: ("800", "approximate"), 2023: ("850", "exact")}, "person", "flow"),
    "same": ({2022: ("7", "exact"), 2023: ("7", "exact")}, "item", "flow"),
    "tenths": ({2022: ("0.1", "exact"), 2023: ("0.3", "exact")}, "yuan", "flow"),
    "half_up": ({2022: ("200", "exact"), 2023: ("200.01", "exact")}, "yuan", "flow"),
    "unit_moved": ({2022: ("5", "exact", "person_time"), 2023: ("5", "exact")}, "person", "flow"),
    "long": (
        {2019: ("190", "exact"), 2021: ("210", "at_least"), 2023: ("230", "exact")},
        "person",
        "flow",
    ),
}


def _document() -> dict[str, Any]:
    document = world_document(years=range(0))
    document["categories"] = [{"code": "cases", "name_zh": "案例", "name_en": "Cases"}]
    document["units"].append({"code": "item", "name_zh": "项", "name_en": "items"})
    document["units"].append({"code": "person_time", "name_zh": "人次", "name_en": "visits"})
    document["indicators"] = [
        {
            "code": code,
            "category": "cases",
            "unit": unit,
            "measure_type": measure,
            "name_zh": code,
            "name_en": code,
        }
        for code, (_, unit, measure) in CASES.items()
    ]
    document["observations"] = [
        {
            "indicator": code,
            "region": "320400",
            "year": year,
            "value": value[0],
            "qualifier": value[1],
            **({"unit": value[2]} if len(value) > 2 else {}),
            "source": SYNTHETIC_SOURCE,
            "quote": f"synthetic {code} {year}",
        }
        for code, (years, _, _) in CASES.items()
        for year, value in years.items()
    ]
    # Xinbei has a value in 2023 only.
    document["observations"].append(
        {
            "indicator": "fall",
            "region": "320411",
            "year": 2023,
            "value": "150",
            "source": SYNTHETIC_SOURCE,
            "quote": "synthetic Xinbei",
        }
    )
    return document


@pytest.fixture(scope="module")
def cases_engine(databases) -> Engine:  # type: ignore[no-untyped-def]
    from tests.conftest import _engine

    for engine in _engine(databases.fresh("empty")):
        load_document(engine, _document())
        yield engine


@pytest.fixture
def cases(make_client, cases_engine: Engine) -> TestClient:  # type: ignore[no-untyped-def]
    return make_client(cases_engine)


def _rows(client: TestClient, query: str) -> dict[tuple[str, str], dict[str, Any]]:
    response = client.get(f"{API}/comparisons?{query}")
    assert response.status_code == 200, response.text
    return {(r["indicator"], r["region"]): r for r in response.json()["data"]}


def _pick(row: dict[str, Any], *keys: str) -> tuple[Any, ...]:
    return tuple(row[key] for key in keys)


KEYS = ("change", "change_pct", "change_pp", "direction", "comparable", "reason")


@pytest.mark.parametrize(
    ("indicator", "expected"),
    [
        # 150 - 100 = 50; 50 / 100 = 50%
        ("rise", (50, 50.0, None, "up", True, None)),
        # 150 - 200 = -50; -50 / 200 = -25%
        ("fall", (-50, -25.0, None, "down", True, None)),
        # 96.6 - 90.1 = 6.5 points, exactly; never a percent of a percent
        ("rate", (6.5, None, 6.5, "up", True, None)),
        # 5 - 0 = 5, but 5 / 0 is undefined
        ("from_zero", (5, None, None, "up", False, "base_is_zero")),
        ("new", (None, None, None, "unknown", False, "no_base_value")),
        ("gone", (None, None, None, "unknown", False, "no_current_value")),
        # base "300余" is [300, inf): change in (-inf, 20], so the direction is open
        ("floor_base", (20, 6.67, None, "unknown", True, None)),
        # now "320余" is [320, inf): change in [20, inf) > 0
        ("floor_now", (20, 6.67, None, "up", True, None)),
        # "300余" then "320余": the change is anywhere in (-inf, inf), so no figure is given
        # (320 - 300 = 20, +6.67%, would be charted as a rise that nothing supports)
        ("floors", (None, None, None, "unknown", True, None)),
        ("ceilings", (None, None, None, "unknown", True, None)),
        # the same for a rate: no change in points either
        ("rate_floors", (None, None, None, "unknown", True, None)),
        # base "近800" is [720, 880]: 1000 - 880 = 120 > 0
        ("near_clear", (200, 25.0, None, "up", True, None)),
        # base "近800" is [720, 880]: change in [-30, 130] straddles zero
        ("near_open", (50, 6.25, None, "unknown", True, None)),
        ("same", (0, 0.0, None, "flat", True, None)),
        # 0.3 - 0.1 = 0.2 exactly, 200%
        ("tenths", (0.2, 200.0, None, "up", True, None)),
        # 0.01 / 200 = 0.005% -> rounds half up to 0.01
        ("half_up", (0.01, 0.01, None, "up", True, None)),
        ("unit_moved", (None, None, None, "unknown", False, "unit_changed")),
    ],
)
def test_year_over_year_rules(cases: TestClient, indicator: str, expected: tuple) -> None:  # type: ignore[type-arg]
    row = _rows(cases, "year=2023")[(indicator, "320400")]
    assert _pick(row, *KEYS) == expected


@pytest.mark.parametrize(
    ("indicator", "bounds"),
    [
        ("rise", (50, 50, "exact")),
        ("floor_base", (None, 20, "at_most")),
        ("floor_now", (20, None, "at_least")),
        ("near_open", (-30, 130, "approximate")),
        ("floors", (None, None, "unbounded")),
        ("ceilings", (None, None, "unbounded")),
        ("rate_floors", (None, None, "unbounded")),
    ],
)
def test_change_bounds_follow_the_qualifiers(cases: TestClient, indicator: str, bounds) -> None:  # type: ignore[no-untyped-def]
    row = _rows(cases, "year=2023")[(indicator, "320400")]
    assert _pick(row, "change_min", "change_max", "change_qualifier") == bounds


def test_a_region_present_in_one_year_only_has_no_base_value(cases: TestClient) -> None:
    row = _rows(cases, "year=2023")[("fall", "320411")]
    assert _pick(row, "value", "base_value", "reason") == (150, None, "no_base_value")


def test_base_year_two_or_more_years_back(cases: TestClient) -> None:
    row = _rows(cases, "year=2023&base_year=2019&indicator=long")[("long", "320400")]
    # 230 - 190 = 40; 40 / 190 = 21.0526% -> 21.05
    assert _pick(row, "base_year", "base_value", "change", "change_pct", "direction") == (
        2019,
        190,
        40,
        21.05,
        "up",
    )


def test_default_base_year_is_the_year_before(cases: TestClient) -> None:
    body = cases.get(f"{API}/comparisons?year=2023&indicator=rise").json()
    assert (body["year"], body["base_year"], body["total"]) == (2023, 2022, 1)


def test_values_stay_exact_in_the_json_text(cases: TestClient) -> None:
    text = cases.get(f"{API}/comparisons?year=2023&indicator=rate,tenths").text
    assert '"change_pp":6.5' in text and '"change":0.2' in text
    assert "6.4999" not in text and "0.19999" not in text


def test_comparisons_csv_has_one_row_per_pair(cases: TestClient) -> None:
    response = cases.get(f"{API}/comparisons?year=2023&indicator=rise&format=csv")
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("indicator,indicator_name_zh")
    assert lines[0].endswith("change_qualifier,direction,comparable,reason")
    assert len(lines) == 2 and ",50,50,,50,50,exact,up,true," in lines[1]


def test_summary_counts_directions_per_category(cases: TestClient) -> None:
    body = cases.get(f"{API}/comparisons/summary?year=2023").json()
    [tile] = body["data"]
    # up: rise rate from_zero (0 -> 5 rose, though no percentage) floor_now near_clear tenths
    # half_up; down: fall; flat: same; unknown: floor_base near_open floors ceilings
    # rate_floors; not comparable: new gone unit_moved long (no 2022 value) and Xinbei's fall
    # (2023 only).
    assert _pick(tile, "up", "down", "flat", "unknown", "not_comparable", "total") == (
        7,
        1,
        1,
        5,
        5,
        19,
    )


def test_series_changes_from_the_previous_available_year_and_cagr(cases: TestClient) -> None:
    body = cases.get(f"{API}/indicators/long/series").json()
    [series] = body["series"]
    points = [_pick(p, "year", "base_year", "change", "direction") for p in series["points"]]
    assert points == [
        (2019, None, None, "unknown"),
        (2021, 2019, 20, "up"),  # [210, inf) - 190 > 0
        (2023, 2021, 20, "unknown"),  # 230 - [210, inf) is at most 20
    ]
    # (230 / 190) ** (1 / 4) - 1 = 4.8925...% over 2019..2023
    assert (series["first_year"], series["last_year"], series["cagr_pct"]) == (2019, 2023, 4.89)


def test_series_points_give_no_figure_for_an_unbounded_change(cases: TestClient) -> None:
    [series] = cases.get(f"{API}/indicators/floors/series").json()["series"]
    keys = ("year", "change", "change_pct", "change_min", "change_max", "change_qualifier")
    assert [_pick(p, *keys) for p in series["points"]] == [
        (2022, None, None, None, None, None),
        (2023, None, None, None, None, "unbounded"),
    ]


def test_an_unbounded_change_in_csv_has_empty_figures(cases: TestClient) -> None:
    response = cases.get(f"{API}/comparisons?year=2023&indicator=floors&format=csv")
    header, row = response.content.decode("utf-8-sig").splitlines()
    cells = dict(zip(header.split(","), row.split(","), strict=True))
    assert (cells["value"], cells["base_value"]) == ("320", "300")
    assert [cells[k] for k in ("change", "change_pct", "change_pp")] == ["", "", ""]
    assert (cells["change_qualifier"], cells["direction"]) == ("unbounded", "unknown")


def test_series_filters_years_and_says_why_no_cagr(cases: TestClient) -> None:
    body = cases.get(f"{API}/indicators/long/series?from=2020").json()
    [series] = body["series"]
    assert [p["year"] for p in series["points"]] == [2021, 2023]
    assert (series["cagr_pct"], series["cagr_reason"]) == (None, "inexact_endpoint")
    rate = cases.get(f"{API}/indicators/rate/series").json()["series"][0]
    assert (rate["cagr_pct"], rate["cagr_reason"]) == (None, "rate")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("year=2023&base_year=2023", "base_year"),
        ("year=2023&base_year=2024", "base_year"),
        ("year=abc", "year"),
        ("base_year=2022", "year"),
        ("year=2023&indicator=nope", "indicator"),
        ("year=2023&region=320499", "region"),
    ],
)
def test_bad_comparison_parameters_are_422(cases: TestClient, query: str, field: str) -> None:
    response = cases.get(f"{API}/comparisons?{query}")
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_seed_alone_compares_honestly_with_no_base_value(client: TestClient) -> None:
    body = client.get(f"{API}/comparisons?year=2023").json()
    assert body["total"] > 0
    reasons = {r["indicator"]: r["reason"] for r in body["data"]}
    # One family's claim is a single event: never a change, whatever the other year holds.
    assert reasons.pop("large_accident_claim_paid") == "not_a_series"
    assert set(reasons.values()) == {"no_base_value"}
    assert {r["direction"] for r in body["data"]} == {"unknown"}


def test_compare_is_symmetric_in_its_bounds() -> None:
    near = Value(Decimal("800"), "approximate", "person")
    exact = Value(Decimal("1000"), "exact", "person")
    assert compare(near, exact, rate=False)["direction"] == "down"
    assert compare(exact, near, rate=False)["direction"] == "up"


def test_cagr_needs_exact_positive_endpoints() -> None:
    start = (2020, Value(Decimal("100"), "exact", "yuan"))
    assert cagr_pct(start, (2022, Value(Decimal("121"), "exact", "yuan"))) == (
        Decimal("10.00"),
        None,
    )
    assert (
        cagr_pct(start, (2022, Value(Decimal("0"), "exact", "yuan")))[1] == "non_positive_endpoint"
    )
    assert cagr_pct(start, (2020, Value(Decimal("5"), "exact", "yuan")))[1] == "single_year"


@pytest.mark.parametrize(
    "path",
    [
        "comparisons?year=2023",
        "comparisons/summary?year=2023",
        "indicators/long/series",
        "comparisons?year=2023&as_of=2100-01-01T00:00:00Z",
    ],
)
def test_comparisons_run_a_bounded_number_of_statements(
    cases: TestClient, cases_engine: Engine, path: str
) -> None:
    cases.get(f"{API}/{path}")  # warm the code catalog
    # data version, then one statement for the rows (+ categories or the indicator)
    assert count_statements(cases_engine, lambda: cases.get(f"{API}/{path}")) <= 3


@pytest.mark.parametrize(
    ("path", "operation"),
    [
        ("/api/v1/comparisons", "list_comparisons"),
        ("/api/v1/comparisons/summary", "summarize_comparisons"),
        ("/api/v1/indicators/{code}/series", "get_series"),
    ],
)
def test_each_comparing_operation_states_the_rules_in_the_docs(path: str, operation: str) -> None:
    from app.main import create_app

    documented = create_app().openapi()["paths"][path]["get"]
    assert documented["operationId"] == operation
    description = documented["description"]
    tolerance = f"±{APPROXIMATE_TOLERANCE * 100:.0f}%"
    for rule in (tolerance, "percentage points", "`unbounded`", "`no_base_value`", "`change_pp`"):
        assert rule in description, rule
    assert "`change`, `change_pct` and `change_pp` are null" in description
