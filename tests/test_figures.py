"""`read_figures` reads numbers as the review's README says to read them."""

from decimal import Decimal

import pytest

from app.figures import Kind, read_figures
from tests.conftest import SOURCE_TEXT


def _read(text: str) -> list[tuple[str, str, str, str]]:
    return [
        (str(f.value), f.qualifier.value, f.unit_word, f.kind.value) for f in read_figures(text)
    ]


@pytest.mark.parametrize(
    ("text", "figures"),
    [
        ("投入拥军办实事经费1027.3万元", [("10273000", "exact", "元", "figure")]),
        ("单月阅读量超16万+", [("160000", "at_least", "", "figure")]),
        ("受众5万余人次", [("50000", "at_least", "人次", "figure")]),
        ("单位近800人次", [("800", "approximate", "人次", "figure")]),
        ("人岗比例超过1:1.5", [("1.5", "at_least", "", "ratio")]),
        ("比例达到96.6%", [("96.6", "exact", "%", "figure")]),
        ("贷款1.2亿元", [("120000000", "exact", "元", "figure")]),
        ("不足50人", [("50", "at_most", "人", "figure")]),
        ("约3000册", [("3000", "approximate", "册", "figure")]),
        ("岗位6,237个", [("6237", "exact", "个", "figure")]),
        (
            "先后有15个省80多家单位近800人次",
            [
                ("15", "exact", "个省", "figure"),
                ("80", "at_least", "家", "figure"),
                ("800", "approximate", "人次", "figure"),
            ],
        ),
        (
            "为招录退役士兵30人以上企业发放一次性奖励金10万元",
            [("30", "at_least", "人", "figure"), ("100000", "exact", "元", "figure")],
        ),
    ],
)
def test_numbers_are_read_with_wan_qualifier_and_unit(
    text: str, figures: list[tuple[str, str, str, str]]
) -> None:
    assert _read(text) == figures


@pytest.mark.parametrize(
    ("text", "figures"),
    [
        ("连续两届组织", [("2", "exact", "届", "figure")]),
        ("先后推出五批优待目录清单", [("5", "exact", "批", "figure")]),
        ("组织一百零五场", [("105", "exact", "场", "figure")]),
        ("全市第二批示范基地", [("2", "exact", "批", "ordinal")]),
        ("形成了一批可看可学的品牌", []),  # a lone 一 is an article
        ("这一年,各级领导关怀", []),
        ("延安双拥运动80周年", [("80", "exact", "", "figure")]),
        ("以“1+X”为主要内容", [("1", "exact", "", "figure")]),  # + joins two names here
    ],
)
def test_chinese_numerals_ordinals_and_articles(
    text: str, figures: list[tuple[str, str, str, str]]
) -> None:
    assert _read(text) == figures


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("发布日期:2024-01-02", [Kind.date, Kind.date, Kind.date]),
        ("2023年12月", [Kind.date, Kind.date]),
        ("全面汇聚起2024年常州", [Kind.year]),
        ("电话:0519-85688222", [Kind.code, Kind.code]),
        ("汉江路390号", [Kind.code]),
        ("工作日9:00-17:00", [Kind.date, Kind.date]),
        ("推荐使用1024*768或以上,IE9.0", [Kind.code, Kind.code, Kind.code]),
    ],
)
def test_dates_phones_and_addresses_are_not_statistics(text: str, kinds: list[Kind]) -> None:
    figures = read_figures(text)
    assert [f.kind for f in figures] == kinds
    assert not any(f.is_statistic for f in figures)


def test_the_span_is_the_number_as_written() -> None:
    text = "受众5万余人次。"
    (figure,) = read_figures(text)
    assert text[figure.start : figure.end] == "5万余人次"
    assert figure.value == Decimal(50000)


def test_every_statistic_of_the_2023_review_is_found_once() -> None:
    """64 numbers of the body read as statistics (the seed holds 57 of them; 80周年 and 七个
    精准 are among the rest); none of the footer's numbers is one."""
    text = SOURCE_TEXT.read_text(encoding="utf-8")
    statistics = [f for f in read_figures(text) if f.is_statistic]
    assert len(statistics) == 64
    footer = text.index("电话")
    assert all(f.start < footer for f in statistics)
