"""The rules `statsapi extract` follows, in one place, for a domain expert to read and change.

How a review's text becomes a draft (the pipeline itself is app/extract.py; numbers are read
by app/figures.py, the one reader of the review's numbers):

1. The text is cut into sentences and clauses at the punctuation below (CLAUSE_BREAKS). A
   clause is what a draft observation quotes, verbatim.
2. Each figure's context is the clause's words on either side of the number, with every other
   number written `#` and every region name `@` (CONTEXT_FORM): "钟楼区对...奖补资金32万元"
   and "金坛区对...奖补资金25万元" then read alike, and a changed number changes nothing.
3. An indicator is known by its earlier quotes (the same context, taken from the clause of the
   stored source text that holds the quote), its unit words, and the regions it was stated for.
4. A figure is scored against each indicator whose unit word agrees (`unit_words_agree`):
   `score` below. It is matched only when the best score reaches ACCEPT_SCORE and beats the
   runner-up by MARGIN; one figure per indicator and region (the best wins). Anything else goes
   to the report, never into the draft.
5. Its region is the district or county-level city named last before it in its clause, or else
   earlier in its sentence; `全市` names the city; with no name, the city.
"""

import re
from collections.abc import Iterable

from rapidfuzz import fuzz

from app.figures import QUALIFIER_WORDS_AFTER, QUALIFIER_WORDS_AFTER_UNIT, UNIT_WORDS

# --- Cutting the text -------------------------------------------------------------------------

# A sentence ends at these (and at a new line, a caption's ▲, or the web page's | separators).
SENTENCE_BREAKS = "。！？!?\n▲|"
# A clause also ends at a comma or a semicolon. Not at 、 (it joins a list inside a clause:
# 福建、西藏) and not at a colon (1:1.5 is a ratio).
CLAUSE_BREAKS = SENTENCE_BREAKS + "，,；;"

# --- Regions ------------------------------------------------------------------------------------

# Words that name the whole city (a clause saying 全市 is about the city even when a district
# was named earlier in the sentence). The district names come from the regions table, written
# in full (武进区, 溧阳市): short forms such as 武进 are not read, because 溧阳监狱 (a prison)
# or 钟楼 (a bell tower) would then make a city-wide figure a district's.
CITY_WORDS = ("全市", "市级", "市本级")

# --- Context ------------------------------------------------------------------------------------

NUMBER_MARK = "#"
REGION_MARK = "@"
# Only the words nearest the number count: a clause's far end is often another figure's.
CONTEXT_CHARS = 12
WHOLE_SIDE_CHARS = 40  # the whole side of a clause, up to this
CLAUSE_EDGE = "|"  # where a clause starts or ends, compared like a word
_DIGITS = re.compile(r"\d+(?:[.,:：]\d+)*")


def context_form(text: str, region_names: Iterable[str]) -> str:
    """The words of a context as they are compared: numbers `#`, region names `@`, no spaces."""
    text = _DIGITS.sub(NUMBER_MARK, text)
    for name in sorted(region_names, key=len, reverse=True):
        text = text.replace(name, REGION_MARK)
    return "".join(text.split())


# --- Units --------------------------------------------------------------------------------------

# Unit words that say the same thing. A figure's unit word must be one of the indicator's (its
# earlier quotes' or its unit's Chinese name), or a synonym of one: 名 and 人 both count persons.
UNIT_WORD_SYNONYMS = (
    frozenset({"人", "名", "位"}),
    frozenset({"%", "％"}),
)


def unit_word_class(word: str) -> frozenset[str]:
    """The word and its synonyms."""
    for group in UNIT_WORD_SYNONYMS:
        if word in group:
            return group
    return frozenset({word})


def unit_words_agree(word: str, known: Iterable[str]) -> bool:
    """True when `word` (written after the figure) is one of `known` or a synonym of one."""
    return any(other in unit_word_class(word) for other in known)


# --- Scoring ------------------------------------------------------------------------------------

ACCEPT_SCORE = 70.0  # out of 100: below it, a figure is only proposed in the report
MARGIN = 8.0  # the best indicator must beat the runner-up by this much, or it is uncertain
REPORT_SCORE = 40.0  # candidates below this are not worth a reviewer's time: not listed
REGION_BONUS = 5.0  # the figure's region is one this indicator was stated for before
NAME_WEIGHT = 0.2  # the indicator's Chinese name found near the number: weak, added evidence


