"""POST /api/v1/imports and the import/export commands: all or nothing, reported per row."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from app.bundle import MAX_ERRORS, ErrorList, RecordError
from app.db import build_engine
from tests.conftest import DatabaseFactory, snapshot
from tests.factories import SYNTHETIC_DERIVED, SYNTHETIC_SOURCE, world_observation

URL = "/api/v1/imports"
HEADER = "indicator,region,year,value,qualifier,note,source,quote"


def _csv_rows(count: int, *, year: int = 2030, bad_row: int | None = None) -> str:
    """`count` SYNTHETIC rows for the world's indicators; data row `bad_row` (1-based) is bad."""
    lines = [HEADER]
    indicators = ["trained", "funds", "share"]
    regions = ["320400", "320411", "320412"]
    for n in range(count):
        indicator, region = indicators[n % 3], regions[(n // 3) % 3]
        # funds (yuan) have fractions; trained (persons) are whole; share (a rate) is 0-100
        value = {"trained": f"{n}", "funds": f"{n}.5", "share": f"{n % 100}.5"}[indicator]
        value = "not-a-number" if bad_row == n + 1 else value
        lines.append(
            f"{indicator},{region},{year + n // 9},{value},exact,,{SYNTHETIC_SOURCE},"
            f"row {n}: {value}"
        )
    return "\r\n".join(lines) + "\r\n"


def _post(api: TestClient, token: str, body: str | bytes, content_type: str = "text/csv", **kw):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    headers.update(kw.pop("headers", {}))
    data = body.encode("utf-8") if isinstance(body, str) else body
    return api.post(URL, content=data, headers=headers, **kw)


def test_csv_import_creates_then_reports_unchanged(api, tokens, engine) -> None:  # type: ignore[no-untyped-def]
    body = _csv_rows(5)
    first = _post(api, tokens["write"], body)
    assert first.status_code == 200, first.text
    report = first.json()
    assert report["summary"] == {"observations": {"created": 5, "changed": 0, "unchanged": 0}}
    assert report["rows"][0] == {
        "record": "trained/320400/2030",
        "section": "observations",
        "action": "created",
    }
    again = _post(api, tokens["write"], body).json()
    assert again["summary"] == {"observations": {"created": 0, "changed": 0, "unchanged": 5}}
    value = api.get("/api/v1/observations/funds/320400/2030").json()["value"]
    assert value == 1.5


def test_the_40th_of_50_rows_bad_changes_nothing(api, tokens, engine) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(engine)
    response = _post(api, tokens["write"], _csv_rows(50, bad_row=40))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    [error] = response.json()["errors"]
    # data row 40 is line 41 of the file (the header is line 1)
    assert (error["record"], error["field"]) == ("row 41", "value")
    assert snapshot(engine) == before


def test_unknown_codes_are_reported_per_row_and_nothing_is_written(api, tokens, engine) -> None:  # type: ignore[no-untyped-def]
    body = _csv_rows(3).replace("trained,320411", "trained,320481").replace("funds", "fundz")
    before = snapshot(engine)
    response = _post(api, tokens["write"], body)
    assert response.status_code == 422
    located = {(e["record"], e["field"]) for e in response.json()["errors"]}
    assert ("row 3", "indicator") in located
    assert snapshot(engine) == before


def test_format_and_reference_errors_come_in_one_answer_by_row(api, tokens, engine) -> None:  # type: ignore[no-untyped-def]
    lines = _csv_rows(6, bad_row=4).splitlines()  # data row 4 (line 5): a value that is no number
    lines[2] = lines[2].replace("funds,", "fundz,", 1)  # line 3: an unknown indicator
    before = snapshot(engine)
    response = _post(api, tokens["write"], "\r\n".join(lines) + "\r\n")
    assert response.status_code == 422
    problem = response.json()
    located = [(e["record"], e["field"]) for e in problem["errors"]]
    assert located == [("row 3", "indicator"), ("row 5", "value")]
    assert problem["error_count"] == 2
    unknown = problem["errors"][0]
    assert unknown["unknown"] == ["fundz"]
    assert unknown["close_matches"]["fundz"][0] == "funds"
    assert "did you mean 'funds'" in unknown["message"]
    assert snapshot(engine) == before


def _bundle_text(document: dict[str, object], content_type: str) -> str:
    if content_type == "application/json":
        return json.dumps(document, ensure_ascii=False)
    return yaml.safe_dump(document, allow_unicode=True)


def _format_and_reference_errors() -> dict[str, object]:
    """observations[1] lacks its year and observations[4] its value is no number (format);
    observations[2], after the one left out, names an unknown region (reference)."""
    rows = [world_observation(year=2030 + n) for n in range(5)]
    del rows[1]["year"]
    rows[2]["region"] = "320413"
    rows[4]["value"] = "twelve"
    return {"observations": rows}


@pytest.mark.parametrize("content_type", ["application/json", "application/yaml"])
@pytest.mark.parametrize("dry_run", [False, True])
def test_a_bundle_gets_its_format_and_reference_errors_in_one_answer_by_index(  # type: ignore[no-untyped-def]
    api, tokens, engine, content_type: str, dry_run: bool
) -> None:
    before = snapshot(engine)
    body = _bundle_text(_format_and_reference_errors(), content_type)
    response = _post(api, tokens["write"], body, content_type, params={"dry_run": dry_run})
    assert response.status_code == 422, response.text
    problem = response.json()
    located = [(e["record"].split(" ")[0], e["field"]) for e in problem["errors"]]
    # In file order, each named by its index in the file (not among the records that passed).
    assert located == [
        ("observations[1]", "year"),
        ("observations[2]", "region"),
        ("observations[4]", "value"),
    ]
    assert problem["error_count"] == 3
    assert problem["detail"].startswith("Nothing was imported: upload: observations[1]")
    unknown = problem["errors"][1]
    assert unknown["unknown"] == ["320413"]
    assert "320412" in unknown["close_matches"]["320413"]
    assert all("unknown" not in problem["errors"][n] for n in (0, 2))
    assert snapshot(engine) == before


def test_a_code_defined_by_a_record_with_errors_is_not_called_unknown(api, tokens, engine) -> None:  # type: ignore[no-untyped-def]
    farms = {
        "code": "farms",
        "category": "alpha",
        "unit": "person",
        "measure_type": "flow",
        "name_zh": "示范农场",
        "name_en": "Model farms",
    }
    document = {
        # indicators[0] a new one, indicators[1] the stored `trained` changed: both faulty.
        "indicators": [{**farms, "measure_type": "sometimes"}, {**farms, "code": "trained"}],
        "observations": [
            world_observation(indicator="farms"),
            world_observation(indicator="trained", value=-1),
        ],
    }
    document["indicators"][1].pop("name_en")
    before = snapshot(engine)
    response = _post(api, tokens["admin"], json.dumps(document), "application/json")
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    located = [(e["record"].split(" ")[0], e["field"]) for e in errors]
    assert located == [
        ("indicators[0]", "measure_type"),
        ("indicators[1]", "name_en"),
        ("observations[0]", "indicator"),
        ("observations[1]", "indicator"),
    ]
    for error, defined_by in zip(errors[2:], ("indicators[0]", "indicators[1]"), strict=True):
        assert f"is defined by {defined_by}, which has errors" in error["message"]
        assert "unknown" not in error
    # The value of observations[1] is checked once its indicator's record is fixed, against
    # it: not now against the stored `trained` the file means to change.
    assert not any("non-negative" in error["message"] for error in errors)
    assert snapshot(engine) == before


def test_a_record_left_out_for_its_errors_still_counts_for_repeats(api, tokens) -> None:  # type: ignore[no-untyped-def]
    unit = {"code": "household", "name_zh": "户", "name_en": "households"}
    document = {"units": [{**unit, "name_zh": ""}, unit, {**unit, "name_en": ""}]}
    response = _post(api, tokens["admin"], json.dumps(document), "application/json")
    assert response.status_code == 422, response.text
    found = [
        (e["record"].split(" ")[0], e["field"], e["message"]) for e in response.json()["errors"]
    ]
    assert [(record, field) for record, field, _ in found] == [
        ("units[0]", "name_zh"),
        ("units[1]", "body"),
        ("units[2]", "name_en"),
    ]
    assert found[1][2] == "repeats units[0]"


@pytest.mark.parametrize(
    ("records", "named"),
    [
        ({"indicators": [{"code": "farms"}]}, "indicators"),
        ({"sources": [{"code": SYNTHETIC_SOURCE, "title_en": "Renamed"}]}, SYNTHETIC_SOURCE),
    ],
)
def test_a_write_key_is_refused_for_its_scope_what_it_may_not_define_even_with_errors(  # type: ignore[no-untyped-def]
    api, tokens, records: dict[str, object], named: str
) -> None:
    """A record left out for its format errors still tells what the file means to do: 403 at
    once, not a 422 whose fixes lead to a 403."""
    document = {**records, "observations": [world_observation()]}
    response = _post(api, tokens["write"], json.dumps(document), "application/json")
    assert response.status_code == 403, response.text
    assert named in response.json()["detail"]


def test_the_first_errors_by_row_are_kept_whatever_order_they_were_found_in() -> None:
    found = ErrorList()
    for line in reversed(range(2, 2 + MAX_ERRORS + 50)):
        found.add(RecordError("upload", f"row {line}", "value", "bad", at=(5, line)))
    late = ErrorList([RecordError("upload", "row 1000", "region", "unknown", at=(5, 1000))])
    late.merge(found)
    assert late.total == MAX_ERRORS + 51
    assert [error.at[1] for error in late.kept] == list(range(2, 2 + MAX_ERRORS))


def test_duplicate_rows_are_an_error(api, tokens, engine) -> None:  # type: ignore[no-untyped-def]
    body = _csv_rows(2)
    body += body.splitlines()[1] + "\r\n"
    response = _post(api, tokens["write"], body)
    assert response.status_code == 422
    assert "repeats row 2" in response.json()["errors"][0]["message"]


def test_dry_run_reports_and_writes_nothing(api, tokens, engine) -> None:  # type: ignore[no-untyped-def]
    before = snapshot(engine)
    response = _post(api, tokens["write"], _csv_rows(4), params={"dry_run": "true"})
    assert response.status_code == 200
    assert (response.json()["applied"], response.json()["dry_run"]) == (False, True)
    assert response.json()["summary"]["observations"]["created"] == 4
    assert snapshot(engine) == before


def test_a_correction_by_import_keeps_the_old_value_in_history(api, tokens) -> None:  # type: ignore[no-untyped-def]
    _post(api, tokens["write"], _csv_rows(1))
    corrected = _csv_rows(1).replace(",0,", ",7,").replace(": 0", ": 7")
    report = _post(api, tokens["write"], corrected).json()
    assert report["summary"]["observations"]["changed"] == 1
    history = api.get("/api/v1/observations/trained/320400/2030/revisions").json()["data"]
    assert [(r["value"], r["recorded_by"]) for r in history] == [
        (0, "partner"),
        (7, "partner"),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("我们".encode("gbk") * 20, "GBK"),
        (HEADER.encode("utf-16"), "UTF-16"),
        (b"indicator,region\r\ntrained,320400\r\n", "missing columns"),
        (f"{HEADER},colour\r\n".encode(), "unknown columns colour"),
    ],
)
def test_unreadable_files_get_a_clear_422(api, tokens, body: bytes, message: str) -> None:  # type: ignore[no-untyped-def]
    response = _post(api, tokens["write"], body)
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_csv_with_a_byte_order_mark_and_crlf_imports(api, tokens) -> None:  # type: ignore[no-untyped-def]
    response = _post(api, tokens["write"], "\ufeff" + _csv_rows(2))
    assert response.status_code == 200
    assert response.json()["summary"]["observations"]["created"] == 2


def test_bundles_defining_reference_data_need_the_admin_scope(api, tokens) -> None:  # type: ignore[no-untyped-def]
    bundle = {
        "units": [{"code": "household", "name_zh": "户", "name_en": "households"}],
        "indicators": [
            {
                "code": "farms",
                "category": "alpha",
                "unit": "household",
                "measure_type": "flow",
                "name_zh": "示范农场",
                "name_en": "Model farms",
            }
        ],
        "observations": [
            {
                "indicator": "farms",
                "region": "320412",
                "year": 2030,
                "value": 7,
                "source": SYNTHETIC_SOURCE,
                "quote": "synthetic farms",
            }
        ],
    }
    text = yaml.safe_dump(bundle, allow_unicode=True)
    refused = _post(api, tokens["write"], text, "application/yaml")
    assert refused.status_code == 403
    accepted = _post(api, tokens["admin"], text, "application/yaml")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["summary"]["indicators"]["created"] == 1
    assert api.get("/api/v1/observations/farms/320412/2030").json()["unit"] == "household"


def _source_naming_a_file(text_file: str) -> dict[str, object]:
    return {
        "code": "sneaky",
        "title_zh": "x",
        "title_en": "x",
        "publisher_zh": "x",
        "publisher_en": "x",
        "published_on": "2024-01-01",
        "year_covered": 2023,
        "text_file": text_file,
    }


def test_uploaded_bundles_may_not_name_files_on_the_server(api, tokens) -> None:  # type: ignore[no-untyped-def]
    source = _source_naming_a_file("/etc/passwd")
    document = {"sources": [source], "observations": [world_observation(region="320499")]}
    response = _post(api, tokens["admin"], json.dumps(document), "application/json")
    assert response.status_code == 422
    # In the same answer as the other records' errors (the source is left out).
    errors = response.json()["errors"]
    assert [(e["record"], e["field"]) for e in errors] == [
        ("sources[0] (code=sneaky)", "text_file"),
        ("observations[0]", "region"),
    ]
    assert "not allowed in an upload" in errors[0]["message"]


def test_idempotency_key_replays_the_first_answer(api, tokens, engine) -> None:  # type: ignore[no-untyped-def]
    headers = {"Idempotency-Key": "upload-1"}
    first = _post(api, tokens["write"], _csv_rows(3), headers=headers)
    after_first = snapshot(engine)
    retry = _post(api, tokens["write"], _csv_rows(3), headers=headers)
    assert retry.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true"
    # The first answer's summary ("created", as the first time, not "unchanged"), no rows.
    assert retry.json() == {name: v for name, v in first.json().items() if name != "rows"}
    assert snapshot(engine) == after_first
    other = _post(api, tokens["write"], _csv_rows(4), headers=headers)
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"


def test_over_the_size_limit_is_413_problem(api, tokens) -> None:  # type: ignore[no-untyped-def]
    response = _post(api, tokens["write"], b"x" * (11 * 1024 * 1024))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_unsupported_content_type_is_415(api, tokens) -> None:  # type: ignore[no-untyped-def]
    response = _post(api, tokens["write"], "hello", "text/plain")
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_imports_need_a_valid_key(api, token: str | None) -> None:  # type: ignore[no-untyped-def]
    headers = {"Content-Type": "text/csv"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = api.post(URL, content=_csv_rows(1).encode(), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


# --- the command line ----------------------------------------------------------------------


def _statsapi(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": url},
        timeout=120,
        check=False,
    )


def _snapshot_of(url: str) -> tuple[object, ...]:
    engine = build_engine(url)
    try:
        return snapshot(engine)
    finally:
        engine.dispose()


@pytest.fixture
def seeded_url(databases: DatabaseFactory) -> Iterator[str]:
    yield databases.fresh("seeded")


def test_export_then_import_into_an_empty_database_reproduces_everything(
    databases: DatabaseFactory, seeded_url: str, tmp_path: Path
) -> None:
    exported = tmp_path / "export.json"
    assert _statsapi("export", "--output", str(exported), url=seeded_url).returncode == 0
    empty_url = databases.fresh("empty")
    imported = _statsapi("import", str(exported), url=empty_url)
    assert imported.returncode == 0, imported.stderr
    again = tmp_path / "again.json"
    assert _statsapi("export", "--output", str(again), url=empty_url).returncode == 0
    assert again.read_bytes() == exported.read_bytes()
    observations = json.loads(exported.read_text(), parse_float=Decimal)["observations"]
    assert observations and all(isinstance(o["value"], int | Decimal) for o in observations)


def test_csv_export_reimports_as_unchanged(seeded_url: str, tmp_path: Path) -> None:
    exported = tmp_path / "export.csv"
    assert (
        _statsapi("export", "--format", "csv", "--output", str(exported), url=seeded_url).returncode
        == 0
    )
    assert exported.read_bytes().startswith("\ufeff".encode())
    result = _statsapi("import", str(exported), url=seeded_url)
    assert result.returncode == 0, result.stderr
    assert " 0 created, 0 changed" in result.stdout


def test_cli_import_of_a_bad_file_exits_1_naming_the_row(seeded_url: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "\r\nnope,320400,2030,1,exact,,cz-tyjrswj-2023-review,q\r\n")
    result = _statsapi("import", str(path), url=seeded_url)
    assert result.returncode == 1
    assert "bad.csv: row 2: indicator: unknown code 'nope'" in result.stderr


def test_cli_import_of_a_bad_bundle_lists_every_error_in_one_pass(
    seeded_url: str, tmp_path: Path
) -> None:
    """Format, text_file and reference errors of a bundle file, printed together by index."""
    source = _source_naming_a_file("../outside.txt")
    # SYNTHETIC rows citing the review's clause, marked derived (tests/factories.py).
    row = {
        "indicator": "adaptive_training_trainees",
        "region": "320400",
        "value": 1,
        "source": "cz-tyjrswj-2023-review",
        "note": "SYNTHETIC",
        **SYNTHETIC_DERIVED,
    }
    rows = [{**row, "year": 1990 + n} for n in range(3)]
    del rows[0]["year"]
    rows[2]["region"] = "320499"  # no such district
    path = tmp_path / "bundle" / "bad.yaml"
    path.parent.mkdir()
    document = {"sources": [source], "observations": rows}
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    before = _snapshot_of(seeded_url)
    result = _statsapi("import", str(path), url=seeded_url)
    assert result.returncode == 1
    printed = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(printed) == 3, result.stderr
    assert [line.split(": ")[2].split(" ")[0] for line in printed] == [
        "sources[0]",
        "observations[0]",
        "observations[2]",
    ]
    assert "bad.yaml: sources[0] (code=sneaky): text_file: must name a file inside" in printed[0]
    assert (
        "observations[0] (indicator=adaptive_training_trainees, region=320400): year"
        in (printed[1])
    )
    assert "bad.yaml: observations[2]: region: unknown code '320499'; did you mean" in printed[2]
    assert _snapshot_of(seeded_url) == before


def test_keys_create_prints_the_token_alone_and_stores_only_its_hash(seeded_url: str) -> None:
    created = _statsapi("keys", "create", "--name", "bureau", "--scope", "write", url=seeded_url)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert created.stdout == token + "\n" and len(token) >= 43
    listed = _statsapi("keys", "list", url=seeded_url)
    assert listed.stdout.startswith("bureau\twrite\t") and token not in listed.stdout
    assert _statsapi("keys", "revoke", "bureau", url=seeded_url).returncode == 0
    assert "revoked" in _statsapi("keys", "list", url=seeded_url).stdout
    assert _statsapi("keys", "revoke", "nobody", url=seeded_url).returncode == 1


@pytest.mark.parametrize(
    ("cell", "field"),
    [
        ("quote", "quote"),  # the quote column becomes a formula
        ("year", "year"),  # a negative year
        ("value", "value"),  # a number too big to be exact
    ],
)
def test_hostile_cells_are_refused_by_row_and_field(api, tokens, engine, cell, field) -> None:  # type: ignore[no-untyped-def]
    row = {"quote": '=HYPERLINK("http://x")', "year": "-2023", "value": "1" * 40}[cell]
    body = _csv_rows(3)
    lines = body.splitlines()
    parts = lines[2].split(",")
    parts[{"quote": 7, "year": 2, "value": 3}[cell]] = f'"{row}"' if cell == "quote" else row
    lines[2] = ",".join(parts)
    before = snapshot(engine)
    response = _post(api, tokens["write"], "\r\n".join(lines) + "\r\n")
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert [(e["record"], e["field"]) for e in errors] == [("row 3", field)]
    assert snapshot(engine) == before


# An invented next-year fixture (SYNTHETIC): a partner's own document, not a real publication.
PARTNER_TEXT = "SYNTHETIC TEST FIXTURE. 2030年全市举办招聘会12场。"


def _partner_source(**fields: object) -> dict[str, object]:
    return {
        "code": "partner-2030-report",
        "title_zh": "合作方2030年报告（测试）",
        "title_en": "Partner 2030 report (synthetic test fixture)",
        "publisher_zh": "合作方",
        "publisher_en": "Partner",
        "published_on": "2031-01-10",
        "year_covered": 2030,
        "text": PARTNER_TEXT,
        **fields,
    }


def _citing(source: dict[str, object]) -> str:
    observation = {
        "indicator": "trained",
        "region": "320400",
        "year": 2030,
        "value": 12,
        "source": source["code"],
        "quote": "全市举办招聘会12场",
    }
    return json.dumps({"sources": [source], "observations": [observation]}, ensure_ascii=False)


def test_a_write_key_registers_a_new_source_with_its_text_and_cites_it(api, tokens) -> None:  # type: ignore[no-untyped-def]
    response = _post(api, tokens["write"], _citing(_partner_source()), "application/json")
    assert response.status_code == 200, response.text
    assert response.json()["summary"]["sources"]["created"] == 1
    stored = api.get("/api/v1/observations/trained/320400/2030").json()
    assert (stored["value"], stored["source"]["id"]) == (12, "partner-2030-report")


def test_a_write_key_may_not_change_a_source_or_register_one_without_text(api, tokens) -> None:  # type: ignore[no-untyped-def]
    assert _post(api, tokens["write"], _citing(_partner_source()), "application/json").is_success
    changed = _partner_source(title_en="Renamed by the partner")
    refused = _post(api, tokens["write"], _citing(changed), "application/json")
    assert refused.status_code == 403
    assert "partner-2030-report" in refused.json()["detail"]
    textless = _partner_source(code="partner-letter", text=None)
    refused = _post(api, tokens["write"], _citing(textless), "application/json")
    assert refused.status_code == 403
    assert "text" in refused.json()["detail"]
    assert _post(api, tokens["admin"], _citing(changed), "application/json").is_success


def test_an_unknown_source_says_how_to_register_it(api, tokens) -> None:  # type: ignore[no-untyped-def]
    row = "trained,320400,2030,12,exact,,cz-tyjrswj-2024-review,全市举办招聘会12场"
    imported = _post(api, tokens["write"], f"{HEADER}\r\n{row}\r\n")
    put = api.put(
        "/api/v1/observations/trained/320400/2030",
        json={"value": 12, "source": "cz-tyjrswj-2024-review", "quote": "12"},
        headers={"Authorization": f"Bearer {tokens['write']}"},
    )
    for response in (imported, put):
        assert response.status_code == 422
        error = response.json()["errors"][0]
        assert error["field"] == "source"
        assert "sources:" in error["message"] and "admin" in error["message"]
