"""How the review's Chinese states a figure: the rules a domain expert checks, in one place.

`read_figures(text)` finds every number a text states and reads it as the bureau means it:

- the number: Arabic (608, 1027.3, 6,237) or Chinese (两届, 五批: read by `cn2an`), with 万 and
  亿 expanded to base units (1027.3万元 is 10,273,000 yuan);
- its qualifier, from the words around it (QUALIFIER_WORDS_BEFORE / _AFTER below);
- the unit or measure word written after it (元, 人次, 场, %), which the extractor uses;
- what kind of number it is: a figure, or a year, a date, an ordinal (第二批), a phone or
  document number, which are not statistics.

The provenance checker (a quote must state its value) and the extractor (a review's text to a
draft bundle) both read numbers through this module and nothing else, so that what one writes
the other accepts.
"""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

import cn2an

from app.models import Qualifier

# The words that qualify a number, before it ("超过100") or after it ("100余", "100人以上").
# The longest word is tried first. "达" and "达到" say the figure was reached: exact.
QUALIFIER_WORDS_BEFORE: dict[str, Qualifier] = {
    "超过": Qualifier.at_least,
    "逾": Qualifier.at_least,
    "超": Qualifier.at_least,
    "接近": Qualifier.approximate,
    "将近": Qualifier.approximate,
    "近": Qualifier.approximate,
    "约": Qualifier.approximate,
    "大约": Qualifier.approximate,
    "不足": Qualifier.at_most,
    "不到": Qualifier.at_most,
    "达到": Qualifier.exact,
    "达": Qualifier.exact,
}
# Right after the number (and its 万): "80多家", "3000余册", "16万+".
QUALIFIER_WORDS_AFTER: dict[str, Qualifier] = {
    "余": Qualifier.at_least,
    "多": Qualifier.at_least,
    "+": Qualifier.at_least,  # "16万+"; not "1+X", where + joins two names
    "＋": Qualifier.at_least,
}
# After the unit word: "30人以上", "100人左右", "50人以下".
QUALIFIER_WORDS_AFTER_UNIT: dict[str, Qualifier] = {
    "以上": Qualifier.at_least,
    "及以上": Qualifier.at_least,
    "左右": Qualifier.approximate,
    "以下": Qualifier.at_most,
    "以内": Qualifier.at_most,
}
MULTIPLIERS = {"万": Decimal(10_000), "亿": Decimal(100_000_000)}

# Unit and measure words after a number (and its 万); the longest is tried first (人次, 人).
UNIT_WORDS = [
    *("元", "人次", "名", "人", "户", "家", "个省", "个", "项", "场", "次", "批", "届", "年"),
    *("册", "张", "所", "支", "位", "处", "期", "件", "套", "天", "小时", "公里", "平方米"),
    *("%", "％", "个百分点"),
]

# A Chinese numeral is read only when a measure word follows it (两届, 五批, 十二个): elsewhere
# 一 is an article (一年来, 一次性), and idioms (四下基层, 八连冠) are not figures.
CHINESE_DIGITS = "零〇一二两三四五六七八九十百千"
CHINESE_MEASURE_WORDS = "批届个家名人项场次户张册所支位处期件年"


class Kind(StrEnum):
    figure = "figure"  # a statistic
    ratio = "ratio"  # "1:1.5": read as the second term per one of the first (1.5)
    year = "year"  # 2023年
    date = "date"  # 1月2日, 2024-01-02
    ordinal = "ordinal"  # 第二批, 第3届
    code = "code"  # a phone, document or postal number: no statistic


# Spans that hold numbers but no statistic: dates, phone numbers, document numbers.
NOT_STATISTICS: dict[Kind, re.Pattern[str]] = {
    Kind.date: re.compile(
        r"\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}日?|\d{4}年\d{1,2}月|\d{1,2}月\d{1,2}日|\d{1,2}月份?"
        r"|\d{1,2}:\d{2}"  # a time of day
    ),
    Kind.code: re.compile(
        r"(?:\(?0\d{2,3}\)?[-—]?)?\d{7,8}"  # a phone number
        r"|[〔\[(（]\d{4}[〕\])）]\d+号|\d+号"  # a document or street number
        r"|\d{6}(?=\s|$)"  # a postal code
        r"|[A-Za-z]+\d+(?:\.\d+)?|\d+[*×]\d+"  # IE9.0, IPV6, 1024*768
    ),
}


