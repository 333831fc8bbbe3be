"""The 2023 dataset is trustworthy: every figure is quoted verbatim and read back from its quote.

Quotes are read by the app's own reader (app/figures.py) and checked by the app's own checker
(app/provenance.py), the ones every write passes: there is no second reading of the review.
"""

import hashlib
import re
from decimal import Decimal
from pathlib import Path

import pytest

from app.bundle import LoadedBundle, read_bundle_file
from app.figures import read_figures
from app.provenance import Claim, SourceFacts, check
from tests.conftest import SEED_DIR, SOURCE_TEXT

SEED_FILE = SEED_DIR / "changzhou-2023-review.yaml"
SOURCE_CODE = "cz-tyjrswj-2023-review"
SOURCE_SHA256 = "ed221873b599d45b5a8ec96ff896e45f6dc7f002a30710b400ff219d39f59a73"
OBSERVATION_COUNT = 57
CODE = re.compile(r"^[a-z][a-z0-9_]*$")
# Pinned so that renaming a code (which breaks every client using it) fails a test.
INDICATOR_CODES = [
    "adaptive_training_trainees",
    "assigned_soldier_posts",
    "assigned_soldier_posts_per_person",
    "assigned_soldiers",
    "assigned_soldiers_public_institutions",
    "contest_standout_startups",
    "district_centres_with_archive_centres",
    "education_training_trainees",
    "employer_subsidies",
    "employment_demonstration_bases",
    "entrepreneurship_contest_consecutive_years",
    "entrepreneurship_space_alliance_members",
    "entrepreneurship_training_trainees",
    "incubator_enterprises_supported",
    "jiangsu_model_military_spouse_nominations",
    "jiangsu_model_military_spouses",
    "jiangsu_model_military_supporters",
    "jiangsu_model_veteran_nominations",
    "job_fair_applicants",
    "job_fair_posts_offered",
    "job_fair_preliminary_agreements",
    "job_fairs_held",
    "joint_practical_projects",
    "large_accident_claim_paid",
    "livestream_viewers",
    "martyrs_cemetery_visitors",
    "military_support_project_funds",
    "model_family_farm_rewards",
    "model_family_farms_rewarded",
    "personalised_training_trainees",
    "preferential_card_applicants",
    "preferential_cards_issued",
    "preferential_treatment_list_batches",
    "projects_supporting_civilians",
    "projects_supporting_the_military",
    "publicity_award_consecutive_years",
    "recruitment_reward_amount",
    "recruitment_reward_consecutive_years",
    "service_stations_upgraded",
    "skills_competition_consecutive_editions",
    "smart_home_class_employed",
    "soldiers_to_village_work",
    "storytelling_audience",
    "storytelling_sessions",
    "students_in_red_lessons",
    "subsidised_loan_recipients",
    "subsidised_loans_amount",
    "tax_policy_booklets_printed",
    "transferred_officers_placed",
    "transferred_officers_public_placement_rate",
    "visiting_organizations",
    "visiting_provinces",
    "visitor_person_times",
    "volunteer_guides_trained",
    "volunteer_teams_honoured",
    "volunteers_honoured",
    "wechat_monthly_reads",
]


def stated(quote: str) -> set[tuple[Decimal, str]]:
    """The statistics a quote states, as app/figures.py reads them: (value, qualifier)."""
    return {
        (figure.value.normalize(), figure.qualifier.value)
        for figure in read_figures(quote)
        if figure.is_statistic
    }


@pytest.fixture(scope="module")
def seed() -> LoadedBundle:
    return read_bundle_file(SEED_FILE)


def test_the_stored_source_is_the_published_text_byte_for_byte() -> None:
    digest = hashlib.sha256(SOURCE_TEXT.read_bytes()).hexdigest()
    shared = Path(__file__).resolve().parents[2] / "shared" / "seed-source" / SOURCE_TEXT.name
    if shared.exists():  # the copy handed to the project, when it is beside the checkout
        assert SOURCE_TEXT.read_bytes() == shared.read_bytes()
    assert digest == SOURCE_SHA256


def test_every_quote_is_verbatim_and_names_one_place(seed: LoadedBundle) -> None:
    text = seed.source_texts[SOURCE_CODE]
    for obs in seed.bundle.observations:
        assert text.count(obs.quote) == 1, f"{obs.indicator}: {obs.quote!r}"


def test_every_observation_keeps_the_provenance_rules(seed: LoadedBundle) -> None:
    """The checker every write passes (app/provenance.py): the quote is in the text as stored
    (no normalisation), it states the value with its qualifier, the source postdates the year."""
    [source] = seed.bundle.sources
    facts = SourceFacts(source.code, source.published_on, seed.source_texts[source.code])
    for obs in seed.bundle.observations:
        claim = Claim(obs.year, obs.value, obs.qualifier.value, obs.quote, obs.note, obs.derived)
        assert check(claim, facts) == [], obs.indicator


