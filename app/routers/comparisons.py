"""Comparisons: year over year, per-category summaries, and an indicator's series.

The rules are in app/comparisons.py; this module only speaks HTTP.
"""

from typing import Annotated, Any

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

router = APIRouter(tags=["comparisons"])
Params = Annotated[ComparisonQuery, from_query(ComparisonQuery)]
SummaryParams = Annotated[SummaryQuery, from_query(SummaryQuery)]
SeriesParams = Annotated[SeriesQuery, from_query(SeriesQuery)]
SERIES_CSV_COLUMNS = [
    "indicator",
    *(c for c in csv_columns(RegionSeries) if c != "points"),
    *csv_columns(SeriesPoint),
]


@router.get("/comparisons", response_model=ComparisonList, responses=CSV_RESPONSE)
async def list_comparisons(request: Request, params: Params, engine: EngineDep) -> Response:
    """Compare each indicator x region between `year` and an earlier `base_year`, paged."""
    filters = params.filters()
    answer = await read(request, engine, comparisons.page_comparisons, filters, heavy=filters.heavy)
    years = {"year": filters.years.year, "base_year": filters.years.base_year}
    csv = (csv_columns(Comparison), "comparisons") if wants_csv(request, params.format) else None
    return page_response(request, answer, filters, csv=csv, envelope=years)


@router.get("/comparisons/summary", response_model=ComparisonSummary, responses=CSV_RESPONSE)
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
