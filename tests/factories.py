"""A small SYNTHETIC world for read tests: made-up figures that live only in test databases.

Several years, regions and qualifiers, so that filters, sorting, `latest` and pagination have
something to bite on. Nothing here is a real statistic.
"""

from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from app.bundle import LoadedBundle, validate_document
from app.db import write_transaction
from app.importer import ImportReport, apply_bundle

SYNTHETIC_SOURCE = "synthetic-test-source"
SYNTHETIC_TEXT = "SYNTHETIC TEST DATA. Not a statistic of any agency."
# SYNTHETIC writes to a database holding the real seed cite the 2023 review with this clause of
# its text, marked `derived` with a note that says SYNTHETIC: they keep the provenance rules
# (app/provenance.py) without claiming the review states them. Their years are at most 2023.
REVIEW_CLAUSE = "本地现场招聘会19场"
SYNTHETIC_DERIVED = {"quote": REVIEW_CLAUSE, "derived": True}


def world_observation(**fields: Any) -> dict[str, Any]:
    """A SYNTHETIC observation of the world (`trained` in 320400, 2030) as a bundle writes it,
    with `fields` changed."""
    return {
        "indicator": "trained",
        "region": "320400",
        "year": 2030,
        "value": 1,
        "source": SYNTHETIC_SOURCE,
        "quote": "synthetic",
        **fields,
    }


def world_document(*, years: range = range(2019, 2024)) -> dict[str, Any]:
    """Two categories, three indicators, three regions, one value per series and year.

    The review's order (display order: trained, funds, then share) is not the alphabetical
    one, so a list that sorts by code where it should not shows."""
    observations = []
    series = [
        ("trained", "320400"),
        ("trained", "320411"),
        ("funds", "320400"),
        ("funds", "320412"),
        ("share", "320400"),
    ]
    for year in years:
        for number, (indicator, region) in enumerate(series):
            # Counts and yuan are non-negative, a rate is within 0-100 (app/sanity.py).
            value = Decimal(abs(year - 2000)) * 10 + number
            if indicator == "share":  # a rate, with a fraction
                value = Decimal(abs(year - 2000) % 24) * 4 + Decimal("0.5")
            observations.append(
                {
                    "indicator": indicator,
                    "region": region,
                    "year": year,
                    "value": str(value),
                    "qualifier": "at_least" if (year + number) % 4 == 0 else "exact",
                    "source": SYNTHETIC_SOURCE,
                    "quote": f"synthetic {indicator} {region} {year}",
                }
            )
    return {
        "sources": [
            {
                "code": SYNTHETIC_SOURCE,
                "title_zh": "合成测试数据",
                "title_en": "Synthetic test data",
                "publisher_zh": "测试",
                "publisher_en": "Tests",
                # After every year the API accepts (bounds.MAX_YEAR): synthetic writes of any
                # year meet the provenance rule that a source outlives the year it states.
                "published_on": "2101-01-01",
                "year_covered": 2023,
            }
        ],
        "units": [
            {"code": "person", "name_zh": "人", "name_en": "persons"},
            {"code": "yuan", "name_zh": "元", "name_en": "yuan"},
            {"code": "percent", "name_zh": "%", "name_en": "percent"},
        ],
        "categories": [
            {"code": "alpha", "name_zh": "甲类", "name_en": "Alpha", "display_order": 1},
            {"code": "beta", "name_zh": "乙类", "name_en": "Beta", "display_order": 2},
            {"code": "empty", "name_zh": "空类", "name_en": "Empty", "display_order": 3},
        ],
        "regions": [
            {"code": "320400", "name_zh": "常州市", "name_en": "Changzhou", "level": "prefecture"},
            {
                "code": "320411",
                "name_zh": "新北区",
                "name_en": "Xinbei District",
                "level": "district",
                "parent": "320400",
            },
            {
                "code": "320412",
                "name_zh": "武进区",
                "name_en": "Wujin District",
                "level": "district",
                "parent": "320400",
            },
        ],
        "indicators": [
            {
                "code": "trained",
                "display_order": 1,
                "category": "alpha",
                "unit": "person",
                "measure_type": "flow",
                "name_zh": "培训人数",
                "name_en": "People trained",
            },
            {
                "code": "funds",
                "display_order": 2,
                "category": "alpha",
                "unit": "yuan",
                "measure_type": "flow",
                "name_zh": "资金",
                "name_en": "Funds spent",
            },
            {
                "code": "share",
                "display_order": 1,
                "category": "beta",
                "unit": "percent",
                "measure_type": "rate",
                "name_zh": "安置比例",
                "name_en": "Placement rate",
            },
        ],
        "observations": observations,
    }


INEXACT = ("96.6", "0.1", "1234567.891")  # decimals no float holds exactly


def inexact_corrections(document: dict[str, Any]) -> None:
    """SYNTHETIC corrections: INEXACT values where they make sense (app/sanity.py): whole
    numbers for the trained (a count), no rate above 100."""
    for number, observation in enumerate(document["observations"]):
        observation["value"] = INEXACT[number % len(INEXACT)]
        if observation["indicator"] == "trained":
            observation["value"] = str(1000 + number)
        elif observation["indicator"] == "share" and Decimal(observation["value"]) > 100:
            observation["value"] = "0.001"


def load_document(engine: Engine, document: dict[str, Any], name: str = "test") -> ImportReport:
    """Apply a bundle document (as parsed YAML) in one write transaction."""
    bundle = validate_document(document, name=name)
    loaded = LoadedBundle(name=name, bundle=bundle, source_texts={})
    with write_transaction(engine) as connection:
        return apply_bundle(connection, loaded, recorded_by="test")
