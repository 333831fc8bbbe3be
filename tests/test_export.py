"""GET /api/v1/export: the whole dataset in one answer, which `statsapi import` reads back."""

import os
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app import exporter
from app.bundle import Bundle
from app.db import build_engine, read_connection
from app.rendering import dump_json
from tests.conftest import ClientFactory, DatabaseFactory, bearer, count_statements

URL = "/api/v1/export"


def _statsapi(*args: str, url: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        env={**os.environ, "DATABASE_URL": url},
        timeout=120,
        check=False,
    )


def _observations(url: str) -> list[dict[str, object]]:
    """Every observation of the database at `url`, as the export states it (codes, values)."""
    engine = build_engine(url)
    try:
        with read_connection(engine) as connection:
            return exporter.export_observations(connection)
    finally:
        engine.dispose()


@pytest.fixture
def seeded(
    databases: DatabaseFactory, make_client: ClientFactory
) -> Iterator[tuple[str, TestClient]]:
    """A seeded database's URL and a client of the app over it."""
    url = databases.fresh("seeded")
    engine = build_engine(url)
    yield url, make_client(engine)
    engine.dispose()


def test_the_json_export_imports_into_an_empty_database_with_every_observation_equal(
    seeded: tuple[str, TestClient], databases: DatabaseFactory, tmp_path: Path
) -> None:
    url, client = seeded
    response = client.get(URL)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    exported = tmp_path / "export.json"
    exported.write_bytes(response.content)

    empty = databases.fresh("empty")
    imported = _statsapi("import", str(exported), url=empty)

    assert imported.returncode == 0, imported.stderr
    assert _observations(empty) == _observations(url)
    assert len(_observations(empty)) == len(response.json()["observations"]) > 0


def test_the_csv_export_imports_into_a_database_with_the_reference_data(
    seeded: tuple[str, TestClient], databases: DatabaseFactory, tmp_path: Path
) -> None:
    url, client = seeded
    reference = tmp_path / "reference.json"
    reference.write_bytes(client.get(URL, params={"year": 1949}).content)  # no values then
    rows = client.get(URL, params={"format": "csv"})
    assert rows.status_code == 200
    assert rows.headers["content-type"] == "text/csv; charset=utf-8"
    assert rows.content.startswith("\ufeff".encode())
    values = tmp_path / "values.csv"
    values.write_bytes(rows.content)

    empty = databases.fresh("empty")
    assert _statsapi("import", str(reference), url=empty).returncode == 0
    assert _observations(empty) == []
    imported = _statsapi("import", str(values), url=empty)

    assert imported.returncode == 0, imported.stderr
    assert _observations(empty) == _observations(url)


@pytest.mark.parametrize("format", ["json", "csv"])
def test_the_http_export_is_byte_for_byte_what_the_command_writes(
    seeded: tuple[str, TestClient], format: str
) -> None:
    url, client = seeded
    written = _statsapi("export", "--format", format, "--year", "2023", url=url)
    assert written.returncode == 0, written.stderr
    served = client.get(URL, params={"format": format, "year": 2023}).content
    assert written.stdout == (served + b"\n" if format == "json" else served)


def test_a_year_narrows_the_values_and_keeps_the_reference_data_whole(world: TestClient) -> None:
    everything = world.get(URL).json()
    one_year = world.get(URL, params={"year": 2021}).json()
    assert {o["year"] for o in one_year["observations"]} == {2021}
    assert len(one_year["observations"]) == 5
    assert {key: value for key, value in one_year.items() if key != "observations"} == {
        key: value for key, value in everything.items() if key != "observations"
    }


def test_the_export_is_a_bundle_as_the_published_schema_describes_it(world: TestClient) -> None:
    body = world.get(URL).content
    bundle = Bundle.model_validate_json(body)  # the model the published `Bundle` schema is of
    assert len(bundle.observations) == 25
    content = world.get("/openapi.json").json()["paths"][URL]["get"]["responses"]["200"]
    assert content["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Bundle"
    }
    assert content["content"]["text/csv"]["schema"] == {"type": "string"}
    assert "X-Change-Seq" in content["headers"]


def test_the_body_is_written_in_pieces_that_make_the_whole(
    world: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = world.get(URL).json()
    monkeypatch.setattr(exporter, "CHUNK_ROWS", 10)
    pieces = list(exporter.json_pieces(bundle))
    assert len(pieces) == 1 + 3 + 1  # the reference data, 25 rows in 3 chunks, the close
    assert b"".join(pieces) == dump_json(bundle)
    assert orjson.loads(b"".join(pieces)) == bundle
    rows = bundle["observations"]
    csv_pieces = list(exporter.csv_pieces(rows))
    assert len(csv_pieces) == 1 + 3
    monkeypatch.setattr(exporter, "CHUNK_ROWS", 1000)
    assert b"".join(csv_pieces) == b"".join(exporter.csv_pieces(rows))


def test_an_empty_export_is_still_a_whole_bundle(world: TestClient) -> None:
    bundle = world.get(URL, params={"year": 1949}).json()
    assert bundle["observations"] == []
    assert len(bundle["indicators"]) == 3
    csv = world.get(URL, params={"year": 1949, "format": "csv"}).content.decode("utf-8-sig")
    assert csv.splitlines() == [csv.splitlines()[0]] and csv.startswith("indicator,region")


def test_the_export_is_cached_by_the_data_version(api: TestClient, token: str) -> None:
    first = api.get(URL)
    etag = first.headers["etag"]
    assert first.headers["last-modified"]
    assert api.get(URL, headers={"If-None-Match": etag}).status_code == 304
    assert api.get(URL, params={"format": "csv"}, headers={"If-None-Match": etag}).status_code == (
        200  # another representation, another tag
    )

    changed = api.put(
        "/api/v1/observations/trained/320400/2019",
        json={"value": 1, "source": "synthetic-test-source", "quote": "synthetic trained"},
        headers=bearer(token),
    )
    assert changed.status_code == 200, changed.text
    after = api.get(URL, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    assert int(after.headers["x-change-seq"]) == int(first.headers["x-change-seq"]) + 1


def test_a_bad_year_is_a_422_naming_it(world: TestClient) -> None:
    response = world.get(URL, params={"year": 1800})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "year"


@pytest.mark.parametrize(("format", "statements"), [("json", 8), ("csv", 3)])
def test_the_export_runs_the_same_few_statements_whatever_its_size(
    make_client: ClientFactory,
    world_engine: Engine,
    shared_seeded_engine: Engine,
    format: str,
    statements: int,
) -> None:
    # The data version (before routing, for the kept answers: app/answers.py, and again in the
    # read's transaction), then one statement per record kind (JSON) or for the values (CSV).
    for engine in (world_engine, shared_seeded_engine):
        get = partial(make_client(engine).get, URL, params={"format": format})
        assert count_statements(engine, get) == statements
