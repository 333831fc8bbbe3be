"""Year-over-year and multi-year comparisons that respect units and qualifiers.

The rules (the public contract of /comparisons and /indicators/{code}/series):

- Rows pair a value in `year` with the same indicator and region in `base_year`. SQL selects and
  pairs them in one statement; the arithmetic is done here with Python decimals, because SQLite
  has no decimal type and its float arithmetic would print 6.499999 for 96.6 - 90.1.
- `change` = value - base_value, in the indicator's unit (for a percent that is percentage
  points). `change_pct` = change / |base_value| x 100, rounded half up to 2 decimal places.
- Rates (measure type `rate`, or a percent unit) compare in percentage points: `change_pp`
  holds the difference and `change_pct` is always null, never a percent of a percent.
- Each value is an interval: `exact` v is [v, v]; `at_least` v is [v, +inf); `at_most` v is
  (-inf, v]; `approximate` v is [v x (1 - 10%), v x (1 + 10%)] (APPROXIMATE_TOLERANCE). The change
  is the interval [value_min - base_max, value_max - base_min], given as `change_min` and
  `change_max` (null: unbounded). `direction` is `up` or `down` only when that whole interval
  is above or below zero, `flat` only when both values are exact and equal, else `unknown`.
  `change_qualifier` is `exact` only when both values are exact.
- An unbounded change (`change_qualifier` `unbounded`: `at_least` against `at_least`, or
  `at_most` against `at_most`) says nothing of how the value moved, so `change`, `change_pct`
  and `change_pp` are null: a chart must not draw the difference of two floors as a change.
- `comparable` is false, with a `reason`, when a side is missing (`no_base_value`,
  `no_current_value`), when the two years were published in different units (`unit_changed`:
  no change is computed), or when a non-rate base is zero (`base_is_zero`: the change is given,
  the percentage is undefined).
- An indicator that records a single event (`single_event`: one family's claim) is not a
  series: its values in two years are not a change, so every pair says `not_a_series`
  (not comparable, no change) and its series have no CAGR (`cagr_reason` `not_a_series`).
- A series gives each year's change from the previous year that has a value, and the compound
  annual growth rate `cagr_pct` over the span when both ends are exact, positive, in the same
  unit and at least a year apart (never for rates); otherwise `cagr_reason` says why not.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Literal

from sqlalchemy import Connection, Select, and_, bindparam, func, select

from app.filters import (
    COMPARISON_FILTERS,
    Selection,
    Shape,
    conditions,
)
from app.models import (
    MeasureType,
    Qualifier,
    category_table as category,
    indicator_table as indicator,
    observation_table as observation,
    region_table as region,
    revision_table as revision,
    unit_table as unit,
)
from app.prepared import fetch, statement_cache
from app.queries import (
    INDICATOR_LABELS,
    REGION_LABELS,
    UNIT_LABELS,
    list_categories,
    list_indicators_by_code,
    observation_states,
)

APPROXIMATE_TOLERANCE = Decimal("0.10")
PERCENT_UNITS = frozenset({"percent"})
HUNDREDTHS = Decimal("0.01")


@dataclass(frozen=True)
class Value:
    amount: Decimal
    qualifier: str
    unit: str

    def bounds(self) -> tuple[Decimal | None, Decimal | None]:
        """The interval the published value stands for; None is unbounded."""
        if self.qualifier == Qualifier.exact:
            return self.amount, self.amount
        if self.qualifier == Qualifier.at_least:
            return self.amount, None
        if self.qualifier == Qualifier.at_most:
            return None, self.amount
        spread = abs(self.amount) * APPROXIMATE_TOLERANCE
        return self.amount - spread, self.amount + spread


def _round(value: Decimal) -> Decimal:
    return value.quantize(HUNDREDTHS, rounding=ROUND_HALF_UP)


def _minus(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return None if a is None or b is None else a - b


def is_rate(measure_type: str, unit_code: str) -> bool:
    return measure_type == MeasureType.rate or unit_code in PERCENT_UNITS


# A pair that cannot be compared: every figure of the change null, and a `reason`.
NO_CHANGE: dict[str, Any] = {
    **dict.fromkeys(("change", "change_pct", "change_pp", "change_min", "change_max"), None),
    "change_qualifier": None,
    "direction": "unknown",
    "comparable": False,
    "reason": None,
}


def compare(
    current: Value | None, base: Value | None, *, rate: bool, series: bool = True
) -> dict[str, Any]:
    """The change from `base` to `current` under the rules in the module docstring."""
    result: dict[str, Any] = dict(NO_CHANGE)
    if not series:
        result["reason"] = "not_a_series"
        return result
    if current is None or base is None:
        result["reason"] = "no_current_value" if current is None else "no_base_value"
        return result
    if current.unit != base.unit:
        result["reason"] = "unit_changed"
        return result
    change = current.amount - base.amount
    low = _minus(current.bounds()[0], base.bounds()[1])
    high = _minus(current.bounds()[1], base.bounds()[0])
    both_exact = current.qualifier == base.qualifier == Qualifier.exact
    if low is not None and low > 0:
        direction = "up"
    elif high is not None and high < 0:
        direction = "down"
    elif both_exact and change == 0:
        direction = "flat"
    else:
        direction = "unknown"
    result.update(
        change=change,
        change_min=low,
        change_max=high,
        change_qualifier=_change_qualifier(low, high, both_exact),
        direction=direction,
        comparable=True,
    )
    if low is None and high is None:
        result["change"] = None  # unbounded: the published figures' difference means nothing
    elif rate:
        result["change_pp"] = change
    elif base.amount == 0:
        result.update(comparable=False, reason="base_is_zero")
    else:
        result["change_pct"] = _round(change / abs(base.amount) * 100)
    return result


def _change_qualifier(low: Decimal | None, high: Decimal | None, both_exact: bool) -> str:
    if both_exact:
        return Qualifier.exact.value
    if low is not None and high is None:
        return Qualifier.at_least.value
    if low is None and high is not None:
        return Qualifier.at_most.value
    if low is None and high is None:
        return "unbounded"
    return Qualifier.approximate.value


def cagr_pct(
    first: tuple[int, Value], last: tuple[int, Value]
) -> tuple[Decimal | None, str | None]:
    """Compound annual growth rate in percent over the span, or (None, why not)."""
    (first_year, start), (last_year, end) = first, last
    years = last_year - first_year
    if years < 1:
        return None, "single_year"
    if start.unit != end.unit:
        return None, "unit_changed"
    if start.qualifier != Qualifier.exact or end.qualifier != Qualifier.exact:
        return None, "inexact_endpoint"
    if start.amount <= 0 or end.amount <= 0:
        return None, "non_positive_endpoint"
    with localcontext() as context:
        context.prec = 34
        growth = (end.amount / start.amount) ** (Decimal(1) / years)
        return _round((growth - 1) * 100), None


# --- SQL ---------------------------------------------------------------------------------

# The tables that choose the pairs, by the names filters use (app/filters.py).
PAIR_TABLES = {"indicator": indicator, "category": category, "region": region}
LABELS = (
    *INDICATOR_LABELS,
    indicator.c.single_event,
    category.c.code.label("category"),
    *REGION_LABELS,
)


@dataclass(frozen=True)
class YearPair:
    """The year compared and the earlier one it is compared with."""

    year: int
    base_year: int


@dataclass(frozen=True)
class SeriesFilters:
    """Which regions and years of a series: the declared filters (app/filters.py)."""

    where: Selection


@dataclass(frozen=True)
class SummaryFilters(SeriesFilters):
    """Which pairs a summary counts: two years, and the declared filters."""

    years: YearPair


@dataclass(frozen=True)
class ComparisonFilters(SummaryFilters):
    """Which pairs of one page: as a summary's, at a vintage, one page of them."""

    as_of: datetime | None = None
    limit: int = 100
    offset: int = 0

    @property
    def heavy(self) -> bool:
        """Pairs drawn from every indicator (no category or indicator filter), or from the
        history, make the work grow with the database."""
        narrowed = self.where.get("category") or self.where.get("indicator")
        return self.as_of is not None or not narrowed


