"""GET /api/v1/observations: filters alone and combined, latest, sorting, paging, CSV, 304."""

import csv
import io
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.conftest import count_statements
from tests.factories import load_document, world_document

URL = "/api/v1/observations"
WORLD = world_document()["observations"]
CATEGORY_OF = {"trained": "alpha", "funds": "alpha", "share": "beta"}


# The world's indicators in the review's order (display order), which is not alphabetical.
REVIEW_ORDER = {"trained": 0, "funds": 1, "share": 2}


def _key(row: dict[str, Any]) -> tuple[int, str, int]:
    return (REVIEW_ORDER[row["indicator"]], row["region"], row["year"])


def _expected(predicate) -> list[tuple[str, str, int]]:  # type: ignore[no-untyped-def]
    return sorted(_key(row) for row in WORLD if predicate(row))


def _fetch_all(client: TestClient, params: str) -> list[dict[str, Any]]:
    response = client.get(f"{URL}?{params}&limit=1000")
    assert response.status_code == 200, response.text
    return response.json()["data"]


@pytest.mark.parametrize(
    ("params", "predicate"),
    [
        ("", lambda r: True),
        ("indicator=trained", lambda r: r["indicator"] == "trained"),
        ("indicator=trained,share", lambda r: r["indicator"] in ("trained", "share")),
        ("indicator=trained&indicator=share", lambda r: r["indicator"] in ("trained", "share")),
        ("category=beta", lambda r: CATEGORY_OF[r["indicator"]] == "beta"),
        ("region=320411", lambda r: r["region"] == "320411"),
        ("region=320411,320412", lambda r: r["region"] in ("320411", "320412")),
        ("year=2021", lambda r: r["year"] == 2021),
        ("from=2022", lambda r: r["year"] >= 2022),
        ("to=2020", lambda r: r["year"] <= 2020),
        ("from=2020&to=2021", lambda r: 2020 <= r["year"] <= 2021),
        ("qualifier=at_least", lambda r: r["qualifier"] == "at_least"),
        (
            "category=alpha&region=320400&from=2021",
            lambda r: (
                CATEGORY_OF[r["indicator"]] == "alpha"
                and r["region"] == "320400"
                and r["year"] >= 2021
            ),
        ),
        (
            "indicator=funds&qualifier=exact&to=2022",
            lambda r: r["indicator"] == "funds" and r["qualifier"] == "exact" and r["year"] <= 2022,
        ),
    ],
)
def test_filters_select_exactly_the_matching_rows(
    world: TestClient, params: str, predicate
) -> None:  # type: ignore[no-untyped-def]
    rows = _fetch_all(world, params)
    assert sorted(_key(row) for row in rows) == _expected(predicate)
    assert rows == sorted(rows, key=_key)  # the default order: indicator, region, year


def test_latest_keeps_the_most_recent_years_of_each_series(world: TestClient) -> None:
    rows = _fetch_all(world, "latest=2")
    assert {row["year"] for row in rows} == {2022, 2023}
    assert len(rows) == 10


def test_latest_is_the_same_whatever_series_filters_are_given(world: TestClient) -> None:
    everything = _fetch_all(world, "latest=1")
    filtered = _fetch_all(world, "latest=1&region=320400&qualifier=exact")
    expected = [r for r in everything if r["region"] == "320400" and r["qualifier"] == "exact"]
    assert filtered == expected


def test_latest_counts_back_from_the_end_of_the_year_range(world: TestClient) -> None:
    rows = _fetch_all(world, "latest=1&to=2021")
    assert {row["year"] for row in rows} == {2021}


def test_sort_descending_by_year_breaks_ties_by_indicator_region(world: TestClient) -> None:
    rows = _fetch_all(world, "sort=-year")
    assert [_key(r) for r in rows] == sorted(
        (_key(r) for r in rows), key=lambda k: (-k[2], k[0], k[1])
    )


def test_sort_by_value(world: TestClient) -> None:
    rows = _fetch_all(world, "sort=value")
    values = [Decimal(str(r["value"])) for r in rows]
    assert values == sorted(values)


