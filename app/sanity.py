"""Values checked for sense: a count is a whole number, a rate is a percentage, a unit fits.

Run by the provenance checker (app/provenance.py `check`), so every write path (PUT, CSV and
bundle imports, `statsapi import`, the seed) and `statsapi check` apply them. The rules, by the
unit's code (the seed's units table; a unit an admin adds later gets no rule of its kind until
it is listed here):

- Count (persons, person-times, sessions, items, enterprises... and years, editions): a
  non-negative whole number. No count of people or events is -3 or 1.5.
- Money (yuan): non-negative; fractions allowed (fen). The reviews state spending, never debts.
- Ratio (x to 1): non-negative; fractions allowed (1.5 posts per person).
- Rate (measure type `rate`, or the unit `percent`): within 0-100. No indicator today is a rate
  that may pass 100 (a growth rate would be); when one is added, it gets a measure type of its
  own rather than an exception here.
- Unit: a value in a unit other than its indicator's is a published unit change, and is only
  accepted between units of one family: the same thing counted another way (persons and
  person-times). There is no conversion table, so no value is converted; comparisons report
  such a pair of years as `unit_changed`. Any other unit (job fairs in persons) is refused.
"""

from dataclasses import dataclass
from decimal import Decimal

COUNT_UNITS = frozenset(
    {
        "person",
        "person_time",
        "item",
        "enterprise",
        "session",
        "organization",
        "province",
        "team",
        "read",
        "post",
        "copy",
        "batch",
        "household",
        "station",
        "centre",
        "card",
        "year",
        "edition",
    }
)
NON_NEGATIVE_UNITS = COUNT_UNITS | {"yuan", "ratio", "percent"}
PERCENT_UNIT = "percent"
RATE_MEASURE = "rate"
# Units that stand for one another: the same people counted once each, or once per visit.
UNIT_FAMILIES = (frozenset({"person", "person_time"}),)


@dataclass(frozen=True)
class Measure:
    """What the value is measured in: its indicator's unit and measure type, and the unit the
    write names (None: the indicator's own)."""

    indicator_unit: str
    measure_type: str
    unit: str | None = None


def _same_family(one: str, other: str) -> bool:
    return any(one in family and other in family for family in UNIT_FAMILIES)


def problems(value: Decimal, measure: Measure) -> list[tuple[str, str]]:
    """(field, message) for each sense rule the value breaks; field is `value` or `unit`."""
    unit = measure.unit or measure.indicator_unit
    found = []
    if unit != measure.indicator_unit and not _same_family(unit, measure.indicator_unit):
        found.append(
            (
                "unit",
                f"unit rule: the indicator is measured in {measure.indicator_unit}, and "
                f"{unit} neither converts to it nor counts the same thing; send the value in "
                f"{measure.indicator_unit} (or leave the unit out)",
            )
        )
    if unit in NON_NEGATIVE_UNITS and value < 0:
        found.append(("value", f"non-negative rule: a value in {unit} is not below 0, not {value}"))
    if unit in COUNT_UNITS and value != value.to_integral_value():
        found.append(("value", f"count rule: {unit} is counted in whole numbers, not {value}"))
    if (measure.measure_type == RATE_MEASURE or unit == PERCENT_UNIT) and not 0 <= value <= 100:
        found.append(("value", f"rate rule: a rate is within 0-100 (percent), not {value}"))
    return found
