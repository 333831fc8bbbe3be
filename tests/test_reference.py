"""Categories, indicators, regions, years and sources: lists, details, filters, 404s, CSV."""

import csv
import io

import pytest
from fastapi.testclient import TestClient

from tests.conftest import SOURCE_TEXT

API = "/api/v1"


def test_categories_come_in_display_order_with_indicator_counts(world: TestClient) -> None:
    body = world.get(f"{API}/categories").json()
    assert [(c["code"], c["indicator_count"]) for c in body["data"]] == [
        ("alpha", 2),
        ("beta", 1),
        ("empty", 0),
    ]
    assert body["total"] == 3


def test_a_category_lists_its_indicators(world: TestClient) -> None:
    body = world.get(f"{API}/categories/alpha").json()
    assert [i["code"] for i in body["indicators"]] == ["trained", "funds"]  # display order
    assert body["indicators"][1]["unit"] == {"code": "yuan", "name_zh": "元", "name_en": "yuan"}


@pytest.mark.parametrize(
    "path",
    ["categories/nope", "indicators/nope", "regions/999999", "sources/nope", "sources/nope/text"],
)
def test_unknown_code_in_a_path_is_404_problem(world: TestClient, path: str) -> None:
    response = world.get(f"{API}/{path}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "nope" in response.json()["detail"] or "999999" in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "codes"),
    [
        ("", ["trained", "funds", "share"]),
        ("category=beta", ["share"]),
        ("q=FUNDS", ["funds"]),
        ("q=培训", ["trained"]),
        ("region=320411", ["trained"]),
        ("region=320412,320411", ["trained", "funds"]),
        ("year=2019", ["trained", "funds", "share"]),
        ("year=2030", []),
        ("category=alpha&region=320412", ["funds"]),
    ],
)
def test_indicator_filters(world: TestClient, params: str, codes: list[str]) -> None:
    body = world.get(f"{API}/indicators?{params}").json()
    assert sorted(i["code"] for i in body["data"]) == sorted(codes)


def test_indicator_filter_with_unknown_category_is_422(world: TestClient) -> None:
    response = world.get(f"{API}/indicators?category=gamma")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "category"


def test_an_indicator_lists_the_years_and_regions_with_data(world: TestClient) -> None:
    body = world.get(f"{API}/indicators/funds").json()
    assert body["years"] == [2019, 2020, 2021, 2022, 2023]
    assert [r["code"] for r in body["regions"]] == ["320400", "320412"]
    assert body["observation_count"] == 10
    assert body["measure_type"] == "flow"


def test_regions_list_parents_and_counts(world: TestClient) -> None:
    body = world.get(f"{API}/regions").json()
    assert [(r["code"], r["parent"], r["observation_count"]) for r in body["data"]] == [
        ("320400", None, 15),
        ("320411", "320400", 5),
        ("320412", "320400", 5),
    ]


def test_a_region_lists_its_children_and_years(world: TestClient) -> None:
    body = world.get(f"{API}/regions/320400").json()
    assert [c["code"] for c in body["children"]] == ["320411", "320412"]
    assert body["years"] == [2019, 2020, 2021, 2022, 2023]


def test_years_count_observations(world: TestClient) -> None:
    body = world.get(f"{API}/years").json()
    assert body["data"] == [{"year": y, "observation_count": 5} for y in range(2019, 2024)]


def test_seeded_regions_are_all_seven_divisions(client: TestClient) -> None:
    codes = [r["code"] for r in client.get(f"{API}/regions").json()["data"]]
    assert codes == ["320400", "320402", "320404", "320411", "320412", "320413", "320481"]


def test_source_text_is_served_byte_identical(client: TestClient) -> None:
    [source] = client.get(f"{API}/sources").json()["data"]
    response = client.get(source["text_url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.content == SOURCE_TEXT.read_bytes()
    assert client.get(f"{API}/sources/{source['id']}").json() == source


@pytest.mark.parametrize(
    ("path", "header"),
    [
        ("categories", "code,name_zh,name_en,description_zh,description_en,display_order"),
        ("indicators", "code,category,name_zh,name_en,unit_code,unit_name_zh,unit_name_en"),
        ("regions", "code,name_zh,name_en,level,parent,observation_count"),
        ("years", "year,observation_count"),
        ("sources", "id,title_zh,title_en"),
    ],
)
def test_every_list_answers_csv(world: TestClient, path: str, header: str) -> None:
    json_body = world.get(f"{API}/{path}").json()
    response = world.get(f"{API}/{path}?format=csv")
    assert response.status_code == 200
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff" + header)
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert len(rows) == json_body["total"]


def test_csv_lists_defuse_cells_a_spreadsheet_would_run(make_client, empty_engine) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import load_document, world_document

    document = world_document(years=range(0))
    document["categories"][0]["name_en"] = '=HYPERLINK("http://example.invalid","x")'
    load_document(empty_engine, document)
    text = make_client(empty_engine).get(f"{API}/categories?format=csv").content.decode()
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert rows[0]["name_en"] == '\'=HYPERLINK("http://example.invalid","x")'


@pytest.mark.parametrize(
    ("path", "field"), [("indicators?q=%00", "q"), ("categories/al%00pha", "code")]
)
def test_a_nul_character_is_422_not_a_database_error(
    world: TestClient, path: str, field: str
) -> None:
    response = world.get(f"{API}/{path}")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