def side_similarity(learned: str, new: str, *, before: bool) -> float:
    """0-100: how alike two contexts are on one side of the number, nearest words first.

    Compared at three reaches (the nearest 4 characters, CONTEXT_CHARS, and the whole side up
    to the clause's end, marked), so that the words touching the number weigh most (本地现场
    招聘会19场 and 举办现场招聘会22场 agree on 招聘会), and a clause that stops short of the
    earlier one (获评“江苏最美退役军人” against 获评“江苏最美退役军人”提名奖) still differs.
    """
    learned, new = (
        (CLAUSE_EDGE + learned, CLAUSE_EDGE + new)
        if before
        else (
            learned + CLAUSE_EDGE,
            new + CLAUSE_EDGE,
        )
    )
    scores = []
    for reach in (4, CONTEXT_CHARS, WHOLE_SIDE_CHARS):
        a, b = (learned[-reach:], new[-reach:]) if before else (learned[:reach], new[:reach])
        scores.append(fuzz.ratio(a, b))
    return sum(scores) / len(scores)


def score(
    learned_left: str,
    learned_right: str,
    new_left: str,
    new_right: str,
) -> float:
    """0-100: the context of a new figure against one earlier quote of an indicator.

    Each side weighs by how much the earlier quote said on that side: a quote that starts at
    its number (2782名退役士兵应聘) is known by its right side only.
    """
    left_weight = min(len(learned_left), CONTEXT_CHARS) + 1
    right_weight = min(len(learned_right), CONTEXT_CHARS) + 1
    left = side_similarity(learned_left, new_left, before=True)
    right = side_similarity(learned_right, new_right, before=False)
    return (left * left_weight + right * right_weight) / (left_weight + right_weight)


def name_similarity(name_zh: str, clause: str) -> float:
    """0-100: the indicator's Chinese name found in the clause (partly)."""
    return fuzz.partial_ratio(name_zh, clause) if name_zh and clause else 0.0


# --- The report's proposals ------------------------------------------------------------------

# Words that start a clause without naming what is counted: dropped from a proposed name.
LEADING_FILLER = (
    *("先后", "今年", "全年", "年内", "累计", "共计", "其中", "目前", "已经", "全市", "共"),
    *("已", "为", "对", "有", "了", "新增", "组织", "开展", "举办", "完成", "达到", "达", "近"),
)
NAME_MAX_CHARS = 30


def proposed_name(left: str, right: str) -> str | None:
    """A Chinese name for a figure no indicator knows: the clause's words between the number
    before it and this one (or after it, when there are none), without leading filler words."""
    words = left.rsplit(NUMBER_MARK, 1)[-1] if NUMBER_MARK in left else left
    words = _strip_leading(
        words, (*UNIT_WORDS, *QUALIFIER_WORDS_AFTER, *QUALIFIER_WORDS_AFTER_UNIT)
    )
    if _cjk_count(words) < 2:
        words = right.split(NUMBER_MARK, 1)[0]
    words = _strip_leading(words.replace(REGION_MARK, "").strip("“”\"'()（）、|"), LEADING_FILLER)
    return words[:NAME_MAX_CHARS] if _cjk_count(words) >= 2 else None


def _strip_leading(words: str, prefixes: Iterable[str]) -> str:
    """`words` without any of `prefixes` at its start, repeatedly, longest first."""
    ordered = sorted(prefixes, key=len, reverse=True)
    changed = True
    while changed:
        changed = False
        for prefix in ordered:
            if prefix and words.startswith(prefix) and len(words) > len(prefix) + 1:
                words = words[len(prefix) :]
                changed = True
                break
    return words


def _cjk_count(text: str) -> int:
    return sum(1 for char in text if "\u4e00" <= char <= "\u9fff")


# --- The header of a published review --------------------------------------------------------

# The web page's first lines: the title, then "发布日期:2024-01-02 来源:局办公室"; its footer
# names the publisher ("主办单位:常州市退役军人事务局"). Labels and their value up to a space
# or the page's | separator.
HEADER_LINES = 3
DATE_LABELS = ("发布日期", "发布时间", "日期")
SOURCE_LABELS = ("来源",)
PUBLISHER_LABELS = ("主办单位", "发布机构")
TITLE_SEPARATOR = "|"  # the page ends its title line with " |"


def labelled(text: str, labels: Iterable[str]) -> str | None:
    """The value after the first of `labels` found in `text` (发布日期:2024-01-02 -> 2024-01-02)."""
    for label in labels:
        found = re.search(rf"{re.escape(label)}\s*[:：]\s*([^\s|]+)", text)
        if found:
            return found.group(1)
    return None
