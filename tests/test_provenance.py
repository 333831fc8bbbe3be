"""The provenance promise on every write: the quote is in the source and states the value.

PUT, imports (CSV and bundles) and `statsapi check` share one checker (app/provenance.py). The
writes here cite the real 2023 review (its stored text) or a SYNTHETIC source without text.
"""

import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from app.db import write_transaction
from app.models import observation_table
from app.provenance import Claim, SourceFacts, check
from tests.conftest import ClientFactory, DatabaseFactory, bearer
from tests.factories import SYNTHETIC_SOURCE

REVIEW = "cz-tyjrswj-2023-review"
URL = "/api/v1/observations"
JOB_FAIRS = f"{URL}/job_fairs_held/320400/2023"  # 19 in the seed: 先后组织本地现场招聘会19场
JOB_FAIRS_QUOTE = "本地现场招聘会19场"  # the seed's quote


@pytest.fixture
def seeded(make_client: ClientFactory, seeded_engine: Engine) -> TestClient:
    return make_client(seeded_engine)


@pytest.fixture
def admin(seeded_engine: Engine) -> str:
    from app.keys import Scope, create_key

    return create_key(seeded_engine, name="bureau", scopes={Scope.admin})


def _put(client: TestClient, token: str, path: str, **body: Any) -> httpx.Response:
    return client.put(path, json={"source": REVIEW} | body, headers=bearer(token))


def _errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {error["field"]: error["message"] for error in response.json()["errors"]}


# --- the rules, one by one -------------------------------------------------------------------

TEXT = "先后组织本地现场招聘会19场,提供岗位6237个,近800人次,受众5万余人次"
SOURCE = SourceFacts("s", date(2024, 1, 2), TEXT)


@pytest.mark.parametrize(
    ("claim", "problems"),
    [
        (Claim(2023, Decimal(19), "exact", "招聘会19场"), []),
        (Claim(2023, Decimal(50000), "at_least", "受众5万余人次"), []),
        # several numbers: one of them is the value
        (Claim(2023, Decimal(6237), "exact", TEXT), []),
        (Claim(2023, Decimal(19), "exact", "whatever I like"), ["quote"]),
        (Claim(2023, Decimal(30), "exact", "招聘会19场"), ["value"]),
        (Claim(2023, Decimal(800), "exact", "近800人次"), ["qualifier"]),
        (Claim(2023, Decimal(50000), "exact", "受众5万余人次"), ["qualifier"]),
        (Claim(2023, Decimal(6237), "exact", "先后组织本地现场招聘会"), ["quote"]),  # no figure
        (Claim(2023, Decimal(30), "exact", "招聘会19场", "19 + 11", derived=True), []),
        (Claim(2023, Decimal(30), "exact", "招聘会19场", " ", derived=True), ["note"]),
        (Claim(2024, Decimal(19), "exact", "招聘会19场"), ["source"]),
        (Claim(2022, Decimal(19), "exact", "招聘会19场"), []),  # an earlier year, stated later
    ],
)
def test_the_checker_names_the_field_to_fix(claim: Claim, problems: list[str]) -> None:
    assert [problem.field for problem in check(claim, SOURCE)] == problems


def test_the_quote_is_compared_as_stored_without_normalisation() -> None:
    spaced = Claim(2023, Decimal(19), "exact", "招聘会 19场")
    assert [p.field for p in check(spaced, SOURCE)] == ["quote"]


def test_a_source_without_text_takes_a_locator_but_checks_any_figure_quoted() -> None:
    letter = SourceFacts("letter", date(2024, 3, 1), None)
    assert check(Claim(2023, Decimal(19), "exact", "sheet 招聘会, 第二行"), letter) == []
    [problem] = check(Claim(2023, Decimal(30), "exact", "全年招聘会19场"), letter)
    assert (problem.field, problem.message) == ("value", "the quote states 19 (exact), not 30")


