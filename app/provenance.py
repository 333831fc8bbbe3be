"""The provenance promise, checked: every value is traced to the sentence that states it.

One checker for every way a value arrives (PUT, CSV and bundle imports, `statsapi import`, the
seed's integrity tests) and for `statsapi check`, which runs it over what is stored. The rules:

- Quote: when the source has a stored text, the quote occurs in it verbatim. No normalisation:
  the text is compared as stored, character for character (a quote copied from the text, or
  from `GET /sources/{id}/text`, matches; one retyped with other spaces or punctuation does not).
- Number: the quote states the value. Of the statistics the quote states (app/figures.py reads
  them: 万 and 亿 expanded, dates, ordinals and phone numbers left out, whatever the unit word),
  one equals the value with the same qualifier (余/多/超/以上/+ at_least; 近/约 approximate;
  以下/不足 at_most; a bare number or 达/达到 exact).
- Derived: a value the bureau computed (a sum, a rate) is marked `derived` and says how in its
  note; the number check is skipped, the quote check is not.
- No stored text (a partner's spreadsheet, a letter): the quote cannot be verified, so it may
  be a locator ("sheet 2, row 14") rather than a clause; when it states figures, one of them
  must still be the value.
- Year: a source cannot state a figure for a year that had not ended when it was published
  (published on or before 31 December of the observation's year). Every source has a
  publication date (the column is required), so there is no undated case to decide.
- Sense: the value makes sense in its unit (a whole number of people, a rate within 0-100, a
  unit its indicator's can stand for): app/sanity.py holds those rules, checked here so that
  every write path runs them with the rest.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, select

from app import sanity
from app.exporter import export_observations
from app.figures import Figure, read_figures
from app.models import indicator_table, source_table, unit_table


@dataclass(frozen=True)
class Claim:
    """What a write says: a value, how the quote qualifies it, and where it comes from."""

    year: int
    value: Decimal
    qualifier: str
    quote: str
    note: str | None = None
    derived: bool = False
    measure: sanity.Measure | None = None  # None: the indicator is not known here


@dataclass(frozen=True)
class SourceFacts:
    """What the checker needs to know of the cited source."""

    code: str
    published_on: date
    text: str | None  # None: no stored text to verify the quote against


@dataclass(frozen=True)
class Problem:
    field: str  # the body field (or CSV column) to fix: quote, value, qualifier, note, source
    message: str


def _stated(figure: Figure) -> str:
    return f"{figure.value} ({figure.qualifier})"


def _number_problem(claim: Claim, *, has_text: bool) -> Problem | None:
    figures = [figure for figure in read_figures(claim.quote) if figure.is_statistic]
    if not figures:
        if not has_text:
            return None  # a locator in a document the server does not hold
        return Problem(
            "quote",
            f"the quote states no figure: quote the clause that states {claim.value}, "
            "or mark the value derived and say how in the note",
        )
    if any(f.value == claim.value and f.qualifier == claim.qualifier for f in figures):
        return None
    same_number = [f for f in figures if f.value == claim.value]
    if same_number:
        return Problem(
            "qualifier",
            f"the quote states {_stated(same_number[0])}, not {claim.value} ({claim.qualifier})",
        )
    found = ", ".join(_stated(figure) for figure in figures)
    return Problem("value", f"the quote states {found}, not {claim.value}")


def check(claim: Claim, source: SourceFacts) -> list[Problem]:
    """Every rule the claim breaks (none: it keeps the promise)."""
    return list(_problems(claim, source))


def _problems(claim: Claim, source: SourceFacts) -> Iterator[Problem]:
    if claim.measure is not None:
        for field, message in sanity.problems(claim.value, claim.measure):
            yield Problem(field, message)
    if source.published_on <= date(claim.year, 12, 31):
        yield Problem(
            "source",
            f"{source.code} was published on {source.published_on.isoformat()}, before "
            f"{claim.year} ended: it cannot state a {claim.year} figure",
        )
    verbatim = source.text is None or claim.quote in source.text
    if not verbatim:
        yield Problem("quote", f"does not occur verbatim in the text of {source.code}")
    if claim.derived:
        if not (claim.note or "").strip():
            yield Problem("note", "a derived value says in its note how it was derived")
        return
    problem = _number_problem(claim, has_text=source.text is not None)
    if problem is not None and (verbatim or problem.field != "quote"):  # said once is enough
        yield problem


# --- the cited sources, as stored -----------------------------------------------------------


def stored_sources(connection: Connection, codes: Iterable[str]) -> dict[str, SourceFacts]:
    """The stored sources with these codes (those that exist), texts included."""
    wanted = sorted(set(codes))
    rows = connection.execute(
        select(source_table.c.code, source_table.c.published_on, source_table.c.text).where(
            source_table.c.code.in_(wanted)
        )
    )
    return {row.code: SourceFacts(row.code, row.published_on, row.text) for row in rows}


def stored_measures(connection: Connection) -> dict[str, tuple[str, str]]:
    """indicator code -> (its unit's code, its measure type), for the sense rules."""
    rows = connection.execute(
        select(
            indicator_table.c.code, unit_table.c.code.label("unit"), indicator_table.c.measure_type
        ).join(unit_table, indicator_table.c.unit_id == unit_table.c.id)
    )
    return {row.code: (row.unit, row.measure_type) for row in rows}


@dataclass(frozen=True)
class StoredFailure:
    observation: str  # indicator/region/year
    problem: Problem

    def __str__(self) -> str:
        return f"{self.observation}: {self.problem.field}: {self.problem.message}"


def check_stored(connection: Connection) -> list[StoredFailure]:
    """Every published observation that breaks a rule, in indicator, region, year order.

    Current values only: the history records what was published, and is kept as it was."""
    rows = export_observations(connection)  # as a bundle carries them: indicator, region, ...
    sources = stored_sources(connection, {row["source"] for row in rows})
    measures = stored_measures(connection)
    failures = []
    for row in rows:
        fields = ("year", "value", "qualifier", "quote", "note", "derived")
        measure = sanity.Measure(*measures[row["indicator"]], unit=row["unit"])
        claim = Claim(*(row[name] for name in fields))
        claim = replace(claim, measure=measure)
        label = f"{row['indicator']}/{row['region']}/{row['year']}"
        failures += [StoredFailure(label, p) for p in check(claim, sources[row["source"]])]
    return failures