def test_pages_followed_to_the_end_give_every_row_once(world: TestClient) -> None:
    url: str | None = f"{URL}?limit=7&sort=-value"
    seen: list[tuple[str, str, int]] = []
    totals = set()
    while url:
        response = world.get(url)
        assert response.status_code == 200
        body = response.json()
        totals.add(body["total"])
        seen += [_key(row) for row in body["data"]]
        if body["next"]:
            assert response.headers["link"] == f'<{body["next"]}>; rel="next"'
        else:
            assert "link" not in response.headers
        url = body["next"]
    assert totals == {len(WORLD)}
    assert len(seen) == len(set(seen)) == len(WORLD)
    assert seen == [_key(r) for r in _fetch_all(world, "sort=-value")]


def test_values_are_exact_json_numbers(world: TestClient) -> None:
    response = world.get(f"{URL}?indicator=share&year=2019")
    assert '"value":76.5' in response.text
    assert response.json()["data"][0]["value"] == 76.5


def test_each_row_carries_labels_unit_and_source(world: TestClient) -> None:
    [row] = _fetch_all(world, "indicator=funds&region=320412&year=2020")
    assert (row.pop("revision"), row.pop("deleted")) == (1, False)
    assert row.pop("updated_at").endswith(("Z", "+00:00"))
    assert row.pop("change_seq") > 0
    assert row == {
        "indicator": "funds",
        "indicator_name_zh": "资金",
        "indicator_name_en": "Funds spent",
        "measure_type": "flow",
        "display_order": 2,
        "category": "alpha",
        "category_display_order": 1,
        "region": "320412",
        "region_name_zh": "武进区",
        "region_name_en": "Wujin District",
        "year": 2020,
        "value": 203,
        "unit": "yuan",
        "unit_name_zh": "元",
        "unit_name_en": "yuan",
        "qualifier": "exact",
        "note": None,
        "derived": False,
        "source": {"id": "synthetic-test-source", "quote": "synthetic funds 320412 2020"},
    }


@pytest.mark.parametrize("how", ["format=csv", "accept"])
def test_csv_parses_back_to_the_same_rows(world: TestClient, how: str) -> None:
    json_rows = _fetch_all(world, "region=320400")
    if how == "accept":
        response = world.get(f"{URL}?region=320400&limit=1000", headers={"Accept": "text/csv"})
    else:
        response = world.get(f"{URL}?region=320400&limit=1000&format=csv")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == len(json_rows)
    for parsed, original in zip(rows, json_rows, strict=True):
        assert parsed["indicator"] == original["indicator"]
        assert parsed["year"] == str(original["year"])
        assert Decimal(parsed["value"]) == Decimal(str(original["value"]))
        assert parsed["source_quote"] == original["source"]["quote"]
        assert parsed["note"] == ""
        for column in ("measure_type", "display_order", "category_display_order", "change_seq"):
            assert parsed[column] == str(original[column])


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("indicator", ["trained", "funds", "share"]),
        ("-indicator", ["share", "funds", "trained"]),
        ("category", ["trained", "funds", "share"]),  # ties broken in the review's order too
    ],
)
def test_indicators_sort_in_the_reviews_order_not_by_code(
    world: TestClient, sort: str, expected: list[str]
) -> None:
    rows = _fetch_all(world, f"sort={sort}&region=320400&year=2020")
    assert [row["indicator"] for row in rows] == expected


def test_categories_sort_in_the_reviews_order_as_categories_and_comparisons_list_them(
    client: TestClient,
) -> None:
    review = [c["code"] for c in client.get("/api/v1/categories").json()["data"]]
    assert review != sorted(review)  # the seed's order is not alphabetical: this can fail
    for sort, order in (("category", review), ("-category", review[::-1])):
        rows = _fetch_all(client, f"sort={sort}")
        seen = list(dict.fromkeys(row["category"] for row in rows))
        assert seen == [code for code in order if code in seen]
    compared = client.get("/api/v1/comparisons", params={"year": 2023, "limit": 1000}).json()
    rows = _fetch_all(client, "region=320400")  # default sort: indicator, in the review's order
    assert [r["indicator"] for r in rows] == [
        c["indicator"] for c in compared["data"] if c["region"] == "320400"
    ]