@dataclass(frozen=True)
class ComparisonShape:
    """What decides the SQL text of a comparison table (the values are bound), and which part
    of it: every row (`all`, for summaries), one page (`page`: `limit`, `offset` bound) or
    the number of rows over all pages (`count`)."""

    filters: Shape = ()
    as_of: bool = False
    part: Literal["all", "page", "count"] = "all"


def _value_of(series: Any, values: Any, year: str) -> Any:
    """The join condition of a series (indicator x region) to its value in the bound `year`."""
    return and_(
        values.c.indicator_id == series.c.indicator_id,
        values.c.region_id == series.c.region_id,
        values.c.year == bindparam(year),
    )


@statement_cache
def comparison_statement(shape: ComparisonShape) -> Select[Any]:
    """Every indicator x region with a value in `year` or `base_year`, both values side by side.

    The filters apply where the pairs are chosen, so the work grows with the answer, not with
    the database (docs/benchmarks.md). `shape.part`: every row, one page, or their count."""
    observations = observation_states(
        as_of=bindparam("as_of", type_=revision.c.recorded_at.type) if shape.as_of else None
    )
    current = observations.alias("current")
    base = observations.alias("base")
    current_unit = unit.alias("current_unit")
    base_unit = unit.alias("base_unit")
    series = (
        select(observations.c.indicator_id, observations.c.region_id)
        .select_from(
            observations.join(indicator, observations.c.indicator_id == indicator.c.id)
            .join(category, indicator.c.category_id == category.c.id)
            .join(region, observations.c.region_id == region.c.id)
        )
        .where(observations.c.year.in_((bindparam("year"), bindparam("base_year"))))
        .where(*conditions(shape.filters, {**PAIR_TABLES, "states": observations}))
        .group_by(observations.c.indicator_id, observations.c.region_id)
        .subquery("series")
    )
    if shape.part == "count":
        return select(func.count().label("total")).select_from(series)
    joined = (
        series.join(indicator, series.c.indicator_id == indicator.c.id)
        .join(category, indicator.c.category_id == category.c.id)
        .join(unit, indicator.c.unit_id == unit.c.id)
        .join(region, series.c.region_id == region.c.id)
        .outerjoin(current, _value_of(series, current, "year"))
        .outerjoin(current_unit, current.c.unit_id == current_unit.c.id)
        .outerjoin(base, _value_of(series, base, "base_year"))
        .outerjoin(base_unit, base.c.unit_id == base_unit.c.id)
    )
    statement = (
        select(
            *LABELS,
            *UNIT_LABELS,
            current.c.value.label("value"),
            current.c.qualifier.label("qualifier"),
            current_unit.c.code.label("current_unit"),
            base.c.value.label("base_value"),
            base.c.qualifier.label("base_qualifier"),
            base_unit.c.code.label("base_unit"),
        )
        .select_from(joined)
        .order_by(
            category.c.display_order, indicator.c.display_order, indicator.c.code, region.c.code
        )
    )
    if shape.part == "page":
        return statement.limit(bindparam("limit")).offset(bindparam("offset"))
    return statement