def test_the_source_published_on_the_last_day_of_the_year_is_refused() -> None:
    source = SourceFacts("s", date(2023, 12, 31), TEXT)
    assert [p.field for p in check(Claim(2023, Decimal(19), "exact", "19场"), source)] == ["source"]


# --- PUT -----------------------------------------------------------------------------------


def test_put_with_a_quote_not_in_the_text_is_422_naming_quote(seeded, admin) -> None:  # type: ignore[no-untyped-def]
    response = _put(seeded, admin, JOB_FAIRS, value=19, quote="whatever I like")
    assert set(_errors(response)) == {"quote"}


def test_put_with_a_quote_stating_another_number_is_422_naming_it(seeded, admin) -> None:  # type: ignore[no-untyped-def]
    response = _put(seeded, admin, JOB_FAIRS, value=30, quote=JOB_FAIRS_QUOTE)
    assert _errors(response) == {"value": "the quote states 19 (exact), not 30"}
    assert "19 (exact), not 30" in response.json()["detail"]


def test_put_exact_for_an_approximate_quote_is_422_naming_qualifier(seeded, admin) -> None:  # type: ignore[no-untyped-def]
    path = f"{URL}/visitor_person_times/320400/2023"
    response = _put(seeded, admin, path, value=800, quote="近800人次")
    assert _errors(response) == {"qualifier": "the quote states 800 (approximate), not 800 (exact)"}
    fixed = _put(seeded, admin, path, value=800, qualifier="approximate", quote="近800人次")
    assert fixed.status_code == 200, fixed.text


def test_put_citing_a_source_published_before_the_year_ended_is_refused(seeded, admin) -> None:  # type: ignore[no-untyped-def]
    path = f"{URL}/job_fairs_held/320400/2024"
    response = _put(seeded, admin, path, value=19, quote=JOB_FAIRS_QUOTE)
    assert "before 2024 ended" in _errors(response)["source"]


def test_derived_needs_a_note_and_is_then_stored_and_shown(seeded, admin) -> None:  # type: ignore[no-untyped-def]
    path = f"{URL}/job_fairs_held/320402/2023"
    body = {"value": 25, "quote": JOB_FAIRS_QUOTE, "derived": True}
    assert set(_errors(_put(seeded, admin, path, **body))) == {"note"}
    created = _put(seeded, admin, path, **body, note="19 city fairs plus 6 held in Tianning")
    assert created.status_code == 201, created.text
    assert created.json()["derived"] is True
    assert seeded.get(path).json()["derived"] is True
    [revision] = seeded.get(f"{path}/revisions").json()["data"]
    assert revision["derived"] is True
    listed = seeded.get(URL, params={"indicator": "job_fairs_held", "region": "320402"})
    assert [row["derived"] for row in listed.json()["data"]] == [True]
    csv = seeded.get(URL, params={"region": "320402", "format": "csv"}).text
    assert "derived" in csv.splitlines()[0] and ",true," in csv.replace("True", "true")


