"""`statsapi extract`: a review's text to a draft bundle and a report (app/extract.py).

The measures (the 2023 review against its seed, the invented next-year fixture against its
answer key) are app/extract_eval.py's; these tests hold their floors."""

import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from app import extract_eval
from app.bundle import read_bundle_file
from app.extract import (
    ExtractError,
    Knowledge,
    Options,
    decode_text,
    dump_draft,
    extract,
    knowledge_from_file,
)
from app.figures import read_figures
from tests.conftest import SOURCE_TEXT, DatabaseFactory

FIXTURE = extract_eval.NEXT_YEAR_TEXT
HEADER = "年度盘点 | 2024,测试 |\n发布日期:2025-01-03 来源:局办公室 |\n"
FOOTER = "\n主办单位:常州市退役军人事务局\n"


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    """What the 2023 seed bundle teaches, read offline."""
    return knowledge_from_file(extract_eval.SEED)


def _draft(text: str, knowledge: Knowledge, year: int = 2024) -> dict:  # type: ignore[type-arg]
    return extract(text, Options(year=year, source_code="t-review"), knowledge).draft


def test_the_2023_review_gives_back_its_seed(knowledge: Knowledge) -> None:
    # Learning from the same quotes: this checks reading, regions, quotes and decisions; the
    # next-year fixture below is the measure of rewording (README says so).
    result = extract_eval.score(
        extract_eval.run(extract_eval.SEED_TEXT, 2023, knowledge).draft, extract_eval.seed_key()
    )
    assert result.right >= 54, result
    assert result.wrong == [] and result.extra == [], result


def test_the_next_year_fixture_is_mostly_found_and_never_misread(knowledge: Knowledge) -> None:
    result = extract_eval.score(
        extract_eval.run(FIXTURE, 2024, knowledge).draft, extract_eval.fixture_key()
    )
    assert result.right >= 0.8 * result.expected, result
    assert result.wrong == [], result
    # One known confusion (README): 2人获评“江苏最美退役军人” (winners, no indicator) is read as
    # the 2023 nominations (…提名奖), whose clause it repeats but for its last word.
    assert len(result.extra) <= 1, result


def test_every_quote_is_a_clause_of_the_text_stating_its_value(knowledge: Knowledge) -> None:
    text = FIXTURE.read_text(encoding="utf-8")
    draft = _draft(text, knowledge)
    assert draft["observations"]
    for observation in draft["observations"]:
        assert observation["quote"] in text
        stated = {(f.value, f.qualifier.value) for f in read_figures(observation["quote"])}
        assert (observation["value"], observation["qualifier"]) in stated


def test_a_district_named_earlier_in_the_sentence_is_the_region(knowledge: Knowledge) -> None:
    text = (
        HEADER + "金坛区对吸纳退役军人就业较多的企业发放奖补资金25万元。"
        "新北区退役军人尤某意外死亡后,家属获得6万元大额理赔。"
        "全市对吸纳退役军人就业较多的企业发放奖补资金90万元。" + FOOTER
    )
    found = {
        (o["indicator"], o["region"], o["value"]) for o in _draft(text, knowledge)["observations"]
    }
    assert ("employer_subsidies", "320413", Decimal(250000)) in found
    assert ("large_accident_claim_paid", "320411", Decimal(60000)) in found
    assert ("employer_subsidies", "320400", Decimal(900000)) in found


def test_an_uncertain_figure_goes_to_the_report_not_the_draft(knowledge: Knowledge) -> None:
    # Two figures equally like one indicator, with different values: a person decides.
    text = HEADER + "举办本地现场招聘会20场。举办本地现场招聘会21场。聘请创业导师25名。" + FOOTER
    result = extract(text, Options(year=2024, source_code="t-review"), knowledge)
    assert result.draft["observations"] == []
    by_value = {item.value: item for item in result.report}
    assert by_value[Decimal(20)].status == "uncertain"
    assert by_value[Decimal(20)].candidate == "job_fairs_held"
    assert by_value[Decimal(25)].status == "unmatched"
    assert by_value[Decimal(25)].proposed_units == ["person"]
    assert by_value[Decimal(25)].proposed_indicator_zh == "聘请创业导师"