def test_every_figure_of_every_quote_is_recorded(seed: LoadedBundle) -> None:
    """No figure in a quote is left out: each is recorded by an observation quoting it (or a
    part of it), unless it is a criterion (30人以上, 100人以上 choose who counts)."""
    criteria = {(Decimal(30), "at_least"), (Decimal(100), "at_least")}
    recorded = [
        (o.quote, (o.value.normalize(), o.qualifier.value)) for o in seed.bundle.observations
    ]
    for quote, _ in recorded:
        covered = {figure for other, figure in recorded if other in quote}
        assert stated(quote) - covered <= criteria, quote


def test_every_figure_is_filed_under_the_section_that_states_it(seed: LoadedBundle) -> None:
    """A section runs from its heading (the category's name_zh) to the next section's."""
    text = seed.source_texts[SOURCE_CODE]
    ordered = sorted(seed.bundle.categories, key=lambda c: c.display_order)
    starts = [text.index(c.name_zh) for c in ordered] + [len(text)]
    sections = {c.code: (starts[i], starts[i + 1]) for i, c in enumerate(ordered)}
    category = {i.code: i.category for i in seed.bundle.indicators}
    for obs in seed.bundle.observations:
        start, end = sections[category[obs.indicator]]
        assert start < text.index(obs.quote) < end, f"{obs.indicator}: {obs.quote!r}"


def test_indicators_have_both_names_and_defined_unit_and_category(seed: LoadedBundle) -> None:
    units = {unit.code for unit in seed.bundle.units}
    categories = {category.code for category in seed.bundle.categories}
    for indicator in seed.bundle.indicators:
        assert indicator.name_zh and indicator.name_en, indicator.code
        assert indicator.unit in units, indicator.code
        assert indicator.category in categories, indicator.code


def test_observations_refer_only_to_records_of_the_bundle(seed: LoadedBundle) -> None:
    bundle = seed.bundle
    indicators = {i.code for i in bundle.indicators}
    regions = {r.code for r in bundle.regions}
    sources = {s.code for s in bundle.sources}
    units = {u.code for u in bundle.units}
    for obs in bundle.observations:
        assert obs.indicator in indicators, obs.indicator
        assert obs.region in regions, (obs.indicator, obs.region)
        assert obs.source in sources, (obs.indicator, obs.source)
        assert obs.unit is None or obs.unit in units, (obs.indicator, obs.unit)


@pytest.mark.parametrize("section", ["units", "categories", "indicators", "regions", "sources"])
def test_codes_are_unique(seed: LoadedBundle, section: str) -> None:
    codes = [record.code for record in getattr(seed.bundle, section)]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("section", ["units", "categories", "indicators"])
def test_codes_are_ascii_snake_case(seed: LoadedBundle, section: str) -> None:
    for record in getattr(seed.bundle, section):
        assert CODE.match(record.code), record.code


def test_indicator_codes_and_observation_count_are_pinned(seed: LoadedBundle) -> None:
    assert sorted(i.code for i in seed.bundle.indicators) == INDICATOR_CODES
    assert len(seed.bundle.observations) == OBSERVATION_COUNT


def test_one_value_per_indicator_region_and_year(seed: LoadedBundle) -> None:
    keys = [(o.indicator, o.region, o.year) for o in seed.bundle.observations]
    assert len(keys) == len(set(keys))


def test_every_section_but_cadre_building_has_figures(seed: LoadedBundle) -> None:
    used = {i.category for i in seed.bundle.indicators}
    categories = [c.code for c in seed.bundle.categories]
    assert set(categories) - used == {"cadre_building"}
    assert len(categories) == 6


def test_district_figures_belong_to_their_districts(seed: LoadedBundle) -> None:
    districts = {o.indicator: o.region for o in seed.bundle.observations if o.region != "320400"}
    assert districts == {
        "skills_competition_consecutive_editions": "320411",  # 新北区
        "large_accident_claim_paid": "320411",  # 新北区
        "recruitment_reward_consecutive_years": "320412",  # 武进区
        "recruitment_reward_amount": "320412",
        "model_family_farms_rewarded": "320412",
        "model_family_farm_rewards": "320412",
        "employer_subsidies": "320404",  # 钟楼区
    }


def test_all_seven_divisions_exist(seed: LoadedBundle) -> None:
    codes = [r.code for r in seed.bundle.regions]
    assert codes == ["320400", "320402", "320404", "320411", "320412", "320413", "320481"]


def test_values_are_exact_decimals(seed: LoadedBundle) -> None:
    for obs in seed.bundle.observations:
        decimals = str(obs.value).partition(".")[2]
        assert "E" not in str(obs.value) and len(decimals) <= 6, (obs.indicator, obs.value)