def _comparison_values(
    years: YearPair, where: Selection, as_of: datetime | None
) -> tuple[ComparisonShape, dict[str, Any]]:
    """The shape (part `all`) and the bound values of a comparison table."""
    shape = ComparisonShape(where.shape, as_of is not None)
    values = {"year": years.year, "base_year": years.base_year, "as_of": as_of, **where.bound()}
    return shape, values


def page_comparisons(
    connection: Connection, filters: ComparisonFilters
) -> tuple[list[dict[str, Any]], int]:
    """One page of `list_comparisons` (same order), and the number of rows over all pages."""
    shape, values = _comparison_values(filters.years, filters.where, filters.as_of)
    limit, offset = filters.limit, filters.offset
    values.update(limit=limit, offset=offset)
    rows = fetch(connection, comparison_statement(replace(shape, part="page")), values)
    if rows and offset == 0 and len(rows) < limit:
        total = len(rows)  # the whole result fits on this page: no need to count
    else:
        total = fetch(connection, comparison_statement(replace(shape, part="count")), values)[0][
            "total"
        ]
    return [_comparison_row(row, filters.years) for row in rows], total


def list_comparisons(
    connection: Connection,
    *,
    years: YearPair,
    where: Selection = Selection(COMPARISON_FILTERS),
    as_of: datetime | None = None,
) -> list[dict[str, Any]]:
    """Every indicator x region with a value in `year` or `base_year`, compared (one statement),
    from the data as published now or as it stood at `as_of`."""
    shape, values = _comparison_values(years, where, as_of)
    rows = fetch(connection, comparison_statement(shape), values)
    return [_comparison_row(row, years) for row in rows]


def summarize_comparisons(connection: Connection, filters: SummaryFilters) -> list[dict[str, Any]]:
    """Per category (those asked for, else all): the tiles of `summarize`."""
    rows = list_comparisons(connection, years=filters.years, where=filters.where)
    asked = filters.where.get("category")
    categories = [c for c in list_categories(connection) if not asked or c["code"] in asked]
    return summarize(rows, categories)


_LABEL_KEYS = (
    "indicator",
    "indicator_name_zh",
    "indicator_name_en",
    "category",
    "measure_type",
    "region",
    "region_name_zh",
    "region_name_en",
    "unit",
    "unit_name_zh",
    "unit_name_en",
)


