"""A review's text to a draft bundle: the figures it can tie to known indicators, and a report
of every other statistic. `statsapi extract` and `POST /extractions` both run `extract`.

Indicators are learned from their earlier observations (`learn`: the database's, or a bundle's
for offline use); the rules (clauses, contexts, regions, scores, thresholds) are in
app/extract_rules.py, and numbers are read by app/figures.py only. Nothing uncertain goes into
the draft, and every draft value is read from the clause its quote holds: `extract` checks that
the quote states the value with its qualifier before it writes the observation.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from app import extract_rules as rules
from app.bundle import FORMAT, Bundle, read_bundle_file
from app.errors import InvalidParameterError, UnsupportedMediaTypeError
from app.exporter import export_bundle
from app.figures import Figure, Kind, read_figures
from app.models import RegionLevel
from app.schemas import ExactNumber

NOTE = "extracted by statsapi extract (score {score:.0f}); check before import"
UNTRANSLATED = "Untranslated: {text}"


class ExtractError(ValueError):
    """The draft cannot be made: `field` (an option) must be given."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# --- Where each figure sits in its text -------------------------------------------------------


@dataclass(frozen=True)
class Located:
    """A statistic of a text, with its clause and sentence (spans) and its two contexts."""

    figure: Figure
    clause: tuple[int, int]
    sentence: tuple[int, int]
    left: str  # rules.context_form of the clause before the figure
    right: str  # and after it


