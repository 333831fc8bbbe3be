"""Comparisons: year over year, per-category summaries, and an indicator's series.

The rules are in app/comparisons.py; this module only speaks HTTP.
"""

from collections.abc import Callable
from typing import Annotated, Any, ParamSpec, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app import comparisons
from app.db import EngineDep
from app.errors import NotFoundError
from app.params import from_query
from app.reads import NotModified, page_response, read
from app.rendering import JSONResponse, csv_response, flatten, wants_csv
from app.routers.docs import CSV_RESPONSE, NOT_FOUND
from app.schemas import (
    CategoryTile,
    Comparison,
    ComparisonList,
    ComparisonQuery,
    ComparisonSummary,
    IndicatorCode,
    IndicatorSeries,
    RegionSeries,
    SeriesPoint,
    SeriesQuery,
    SummaryQuery,
    csv_columns,
)

P = ParamSpec("P")
R = TypeVar("R")
router = APIRouter(tags=["comparisons"])
Params = Annotated[ComparisonQuery, from_query(ComparisonQuery)]
SummaryParams = Annotated[SummaryQuery, from_query(SummaryQuery)]
SeriesParams = Annotated[SeriesQuery, from_query(SeriesQuery)]

_TOLERANCE = f"{comparisons.APPROXIMATE_TOLERANCE * 100:.0f}%"
# The comparison rules as a client needs them (app/comparisons.py holds them in full), in the
# description of each operation that compares, so that /docs and a generated client say them.
RULES = f"""
**How values are compared**

- `change` = `value` - `base_value`, in the indicator's unit; `change_pct` = `change` /
  |`base_value`| x 100, rounded half up to 2 places.
- **Rates** (measure type `rate`, or a percent unit) compare in percentage points: `change_pp`
  (and `change`) hold the difference and `change_pct` is always null, never a percent of a
  percent.
- **Qualifiers**: each published value is read as an interval: `exact` v is [v, v];
  `at_least` v (余, 多, 超, +) is [v, +inf); `at_most` v is (-inf, v]; `approximate` v (近, 约)
  is v ±{_TOLERANCE}. The change lies within [`change_min`, `change_max`] (null: unbounded on
  that side); `change_qualifier` is `exact` only when both values are exact, else `at_least`,
  `at_most` or `approximate` as the interval is open above, open below or closed.
- **Unbounded changes**: `at_least` against `at_least` (or `at_most` against `at_most`) bounds
  the change on neither side (`change_qualifier` `unbounded`): nothing is known of how the
  value moved, so `change`, `change_pct` and `change_pp` are null, never the difference of the
  two published figures.
- `direction` is `up` or `down` only when the whole interval is above or below zero, `flat`
  only when both values are exact and equal, else `unknown`.
- `comparable` is false with a `reason`: `no_base_value` (nothing published for the base year:
  with only the 2023 review loaded, every pair answers this), `no_current_value`,
  `unit_changed` (the years were published in different units: no change is computed) or
  `base_is_zero` (the change is given; a percentage of zero is undefined).
- A series compares each year with the previous year that has a value (`base_year`), and gives
  `cagr_pct` over its span only when both ends are exact, positive, in the same unit and at
  least a year apart, never for rates (`cagr_reason` says why not).
- The summary counts, per category, the comparable pairs by `direction` (an unbounded change
  counts as `unknown`) and the others as `not_comparable`.
"""


def _with_rules(route: Callable[P, R]) -> Callable[P, R]:
    """The operation's one-line docstring, then the rules: its OpenAPI description."""
    route.__doc__ = f"{route.__doc__}\n{RULES}"
    return route


SERIES_CSV_COLUMNS = [
    "indicator",
    *(c for c in csv_columns(RegionSeries) if c != "points"),
    *csv_columns(SeriesPoint),
]


@router.get("/comparisons", response_model=ComparisonList, responses=CSV_RESPONSE)
@_with_rules
async def list_comparisons(request: Request, params: Params, engine: EngineDep) -> Response:
    """Compare each indicator x region between `year` and an earlier `base_year`, paged."""
    filters = params.filters()
    answer = await read(request, engine, comparisons.page_comparisons, filters, heavy=filters.heavy)
    years = {"year": filters.years.year, "base_year": filters.years.base_year}
    csv = (csv_columns(Comparison), "comparisons") if wants_csv(request, params.format) else None
    return page_response(request, answer, filters, csv=csv, envelope=years)


@router.get("/comparisons/summary", response_model=ComparisonSummary, responses=CSV_RESPONSE)
@_with_rules
async def summarize_comparisons(
    request: Request, params: SummaryParams, engine: EngineDep
) -> Response:
    """Count, per category, the indicators that went up, down, stayed flat or can't be compared."""
    filters = params.filters()
    # One tile per category (bounded by the reference data), but every pair of the year is
    # compared to count them: off the event loop (app/blocking.py).
    answer = await read(request, engine, comparisons.summarize_comparisons, filters, heavy=True)
    if isinstance(answer, NotModified):
        return answer.response()
    tiles = answer.data
    if wants_csv(request, params.format):
        columns = csv_columns(CategoryTile)
        return answer.respond(csv_response(tiles, columns, filename="comparison-summary"))
    years = {"year": filters.years.year, "base_year": filters.years.base_year}
    return answer.respond(JSONResponse({**years, "total": len(tiles), "data": tiles}))


@router.get(
    "/indicators/{code}/series",
    response_model=IndicatorSeries,
    responses={**CSV_RESPONSE, **NOT_FOUND},
)
@_with_rules
async def get_series(
    request: Request, code: IndicatorCode, params: SeriesParams, engine: EngineDep
) -> Response:
    """Get an indicator's yearly values per region, with changes and the growth rate."""
    answer = await read(request, engine, comparisons.get_series, code, params.filters())
    if isinstance(answer, NotModified):
        return answer.response()
    if answer.data is None:
        raise NotFoundError(f"no indicator with code {code!r}")
    if not wants_csv(request, params.format):
        return answer.respond(JSONResponse(answer.data))
    rows = _series_rows(code, answer.data)
    return answer.respond(csv_response(rows, SERIES_CSV_COLUMNS, filename=f"{code}-series"))


def _series_rows(code: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """A series body as CSV rows: one per point, with its region's fields."""
    return [
        {"indicator": code, **flatten({k: v for k, v in s.items() if k != "points"}), **p}
        for s in body["series"]
        for p in s["points"]
    ]
