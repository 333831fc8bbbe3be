"""POST /api/v1/extractions: the draft and report of `statsapi extract`, over HTTP (admin)."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from app.config import get_settings
from app.keys import Scope, create_key
from app.models import observation_table, source_table
from tests.conftest import ClientFactory, bearer, count_rows
from tests.test_extract import FIXTURE

URL = "/api/v1/extractions"
PARAMS = {"year": 2024, "source_code": "cz-2024-fixture"}
TEXT = {"Content-Type": "text/plain; charset=utf-8"}


def _post(client: TestClient, token: str | None, body: bytes, **headers: str):  # type: ignore[no-untyped-def]
    sent = {**TEXT, **headers, **(bearer(token) if token else {})}
    return client.post(URL, params=PARAMS, content=body, headers=sent)


def test_an_admin_gets_the_draft_and_report_and_nothing_is_written(
    make_client: ClientFactory, seeded_engine: Engine
) -> None:
    client = make_client(seeded_engine)
    token = create_key(seeded_engine, name="bureau", scopes={Scope.admin})
    before = count_rows(seeded_engine, observation_table), count_rows(seeded_engine, source_table)

    response = _post(client, token, FIXTURE.read_bytes())

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["draft"]["format"] == "statsapi-bundle/1"
    assert body["draft"]["sources"][0]["published_on"] == "2025-01-03"
    job_fairs = [o for o in body["draft"]["observations"] if o["indicator"] == "job_fairs_held"]
    assert job_fairs[0]["value"] == 22 and job_fairs[0]["quote"] == "举办本地现场招聘会22场"
    assert any(item["clause"] == "聘请创业导师25名" for item in body["report"])
    after = count_rows(seeded_engine, observation_table), count_rows(seeded_engine, source_table)
    assert after == before
    # The draft is what an import reads.
    imported = client.post(
        "/api/v1/imports",
        params={"dry_run": True},
        json=body["draft"],
        headers=bearer(token),
    )
    assert imported.status_code == 200, imported.text


def test_gbk_is_read_when_the_charset_says_so(
    make_client: ClientFactory, seeded_engine: Engine
) -> None:
    client = make_client(seeded_engine)
    token = create_key(seeded_engine, name="bureau", scopes={Scope.admin})
    body = FIXTURE.read_text(encoding="utf-8").encode("gbk")
    response = _post(client, token, body, **{"Content-Type": "text/plain; charset=GBK"})
    assert response.status_code == 200, response.text
    assert response.json()["draft"]["observations"]


def test_a_write_key_is_403_and_no_key_401(api: TestClient, tokens: dict[str, str]) -> None:
    assert _post(api, tokens["write"], b"text").status_code == 403
    assert _post(api, None, b"text").status_code == 401


def test_other_bodies_are_415_and_bad_text_422(api: TestClient, tokens: dict[str, str]) -> None:
    admin = tokens["admin"]
    assert _post(api, admin, b"{}", **{"Content-Type": "application/json"}).status_code == 415
    assert (
        _post(api, admin, b"x", **{"Content-Type": "text/plain; charset=latin-1"}).status_code
        == 415
    )
    not_utf8 = _post(api, admin, "创业培训".encode("gbk"))
    assert not_utf8.status_code == 422
    assert not_utf8.json()["errors"][0]["field"] == "body"
    undated = _post(api, admin, "年度盘点\n创业培训260人次。".encode())
    assert undated.status_code == 422
    assert undated.json()["errors"][0] == {
        "field": "published_on",
        "in": "query",
        "message": "the text's header states no publication date: give it",
    }


def test_a_body_over_the_limit_is_413(api: TestClient, tokens: dict[str, str]) -> None:
    body = b"x" * (get_settings().max_body_bytes + 1)
    assert _post(api, tokens["admin"], body).status_code == 413