def _spans(text: str, breaks: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for index, char in enumerate(text):
        if char in breaks:
            spans.append((start, index))
            start = index + 1
    spans.append((start, len(text)))
    return [span for span in spans if span[0] < span[1]]


def _containing(spans: list[tuple[int, int]], position: int) -> tuple[int, int]:
    return next(span for span in spans if span[0] <= position < span[1])


def locate(text: str, region_names: Iterable[str]) -> list[Located]:
    """Every statistic of `text` (dates, codes and ordinals aside), in order, with its contexts."""
    names = list(region_names)
    clauses = _spans(text, rules.CLAUSE_BREAKS)
    sentences = _spans(text, rules.SENTENCE_BREAKS)
    located = []
    for figure in read_figures(text):
        if not figure.is_statistic:
            continue
        clause = _containing(clauses, figure.start)
        if figure.end > clause[1]:
            continue  # a number written across a clause break (1,000 read as a list): not one
        located.append(
            Located(
                figure=figure,
                clause=clause,
                sentence=_containing(sentences, figure.start),
                left=rules.context_form(text[clause[0] : figure.start], names),
                right=rules.context_form(text[figure.end : clause[1]], names),
            )
        )
    return located


# --- What is known of each indicator ----------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One earlier quote of an indicator: its contexts, unit word and region."""

    left: str
    right: str
    unit_word: str
    region: str


@dataclass
class Profile:
    code: str
    name_zh: str
    kind: Kind  # figure or ratio
    unit_words: set[str]  # the earlier quotes' unit words and the unit's Chinese name
    examples: list[Example] = field(default_factory=list)

    @property
    def regions(self) -> set[str]:
        return {example.region for example in self.examples}


@dataclass(frozen=True)
class Knowledge:
    profiles: list[Profile]
    regions: dict[str, str]  # name_zh -> code, districts and county-level cities
    city: str  # the prefecture's code (320400)
    units: dict[str, str]  # code -> name_zh
    publishers: dict[str, str]  # publisher_zh -> publisher_en, from the known sources


def _quoted_figure(
    located: list[Located], start: int, end: int, value: Decimal, qualifier: str, unit: str
) -> Located | None:
    """The figure within text[start:end] that states `value` with `qualifier`; of several, the
    one whose unit word agrees with the indicator's unit (8个队和8名志愿者)."""
    stating = [
        item
        for item in located
        if start <= item.figure.start and item.figure.end <= end
        if item.figure.value == value and item.figure.qualifier == qualifier
    ]
    agreeing = [item for item in stating if rules.unit_words_agree(item.figure.unit_word, {unit})]
    return next(iter(agreeing or stating), None)


def learn(bundle: Bundle, source_texts: dict[str, str]) -> Knowledge:
    """What a bundle (the database's export, or a file) teaches about its indicators.

    Each observation's quote is found in its source's stored text, and the figure stating the
    value is read with the whole clause around it; without a stored text, the quote alone."""
    prefectures = [r.code for r in bundle.regions if r.level == RegionLevel.prefecture]
    city = prefectures[0] if len(prefectures) == 1 else "320400"
    regions = {r.name_zh: r.code for r in bundle.regions if r.code != city}
    units = {u.code: u.name_zh for u in bundle.units}
    names = list(regions)
    located_texts = {code: (text, locate(text, names)) for code, text in source_texts.items()}
    unit_names = {i.code: units.get(i.unit, "") for i in bundle.indicators}
    profiles = {
        i.code: Profile(i.code, i.name_zh, Kind.figure, {unit_names[i.code]})
        for i in bundle.indicators
    }
    for observation in bundle.observations:
        profile = profiles.get(observation.indicator)
        if profile is None:
            continue
        text, located = located_texts.get(observation.source, ("", []))
        start = text.find(observation.quote) if text else -1
        if start < 0:  # no stored text, or the quote is not in it: read the quote alone
            text, located, start = observation.quote, locate(observation.quote, names), 0
        found = _quoted_figure(
            located,
            start,
            start + len(observation.quote),
            observation.value,
            observation.qualifier,
            unit_names[profile.code],
        )
        if found is None:
            continue  # a derived value, or a quote that does not state it: nothing to learn
        profile.kind = found.figure.kind
        profile.unit_words.add(found.figure.unit_word)
        profile.examples.append(
            Example(found.left, found.right, found.figure.unit_word, observation.region)
        )
    publishers = {s.publisher_zh: s.publisher_en for s in bundle.sources}
    learned = [profile for profile in profiles.values() if profile.examples]
    return Knowledge(learned, regions, city, units, publishers)


def knowledge_from_database(connection: Connection) -> Knowledge:
    """What the database's observations teach (every year, every source)."""
    exported = export_bundle(connection)
    texts = {s["code"]: s.pop("text") for s in exported["sources"] if s.get("text") is not None}
    for source in exported["sources"]:
        source.pop("text", None)
    return learn(Bundle.model_validate(exported), texts)


def knowledge_from_file(path: Path) -> Knowledge:
    """What a bundle file teaches (offline: no database needed)."""
    loaded = read_bundle_file(path)
    return learn(loaded.bundle, loaded.source_texts)


# --- Matching ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    indicator: str
    score: float


def _region(text: str, item: Located, knowledge: Knowledge) -> str:
    """The region named last before the figure in its clause, else in its sentence; the city
    when none is (or when 全市 is the last name)."""
    for start, _ in (item.clause, item.sentence):
        before = text[start : item.figure.start]
        named = [(before.rfind(name), code) for name, code in knowledge.regions.items()]
        named += [(before.rfind(word), knowledge.city) for word in rules.CITY_WORDS]
        position, code = max(named, default=(-1, knowledge.city))
        if position >= 0:
            return code
    return knowledge.city


def _candidates(item: Located, region: str, clause: str, knowledge: Knowledge) -> list[Candidate]:
    """Every indicator the figure may be, best first."""
    found = []
    for profile in knowledge.profiles:
        if profile.kind != item.figure.kind:
            continue
        if not rules.unit_words_agree(item.figure.unit_word, profile.unit_words):
            continue
        context = max(
            rules.score(example.left, example.right, item.left, item.right)
            for example in profile.examples
        )
        name = rules.name_similarity(profile.name_zh, clause)
        total = (1 - rules.NAME_WEIGHT) * context + rules.NAME_WEIGHT * name
        if region in profile.regions:
            total += rules.REGION_BONUS
        found.append(Candidate(profile.code, round(total, 1)))
    return sorted(found, key=lambda candidate: -candidate.score)


# --- The result -------------------------------------------------------------------------------


class ReportItem(BaseModel):
    """A statistic of the text that is not in the draft, and why."""

    status: Literal["uncertain", "unmatched"] = Field(
        description="uncertain: it may be `candidate`, but not surely enough for the draft; "
        "unmatched: no known indicator fits it."
    )
    clause: str = Field(description="The clause that states it, verbatim.")
    value: ExactNumber = Field(description="In base units (万 and 亿 expanded).")
    qualifier: str
    unit_word: str = Field(description="The unit or measure word written after the number.")
    proposed_units: list[str] = Field(description="Units whose Chinese name is that word.")
    region: str = Field(description="The region the clause names (the city when none).")
    candidate: str | None = Field(default=None, description="The best indicator, if any.")
    score: float | None = Field(default=None, description="Its score, 0-100 (and more).")
    runner_up: str | None = None
    runner_up_score: float | None = None
    reason: str
    proposed_indicator_zh: str | None = Field(
        default=None, description="For a new indicator: a Chinese name from the clause."
    )


@dataclass(frozen=True)
class Extraction:
    draft: dict[str, Any]  # a bundle (statsapi-bundle/1), as `statsapi import` reads it
    report: list[ReportItem]


@dataclass(frozen=True)
class Options:
    year: int
    source_code: str
    published_on: date | None = None
    title_zh: str | None = None
    url: str | None = None
    publisher_zh: str | None = None


def _quote(text: str, item: Located) -> str:
    """The clause, verbatim, without the blanks or a formula-like start at either end."""
    start, end = item.clause
    while start < item.figure.start and (text[start].isspace() or text[start] in "=+-@"):
        start += 1
    return text[start:end].strip()


def _states(quote: str, value: Decimal, qualifier: str) -> bool:
    return any(f.value == value and f.qualifier == qualifier for f in read_figures(quote))


def _source(text: str, options: Options, knowledge: Knowledge) -> dict[str, Any]:
    header = "\n".join(text.strip().splitlines()[: rules.HEADER_LINES])
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    title = options.title_zh or first_line.strip().rstrip(rules.TITLE_SEPARATOR).strip()
    if not title or len(title) > 300:
        raise ExtractError("title_zh", "the text's first line is no title: give the title")
    published = options.published_on
    if published is None:
        written = rules.labelled(header, rules.DATE_LABELS)
        try:
            published = date.fromisoformat(written or "")
        except ValueError:
            raise ExtractError(
                "published_on", "the text's header states no publication date: give it"
            ) from None
    publisher = options.publisher_zh or " ".join(
        part
        for part in (
            rules.labelled(text, rules.PUBLISHER_LABELS),
            rules.labelled(header, rules.SOURCE_LABELS),
        )
        if part
    )
    if not publisher:
        raise ExtractError("publisher_zh", "the text names no publisher (主办单位, 来源): give it")
    source: dict[str, Any] = {
        "code": options.source_code,
        "title_zh": title,
        "title_en": UNTRANSLATED.format(text=title),
        "publisher_zh": publisher,
        "publisher_en": knowledge.publishers.get(publisher) or UNTRANSLATED.format(text=publisher),
        "published_on": published,
        "year_covered": options.year,
    }
    if options.url:
        source["url"] = options.url
    return {**source, "language": "zh-Hans", "text": text}


@dataclass(frozen=True)
class Scored:
    """A statistic of the new text, its region and the indicators it may be, best first."""

    item: Located
    region: str
    candidates: list[Candidate]

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def score_for(self, indicator: str) -> float:
        return next((c.score for c in self.candidates if c.indicator == indicator), 0.0)


def decide(scored: list[Scored]) -> tuple[list[Scored], list[tuple[Scored, str]]]:
    """Which figures go into the draft; the others with the reason they do not.

    A figure can only be its best indicator. Of the figures whose best is the same indicator
    and region, the best-scoring holds it (the first in the text on a tie; on a tie with another
    value, neither: that is for a person to decide). The holder must then reach ACCEPT_SCORE and
    beat its runner-up by MARGIN, where an indicator that another figure fits at least as well is
    no runner-up (1人获评“江苏最美军嫂” and 1人获评“江苏最美军嫂”提名奖 are each other's
    runner-up, and each is the better fit for its own indicator).
    """
    holders: dict[tuple[str, str], Scored] = {}
    left_out: list[tuple[Scored, str]] = []
    ranked = sorted(scored, key=lambda s: (-(s.best.score if s.best else 0), s.item.figure.start))
    for entry in ranked:
        best = entry.best
        if best is None or best.score < rules.ACCEPT_SCORE:
            left_out.append((entry, "below the acceptance score"))
            continue
        key = (best.indicator, entry.region)
        holder = holders.get(key)
        if holder is None:
            holders[key] = entry
            continue
        same = (holder.item.figure.value, holder.item.figure.qualifier) == (
            entry.item.figure.value,
            entry.item.figure.qualifier,
        )
        if not same and holder.score_for(best.indicator) == best.score:
            left_out.append((entry, "as good a fit as another figure with another value"))
            left_out.append((holder, "as good a fit as another figure with another value"))
            holders[key] = holder = Scored(holder.item, "", [])  # held: nobody takes it
        else:
            left_out.append((entry, "another figure fits it better"))
    accepted = []
    for (_, region), entry in holders.items():
        if entry.best is None:
            continue
        rivals = [
            c.score
            for c in entry.candidates[1:]
            if not (
                (rival := holders.get((c.indicator, region))) is not None
                and rival.score_for(c.indicator) >= c.score
            )
        ]
        if entry.best.score - max(rivals, default=0.0) < rules.MARGIN:
            left_out.append((entry, "too close to the runner-up"))
        else:
            accepted.append(entry)
    return accepted, left_out


def extract(text: str, options: Options, knowledge: Knowledge) -> Extraction:
    """The draft bundle of `text` and the report of what it leaves out."""
    scored = []
    for item in locate(text, knowledge.regions):
        region = _region(text, item, knowledge)
        clause = rules.context_form(text[item.clause[0] : item.clause[1]], knowledge.regions)
        scored.append(Scored(item, region, _candidates(item, region, clause, knowledge)))
    accepted, report = decide(scored)
    observations = []
    for entry in sorted(accepted, key=lambda e: e.item.figure.start):
        quote = _quote(text, entry.item)
        figure = entry.item.figure
        assert entry.best is not None
        if not _states(quote, figure.value, figure.qualifier):  # never: a bug if it happens
            report.append((entry, "its clause does not state it alone"))
            continue
        observations.append(
            {
                "indicator": entry.best.indicator,
                "region": entry.region,
                "year": options.year,
                "value": figure.value,
                "qualifier": figure.qualifier.value,
                "source": options.source_code,
                "quote": quote,
                "note": NOTE.format(score=entry.best.score),
            }
        )
    draft = {
        "format": FORMAT,
        "sources": [_source(text, options, knowledge)],
        "observations": observations,
    }
    items = [
        _report_item(text, entry, reason, knowledge)
        for entry, reason in sorted(report, key=lambda r: r[0].item.figure.start)
    ]
    return Extraction(draft=draft, report=items)


def _report_item(text: str, entry: Scored, reason: str, knowledge: Knowledge) -> ReportItem:
    item, region, candidates = entry.item, entry.region, entry.candidates
    figure = item.figure
    word_class = rules.unit_word_class(figure.unit_word)
    worth = [c for c in candidates if c.score >= rules.REPORT_SCORE]
    best = worth[0] if worth else None
    second = worth[1] if len(worth) > 1 else None
    return ReportItem(
        status="uncertain" if best else "unmatched",
        clause=_quote(text, item),
        value=figure.value,
        qualifier=figure.qualifier.value,
        unit_word=figure.unit_word,
        proposed_units=sorted(code for code, name in knowledge.units.items() if name in word_class),
        region=region,
        candidate=best.indicator if best else None,
        score=best.score if best else None,
        runner_up=second.indicator if second else None,
        runner_up_score=second.score if second else None,
        reason=reason if best else "no known indicator fits it",
        proposed_indicator_zh=rules.proposed_name(item.left, item.right),
    )


# --- Reading and writing files ----------------------------------------------------------------

ENCODINGS = ("utf-8-sig", "gb18030")  # UTF-8 (a byte-order mark dropped), then GBK's superset


def decode_text(data: bytes) -> str:
    """A review's bytes as text: UTF-8 with or without a byte-order mark, else GBK (GB 18030)."""
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ExtractError("text", "the text is neither UTF-8 nor GBK")


# The charsets a review arrives in over HTTP; anything else is 415. Without one, UTF-8.
UPLOAD_CHARSETS = {
    **dict.fromkeys(("utf-8", "utf8"), "utf-8-sig"),
    **dict.fromkeys(("gbk", "gb2312", "gb18030"), "gb18030"),
}


def decode_upload(body: bytes, content_type: str) -> str:
    """A `text/plain` body as text, in the charset its Content-Type names (UTF-8 if none)."""
    media_type, _, parameters = content_type.partition(";")
    if media_type.strip().lower() != "text/plain":
        raise UnsupportedMediaTypeError(
            f"Content-Type {media_type.strip() or 'missing'}: send the text as text/plain."
        )
    charset = "utf-8"
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if charset not in UPLOAD_CHARSETS:
        raise UnsupportedMediaTypeError(f"charset {charset}: send UTF-8 (or GBK).")
    try:
        return body.decode(UPLOAD_CHARSETS[charset])
    except UnicodeDecodeError as error:
        raise InvalidParameterError.for_field(
            "body", "body", f"not {charset} (byte {error.start})"
        ) from None


def extract_from_database(connection: Connection, text: str, options: Options) -> dict[str, Any]:
    """The draft and the report as JSON, learning from the database's observations."""
    result = extract(text, options, knowledge_from_database(connection))
    return {"draft": result.draft, "report": [item.model_dump() for item in result.report]}


class _DraftDumper(yaml.SafeDumper):
    """YAML that `statsapi import` reads back exactly: decimals as numbers, texts as blocks."""


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.ScalarNode:
    text = format(value, "f")
    tag = "tag:yaml.org,2002:int" if value == value.to_integral() else "tag:yaml.org,2002:float"
    return dumper.represent_scalar(tag, text)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None  # PyYAML quotes it instead when a block cannot hold it
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_DraftDumper.add_representer(Decimal, _represent_decimal)
_DraftDumper.add_representer(str, _represent_str)

DRAFT_HEADER = (
    "# A draft made by `statsapi extract`: every observation below was matched to a known\n"
    "# indicator from its earlier quotes; check each against its quote, then\n"
    "# `statsapi import --dry-run` this file, then `statsapi import` it.\n"
)


def dump_draft(draft: dict[str, Any]) -> str:
    body = yaml.dump(draft, Dumper=_DraftDumper, allow_unicode=True, sort_keys=False, width=100)
    return DRAFT_HEADER + body


_WHITESPACE = re.compile(r"\s+")


def report_line(item: ReportItem) -> str:
    """One short line of the report, for a terminal."""
    where = f"[{item.region}] " if item.region else ""
    value = f"{item.value}{' ' + item.qualifier if item.qualifier != 'exact' else ''}"
    if item.status == "uncertain":
        guess = f"{item.candidate}? {item.score:.0f} ({item.reason})"
    else:
        guess = f"new: {item.proposed_indicator_zh or '?'} [{','.join(item.proposed_units)}]"
    return f"{where}{value} {item.unit_word}: {guess}: {_WHITESPACE.sub(' ', item.clause)[:60]}"