@dataclass(frozen=True)
class Figure:
    start: int  # text[start:end] is the number as written, with its 万 and qualifier words
    end: int
    value: Decimal  # in base units
    qualifier: Qualifier
    unit_word: str  # the measure word right after the number ("" if none)
    kind: Kind

    @property
    def is_statistic(self) -> bool:
        return self.kind in (Kind.figure, Kind.ratio)


_before = "|".join(sorted(map(re.escape, QUALIFIER_WORDS_BEFORE), key=len, reverse=True))
_after = "(?:" + "|".join(map(re.escape, QUALIFIER_WORDS_AFTER)) + r")(?![A-Za-z0-9])"
_after_unit = "|".join(sorted(map(re.escape, QUALIFIER_WORDS_AFTER_UNIT), key=len, reverse=True))
_units = "|".join(sorted(map(re.escape, UNIT_WORDS), key=len, reverse=True))
_NUMBER = re.compile(
    rf"(?P<ordinal>第)?(?P<before>{_before})?"
    rf"(?:(?P<arabic>\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    rf"(?P<ratio>[:：]\d+(?:\.\d+)?)?"
    rf"|(?P<chinese>[{CHINESE_DIGITS}]+)(?=[万亿]?(?:[{CHINESE_MEASURE_WORDS}])))"
    rf"(?P<multiplier>[万亿])?(?P<after>{_after})?"
    rf"(?P<unit>{_units})?(?P<after_unit>{_after_unit})?"
)


def read_figures(text: str) -> list[Figure]:
    """Every number the text states, in order, read as the bureau means it."""
    masked = {
        position: kind
        for kind, pattern in NOT_STATISTICS.items()
        for found in pattern.finditer(text)
        for position in range(found.start(), found.end())
    }
    figures = []
    for match in _NUMBER.finditer(text):
        value = _value(match)
        if value is None or match["chinese"] == "一":
            continue  # a lone 一 is an article (一批可看, 一个深刻, 这一年): the review writes 1
        figures.append(
            Figure(
                start=match.start(),
                end=match.end(),
                value=value,
                qualifier=_qualifier(match),
                unit_word=match["unit"] or "",
                kind=_kind(match, masked),
            )
        )
    return figures


def _value(match: re.Match[str]) -> Decimal | None:
    try:
        if match["arabic"]:
            value = Decimal(match["arabic"].replace(",", ""))
            if match["ratio"]:
                value = Decimal(match["ratio"][1:]) / value if value else value
        else:
            value = Decimal(int(cn2an.cn2an(match["chinese"], "smart")))
    except (InvalidOperation, ValueError, ArithmeticError):
        return None  # "〇〇" and the like: not a number cn2an reads
    if match["multiplier"]:
        value *= MULTIPLIERS[match["multiplier"]]
    # 1.0273E+7 would be exact but unreadable: whole numbers are written out.
    return Decimal(int(value)) if value == value.to_integral() else value.normalize()


def _qualifier(match: re.Match[str]) -> Qualifier:
    """The strongest word wins: a bound or an approximation is never read as exact."""
    said = [
        QUALIFIER_WORDS_BEFORE.get(match["before"] or ""),
        QUALIFIER_WORDS_AFTER.get(match["after"] or ""),
        QUALIFIER_WORDS_AFTER_UNIT.get(match["after_unit"] or ""),
    ]
    for qualifier in (Qualifier.at_least, Qualifier.at_most, Qualifier.approximate):
        if qualifier in said:
            return qualifier
    return Qualifier.exact


def _kind(match: re.Match[str], masked: dict[int, Kind]) -> Kind:
    number_start = match.start("arabic") if match["arabic"] else match.start("chinese")
    if number_start in masked:
        return masked[number_start]
    if match["ordinal"]:
        return Kind.ordinal
    if match["ratio"]:
        return Kind.ratio
    arabic = match["arabic"] or ""
    if (
        arabic.isdigit()
        and len(arabic) == 4
        and 1900 <= int(arabic) <= 2100
        and match["unit"] in ("年", None)
    ):
        return Kind.year  # "2023年", or a bare 2023 in a title; a count of 2023 has its unit
    return Kind.figure
