"""The read filters, each declared once, as data. No HTTP here.

A `Filter` names a query parameter, says what kind of value it takes, which column it narrows
(`table.column`: a reference table the statement joins, or `states` for the observation rows)
and, for codes, which table holds the allowed codes. Everything else is derived from it: the
statement's shape and SQL condition, the bound values, the check of codes against the catalog
(app/catalog.py), the repeatable query parameters (app/guards.py) and the query-model field
with its documentation (app/schemas.py).

Adding a filter to a list is one `Filter(...)` in the list's set below; the tests that iterate
over the sets (tests/test_filters.py) then test it.
"""

import keyword
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from functools import cached_property
from typing import Any

from sqlalchemy import Table, bindparam

from app.models import (
    Qualifier,
    category_table,
    indicator_table,
    region_table,
)
from app.prepared import in_list, list_values


class Kind(StrEnum):
    codes = "codes"  # repeatable or comma-separated codes; each checked against its table
    choices = "choices"  # repeatable values of an enum
    year = "year"  # exactly this year
    year_from = "year_from"  # from this year on
    year_to = "year_to"  # up to and including this year


LIST_KINDS = frozenset({Kind.codes, Kind.choices})
YEAR_KINDS = frozenset({Kind.year, Kind.year_from, Kind.year_to})


# A declaration is its own identity (a statement's shape compares and hashes the declarations
# it holds, on every request): two declarations are never the same filter.
@dataclass(frozen=True, eq=False)
class Filter:
    name: str  # the query parameter, and the stem of its bound parameters
    kind: Kind
    column: str  # "table.column"; "states.column" for the observation rows
    checked_by: Table | None = field(default=None, repr=False)  # the allowed codes' table
    # Columns of `checked_by` whose names a client may give instead of a code (`武进区`,
    # `wujin district`): read as the code they name before the statement's shape is taken.
    named_by: tuple[str, ...] = field(default=(), repr=False)
    choices: type[Enum] | None = field(default=None, repr=False)  # the allowed values
    description: str = field(default="", repr=False)
    example: Any = field(default=None, repr=False)

    @property
    def repeatable(self) -> bool:
        return self.kind in LIST_KINDS

    @property
    def attribute(self) -> str:
        """The Python name of the parameter: `from` is a keyword, so `from_`."""
        return f"{self.name}_" if keyword.iskeyword(self.name) else self.name

    def condition(self, count: int, tables: Mapping[str, Any]) -> Any:
        """The SQL condition for `count` codes (or one value), its values bound by name."""
        table, column_name = self.column.split(".")
        column = tables[table].c[column_name]
        if self.repeatable:
            return in_list(column, self.name, count)
        value: Any = bindparam(self.name)
        if self.kind is Kind.year_from:
            return column >= value
        if self.kind is Kind.year_to:
            return column <= value
        return column == value


CATEGORY = Filter(
    "category",
    Kind.codes,
    "category.code",
    checked_by=category_table,
    description="Category codes (repeatable or comma-separated).",
    example=["employment_entrepreneurship"],
)
INDICATOR = Filter(
    "indicator",
    Kind.codes,
    "indicator.code",
    checked_by=indicator_table,
    description="Indicator codes (repeatable or comma-separated).",
    example=["adaptive_training_trainees"],
)
REGION_NAMES = ("name_zh", "name_en")
REGION = Filter(
    "region",
    Kind.codes,
    "region.code",
    checked_by=region_table,
    named_by=REGION_NAMES,
    description=(
        "Regions: GB/T 2260 codes, or their Chinese or English names (`武进区`, "
        "`Wujin District`, any case); repeatable or comma-separated."
    ),
    example=["320400"],
)
YEAR = Filter("year", Kind.year, "states.year", description="Exactly this year.", example=2023)
FROM = Filter("from", Kind.year_from, "states.year", description="From this year on.", example=2020)
TO = Filter(
    "to", Kind.year_to, "states.year", description="Up to and including this year.", example=2023
)
QUALIFIER = Filter(
    "qualifier",
    Kind.choices,
    "states.qualifier",
    choices=Qualifier,
    description="Only values with these qualifiers (repeatable).",
    example=["at_least"],
)

# /observations
OBSERVATION_FILTERS = (CATEGORY, INDICATOR, REGION, YEAR, FROM, TO, QUALIFIER)
# /comparisons and /comparisons/summary
COMPARISON_FILTERS = (CATEGORY, INDICATOR, REGION)
SUMMARY_FILTERS = (CATEGORY,)
# /indicators/{code}/series
SERIES_FILTERS = (REGION, FROM, TO)
# /indicators: where and when an indicator has data (app/queries.py `list_indicators`)
INDICATOR_FILTERS = (
    CATEGORY,
    Filter(
        "region",
        Kind.codes,
        "region.code",
        checked_by=region_table,
        named_by=REGION_NAMES,
        description="Only indicators with data in these regions (GB/T 2260 codes or names).",
        example=["320411"],
    ),
    Filter(
        "year",
        Kind.year,
        "states.year",
        description="Only indicators with data in this year.",
        example=2023,
    ),
)
FILTER_SETS = (
    OBSERVATION_FILTERS,
    COMPARISON_FILTERS,
    SUMMARY_FILTERS,
    SERIES_FILTERS,
    INDICATOR_FILTERS,
)
REPEATABLE = frozenset(f.name for filters in FILTER_SETS for f in filters if f.repeatable)

# What decides the SQL text of a filtered statement: each given filter and how many values
# it has (1 for a year). The values themselves are bound, so a shape is built once.
Shape = tuple[tuple[Filter, int], ...]


@dataclass(frozen=True)
class Selection:
    """The values given for a set of declared filters, by filter name: a tuple of codes, or a
    year; absent filters are () or None."""

    declared: tuple[Filter, ...]
    values: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        undeclared = self.values.keys() - {f.name for f in self.declared}
        if undeclared:
            raise ValueError(f"no such filter here: {sorted(undeclared)}")
        every = {
            f.name: self.values.get(f.name, () if f.repeatable else None) for f in self.declared
        }
        object.__setattr__(self, "values", every)

    def get(self, name: str) -> Any:
        """The value of the filter `name`: () or None when absent."""
        return self.values[name]

    @cached_property
    def shape(self) -> Shape:
        """Each given filter, with its number of values (1 for a year)."""
        counts = (
            (f, len(value) if f.repeatable else int(value is not None))
            for f, value in zip(self.declared, self.values.values(), strict=True)
        )
        return tuple((f, count) for f, count in counts if count)

    def bound(self) -> dict[str, Any]:
        """The values for the conditions of `shape`, by bound parameter name."""
        values: dict[str, Any] = {}
        for declared, _count in self.shape:
            value = self.values[declared.name]
            if declared.repeatable:
                values.update(list_values(declared.name, value))
            else:
                values[declared.name] = value
        return values


def conditions(
    shape: Shape, tables: Mapping[str, Any], *, kinds: Collection[Kind] = frozenset(Kind)
) -> list[Any]:
    """The SQL conditions of the filters in `shape` (those of `kinds`), on `tables`: the
    statement's tables by name, `states` for its observation rows."""
    return [
        declared.condition(count, tables) for declared, count in shape if declared.kind in kinds
    ]