def test_the_seed_is_not_derived(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get(JOB_FAIRS).json()["derived"] is False


# --- imports: the same rules, row by row ------------------------------------------------------

HEADER = "indicator,region,year,value,qualifier,note,source,quote,derived"


def test_csv_import_reports_each_rule_on_its_row(seeded, admin) -> None:  # type: ignore[no-untyped-def]
    rows = [
        f"job_fairs_held,320402,2023,19,exact,,{REVIEW},whatever I like,",  # row 2: quote
        f"job_fairs_held,320404,2023,30,exact,,{REVIEW},{JOB_FAIRS_QUOTE},",  # row 3: value
        f"visitor_person_times,320402,2023,800,exact,,{REVIEW},近800人次,",  # row 4: qualifier
        f"job_fairs_held,320411,2023,30,exact,,{REVIEW},{JOB_FAIRS_QUOTE},true",  # row 5: note
        f"job_fairs_held,320402,2024,19,exact,,{REVIEW},{JOB_FAIRS_QUOTE},",  # row 6: source
        f"job_fairs_held,320412,2023,19,exact,,{REVIEW},{JOB_FAIRS_QUOTE},",  # row 7: fine
    ]
    body = "\r\n".join([HEADER, *rows]) + "\r\n"
    response = seeded.post(
        "/api/v1/imports",
        content=body.encode(),
        headers=bearer(admin, **{"Content-Type": "text/csv"}),
    )
    assert response.status_code == 422, response.text
    found = [(e["record"], e["field"]) for e in response.json()["errors"]]
    assert found == [
        ("row 2", "quote"),
        ("row 3", "value"),
        ("row 4", "qualifier"),
        ("row 5", "note"),
        ("row 6", "source"),
    ]
    assert seeded.get(f"{URL}/job_fairs_held/320412/2023").status_code == 404  # all or nothing


def test_a_bundle_defining_its_source_is_checked_against_that_source(seeded, admin) -> None:  # type: ignore[no-untyped-def]
    """A source defined in the bundle (inline text, its own date) is the one the rows meet."""
    bundle = {
        "sources": [
            {
                "code": "synthetic-letter",
                "title_zh": "合成测试函",
                "title_en": "SYNTHETIC test letter",
                "publisher_zh": "测试",
                "publisher_en": "Tests",
                "published_on": "2025-02-01",
                "year_covered": 2024,
                "text": "SYNTHETIC: 2024年举办招聘会21场。",
            }
        ],
        "observations": [
            {
                "indicator": "job_fairs_held",
                "region": "320400",
                "year": 2024,
                "value": 22,
                "source": "synthetic-letter",
                "quote": "举办招聘会21场",
            }
        ],
    }
    headers = bearer(admin, **{"Content-Type": "application/json"})
    response = seeded.post("/api/v1/imports", json=bundle, headers=headers)
    assert [(e["record"], e["field"]) for e in response.json()["errors"]] == [
        ("observations[0]", "value")
    ]
    bundle["observations"][0]["value"] = 21
    assert seeded.post("/api/v1/imports", json=bundle, headers=headers).status_code == 200


def test_world_quotes_without_figures_pass_for_a_source_without_text(api, tokens) -> None:  # type: ignore[no-untyped-def]
    """The SYNTHETIC world's source has no text: a locator is accepted, a figure is checked."""
    path = f"{URL}/trained/320400/2023"
    body = {"value": 7, "source": SYNTHETIC_SOURCE, "quote": "synthetic sheet, trained row"}
    assert api.put(path, json=body, headers=bearer(tokens["write"])).status_code == 200
    body["quote"] = "synthetic: trained 8"
    response = api.put(path, json=body, headers=bearer(tokens["write"]))
    assert _errors(response) == {"value": "the quote states 8 (exact), not 7"}


# --- statsapi check --------------------------------------------------------------------------


def _check(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STATSAPI_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "app", "check"], env=env, capture_output=True, text=True
    )


def test_statsapi_check_passes_the_seed_and_names_a_stored_bad_row(
    databases: DatabaseFactory,
) -> None:
    url = databases.fresh("seeded")
    passed = _check(url)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    from app.db import build_engine

    engine = build_engine(url)
    try:
        with write_transaction(engine) as connection:  # bypassing the API, as a bad import might
            connection.execute(
                update(observation_table)
                .where(observation_table.c.quote == JOB_FAIRS_QUOTE)
                .values(value=Decimal(30))
            )
    finally:
        engine.dispose()
    failed = _check(url)
    assert failed.returncode == 1
    assert failed.stdout.splitlines() == [
        "job_fairs_held/320400/2023: value: the quote states 19 (exact), not 30"
    ]


def test_derived_is_a_json_boolean(seeded, admin) -> None:  # type: ignore[no-untyped-def]
    body = {"value": 19, "quote": JOB_FAIRS_QUOTE, "derived": 0}
    assert "derived" in _errors(_put(seeded, admin, JOB_FAIRS, **body))