def test_if_none_match_gives_304_until_the_data_changes(make_client, seeded_engine: Engine) -> None:  # type: ignore[no-untyped-def]
    client = make_client(seeded_engine)
    first = client.get(URL)
    etag = first.headers["etag"]
    assert first.headers["cache-control"].startswith("public, max-age=")
    assert "last-modified" in first.headers

    again = client.get(URL, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert again.content == b""

    load_document(seeded_engine, world_document(years=range(2022, 2023)))
    after_write = client.get(URL, headers={"If-None-Match": etag})
    assert after_write.status_code == 200
    assert after_write.headers["etag"] != etag


@pytest.mark.parametrize(
    "path",
    [
        f"{URL}?category=alpha&limit=2",
        f"{URL}?format=csv",
        "/api/v1/comparisons?year=2022",
        "/api/v1/regions",
    ],
)
def test_a_current_etag_is_answered_304_with_the_data_version_read_alone(
    world: TestClient, world_engine: Engine, path: str
) -> None:
    answered: list[Any] = []
    fresh = count_statements(world_engine, lambda: answered.append(world.get(path)))
    first = answered[0]
    assert first.status_code == 200

    revalidated: list[Any] = []
    statements = count_statements(
        world_engine,
        lambda: revalidated.append(
            world.get(path, headers={"If-None-Match": first.headers["etag"]})
        ),
    )

    assert revalidated[0].status_code == 304
    assert revalidated[0].headers["etag"] == first.headers["etag"]
    assert statements == 1 < fresh  # the data version only: no query of the answer itself


def test_a_304_still_needs_valid_parameters_for_a_stale_or_foreign_etag(world: TestClient) -> None:
    etag = world.get(URL).headers["etag"]

    # The tag of another query is not this query's: it is answered in full, or refused.
    assert world.get(f"{URL}?year=2021", headers={"If-None-Match": etag}).status_code == 200
    refused = world.get(f"{URL}?year=abc", headers={"If-None-Match": etag})
    assert refused.status_code == 422
    assert world.get(URL, headers={"If-None-Match": '"r1"'}).status_code == 200


def test_etags_differ_by_query_and_format(world: TestClient) -> None:
    tags = {
        world.get(URL).headers["etag"],
        world.get(f"{URL}?year=2021").headers["etag"],
        world.get(f"{URL}?format=csv").headers["etag"],
    }
    assert len(tags) == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ("indicator=trainedd", "indicator"),
        ("category=gamma", "category"),
        ("region=320499", "region"),
        ("limit=1001", "limit"),
        ("limit=0", "limit"),
        ("year=abc", "year"),
        ("year=1800", "year"),
        ("from=2023&to=2020", "to"),
        ("qualifier=roughly", "qualifier"),
        ("sort=colour", "sort"),
        ("latest=0", "latest"),
        ("colour=red", "colour"),
        ("year=2021&year=2022", "year"),
        ("indicator=trai%00ned", "indicator"),
        ("limit=5&limit=6", "limit"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(
    world: TestClient, params: str, field: str
) -> None:
    response = world.get(f"{URL}?{params}")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 422
    assert [error["field"] for error in body["errors"]] == [field]
    assert field in body["detail"]


def test_unknown_code_suggests_close_matches_or_lists_allowed(world: TestClient) -> None:
    body = world.get(f"{URL}?indicator=trainedd").json()
    assert body["errors"][0]["unknown"] == ["trainedd"]
    assert body["errors"][0]["allowed"] == ["funds", "share", "trained"]


def test_too_many_codes_in_one_filter_is_422(world: TestClient) -> None:
    codes = ",".join(f"c{n}" for n in range(101))
    response = world.get(f"{URL}?indicator={codes}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "indicator"


@pytest.mark.parametrize(
    "path", [URL, "/api/v1/indicators", "/api/v1/categories", "/api/v1/regions"]
)
def test_statement_count_is_bounded_whatever_the_page_size(
    world: TestClient, world_engine: Engine, path: str
) -> None:
    world.get(path)  # warm the code catalog
    small = count_statements(
        world_engine, lambda: world.get(f"{path}?limit=2" if path == URL else path)
    )
    large = count_statements(
        world_engine, lambda: world.get(f"{path}?limit=1000" if path == URL else path)
    )
    # The data version (before routing, for the kept answers, then in the read's transaction)
    # + rows (+ a count when the page is not the whole result): never per row
    assert small <= 4 and large <= 4