def _comparison_row(row: dict[str, Any], years: YearPair) -> dict[str, Any]:
    current = _value_from(row["value"], row["qualifier"], row["current_unit"])
    base = _value_from(row["base_value"], row["base_qualifier"], row["base_unit"])
    data = {key: row[key] for key in _LABEL_KEYS}
    data.update(
        year=years.year,
        value=row["value"],
        qualifier=row["qualifier"],
        base_year=years.base_year,
        base_value=row["base_value"],
        base_qualifier=row["base_qualifier"],
    )
    rate = is_rate(row["measure_type"], row["unit"])
    data.update(compare(current, base, rate=rate, series=not row["single_event"]))
    return data


def _value_from(
    amount: Decimal | None, qualifier: str | None, unit_code: str | None
) -> Value | None:
    if amount is None or qualifier is None or unit_code is None:
        return None
    return Value(amount, qualifier, unit_code)


DIRECTIONS = ("up", "down", "flat", "unknown")


def summarize(
    rows: Iterable[dict[str, Any]], categories: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per category: how many indicator x region pairs went up, down, flat, or are unknown."""
    summary = {
        c["code"]: {
            "category": c["code"],
            "name_zh": c["name_zh"],
            "name_en": c["name_en"],
            **dict.fromkeys(DIRECTIONS, 0),
            "not_comparable": 0,
            "total": 0,
        }
        for c in categories
    }
    for row in rows:
        tile = summary[row["category"]]
        tile["total"] += 1
        if row["direction"] != "unknown":
            tile[row["direction"]] += 1
        elif row["comparable"]:
            tile["unknown"] += 1
        else:
            tile["not_comparable"] += 1
    return list(summary.values())


@statement_cache
def series_statement(filters: Shape) -> Select[Any]:
    """One indicator's values per region and year (values bound: `code` and the filters')."""
    value_unit = unit.alias("value_unit")
    tables = {"indicator": indicator, "region": region, "states": observation}
    return (
        select(
            *REGION_LABELS,
            observation.c.year,
            observation.c.value,
            observation.c.qualifier,
            value_unit.c.code.label("unit"),
        )
        .select_from(
            observation.join(indicator, observation.c.indicator_id == indicator.c.id)
            .join(region, observation.c.region_id == region.c.id)
            .join(value_unit, observation.c.unit_id == value_unit.c.id)
        )
        .where(indicator.c.code == bindparam("code"), *conditions(filters, tables))
        .order_by(region.c.code, observation.c.year)
    )


def list_series(
    connection: Connection, indicator_code: str, filters: SeriesFilters
) -> list[dict[str, Any]]:
    """The yearly values of one indicator per region, in region and year order."""
    values = {"code": indicator_code, **filters.where.bound()}
    return fetch(connection, series_statement(filters.where.shape), values)


def get_series(
    connection: Connection, indicator_code: str, filters: SeriesFilters
) -> dict[str, Any] | None:
    """An indicator and its series per region, with changes and the CAGR; None if no such
    indicator."""
    found = list_indicators_by_code(connection, codes=[indicator_code])
    if not found:
        return None
    [indicator_dict] = found
    rows = list_series(connection, indicator_code, filters)
    rate = is_rate(indicator_dict["measure_type"], indicator_dict["unit"]["code"])
    is_series = not indicator_dict["single_event"]
    built = build_series(rows, rate=rate, is_series=is_series)
    return {"indicator": indicator_dict, "series": built}


def build_series(
    rows: Sequence[dict[str, Any]], *, rate: bool, is_series: bool = True
) -> list[dict[str, Any]]:
    """Group rows (ordered by region, year) into series with changes and the CAGR."""
    series: list[dict[str, Any]] = []
    for row in rows:
        if not series or series[-1]["region"] != row["region"]:
            series.append(
                {
                    "region": row["region"],
                    "region_name_zh": row["region_name_zh"],
                    "region_name_en": row["region_name_en"],
                    "points": [],
                }
            )
        points = series[-1]["points"]
        current = Value(row["value"], row["qualifier"], row["unit"])
        previous = points[-1] if points else None
        base = (
            Value(previous["value"], previous["qualifier"], previous["unit"]) if previous else None
        )
        points.append(
            {
                "year": row["year"],
                "value": row["value"],
                "qualifier": row["qualifier"],
                "unit": row["unit"],
                "base_year": previous["year"] if previous else None,
                **compare(current, base, rate=rate, series=is_series),
            }
        )
    for item in series:
        points = item["points"]
        first, last = points[0], points[-1]
        cagr, why_not = (
            (None, "not_a_series" if not is_series else "rate")
            if rate or not is_series
            else cagr_pct(
                (first["year"], Value(first["value"], first["qualifier"], first["unit"])),
                (last["year"], Value(last["value"], last["qualifier"], last["unit"])),
            )
        )
        item.update(first_year=first["year"], last_year=last["year"], cagr_pct=cagr)
        item["cagr_reason"] = why_not
    return series