def test_a_unit_word_that_disagrees_is_never_matched(knowledge: Knowledge) -> None:
    text = HEADER + "举办本地现场招聘会20次。" + FOOTER  # 2023 counted them in 场
    assert _draft(text, knowledge)["observations"] == []


def test_the_source_comes_from_the_header_and_keeps_the_text(knowledge: Knowledge) -> None:
    text = HEADER + "创业培训260人次。" + FOOTER
    source = _draft(text, knowledge)["sources"][0]
    assert source["title_zh"] == "年度盘点 | 2024,测试"
    assert source["published_on"] == date(2025, 1, 3)
    assert source["publisher_zh"] == "常州市退役军人事务局 局办公室"
    assert (
        source["publisher_en"]
        == "Changzhou Municipal Bureau of Veterans Affairs, Office of the Bureau"
    )
    assert source["year_covered"] == 2024
    assert source["text"] == text


def test_a_text_without_a_date_needs_the_option(knowledge: Knowledge) -> None:
    with pytest.raises(ExtractError) as raised:
        extract("年度盘点\n创业培训260人次。", Options(year=2024, source_code="t"), knowledge)
    assert raised.value.field == "published_on"


def test_the_draft_reads_back_exactly_as_a_bundle(knowledge: Knowledge, tmp_path: Path) -> None:
    text = SOURCE_TEXT.read_text(encoding="utf-8")
    path = tmp_path / "draft.yaml"
    path.write_text(dump_draft(_draft(text, knowledge, 2023)), encoding="utf-8")
    loaded = read_bundle_file(path)
    assert loaded.source_texts["t-review"] == text
    rate = next(o for o in loaded.bundle.observations if o.indicator.endswith("placement_rate"))
    assert rate.value == Decimal("96.6")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_texts_are_read_in_utf8_with_or_without_bom_and_in_gbk(encoding: str) -> None:
    assert decode_text("创业培训260人次。".encode(encoding)) == "创业培训260人次。"


def _statsapi(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_extract_then_dry_run_import_of_the_2023_review(
    databases: DatabaseFactory, tmp_path: Path
) -> None:
    url = databases.fresh("seeded")
    draft = tmp_path / "draft.yaml"
    extracted = _statsapi(
        "extract", str(SOURCE_TEXT), "--year", "2023", "--source-code", "cz-2023-again",
        "--output", str(draft), database_url=url,
    )  # fmt: skip
    assert extracted.returncode == 0, extracted.stderr
    imported = _statsapi("import", str(draft), "--dry-run", database_url=url)
    assert imported.returncode == 0, imported.stderr
    assert "observations: 0 created, 57 changed" in imported.stdout  # the source and note


def test_extract_then_import_of_a_next_year_answers_comparisons(
    databases: DatabaseFactory,
    make_client,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    url = databases.fresh("seeded")
    draft, report = tmp_path / "draft.yaml", tmp_path / "report.json"
    gbk = tmp_path / "review-gbk.txt"  # as a bureau's Windows machine may save it
    gbk.write_bytes(FIXTURE.read_text(encoding="utf-8").encode("gbk"))
    extracted = _statsapi(
        "extract", str(gbk), "--year", "2024", "--source-code", "cz-2024-fixture",
        "--output", str(draft), "--report", str(report), database_url=url,
    )  # fmt: skip
    assert extracted.returncode == 0, extracted.stderr
    assert "聘请创业导师25名" in extracted.stderr  # the report on stderr
    items = json.loads(report.read_text(encoding="utf-8"))
    assert {"status", "clause", "value", "proposed_units"} <= set(items[0])
    imported = _statsapi("import", str(draft), database_url=url)
    assert imported.returncode == 0, imported.stderr

    from app.db import build_engine

    engine = build_engine(url)
    try:
        client = make_client(engine)
        answer = client.get(
            "/api/v1/comparisons",
            params={"year": 2024, "base_year": 2023, "indicator": "job_fairs_held"},
        ).json()
    finally:
        engine.dispose()
    row = answer["data"][0]
    assert row["comparable"] is True
    assert Decimal(str(row["change"])) == 3  # 22 fairs against 19
    assert yaml.safe_load(draft.read_text(encoding="utf-8"))["sources"][0]["year_covered"] == 2024
