"""Comparisons: year over year, per-category summaries, and an indicator's series.

The rules are in app/comparisons.py; this module only speaks HTTP.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from app import comparisons, queries
from app.catalog import check_codes
from app.db import EngineDep
from app.errors import NotFoundError
from app.params import from_query
from app.reads import next_page_url, page_headers, serve_read
from app.rendering import JSONResponse, csv_response, flatten, wants_csv
from app.routers.docs import CSV_RESPONSE, NOT_FOUND
from app.schemas import (
    CategoryTile,
    Comparison,
    ComparisonList,
    ComparisonQuery,
    ComparisonSummary,
    IndicatorSeries,
    RegionSeries,
    SeriesPoint,
    SeriesQuery,
    SummaryQuery,
    csv_columns,
)

router = APIRouter(tags=["comparisons"])
SERIES_CSV_COLUMNS = [
    "indicator",
    *(c for c in csv_columns(RegionSeries) if c != "points"),
    *csv_columns(SeriesPoint),
]


@router.get("/comparisons", response_model=ComparisonList, responses=CSV_RESPONSE)
async def list_comparisons(
    request: Request,
    params: Annotated[ComparisonQuery, from_query(ComparisonQuery)],
    engine: EngineDep,
) -> Response:
    """Compare each indicator x region between `year` and an earlier `base_year`, paged."""
    as_csv = wants_csv(request, params.format)
    base_year = params.effective_base_year

    def work(connection, catalog):
        check_codes("category", params.category, catalog.categories)
        check_codes("indicator", params.indicator, catalog.indicators)
        check_codes("region", params.region, catalog.regions)
        return comparisons.page_comparisons(
            connection,
            year=params.year,
            base_year=base_year,
            limit=params.limit,
            offset=params.offset,
            categories=params.category,
            indicators=params.indicator,
            regions=params.region,
            as_of=params.as_of,
        )

    def render(result: tuple[list[dict[str, Any]], int]) -> Response:
        rows, total = result
        next_url = next_page_url(request, limit=params.limit, offset=params.offset, total=total)
        if as_csv:
            response = csv_response(rows, csv_columns(Comparison), filename="comparisons")
        else:
            body = {
                "year": params.year,
                "base_year": base_year,
                "total": total,
                "limit": params.limit,
                "offset": params.offset,
                "next": next_url,
                "data": rows,
            }
            response = JSONResponse(body)
        response.headers.update(page_headers(next_url, total))
        return response

    # Pairs drawn from every indicator (no category or indicator filter), or from the history,
    # make the work grow with the database: off the event loop (app/reads.py).
    heavy = params.as_of is not None or not (params.category or params.indicator)
    return await serve_read(request, engine, work, render, representation=_fmt(as_csv), heavy=heavy)


@router.get("/comparisons/summary", response_model=ComparisonSummary, responses=CSV_RESPONSE)
async def summarize_comparisons(
    request: Request, params: Annotated[SummaryQuery, from_query(SummaryQuery)], engine: EngineDep
) -> Response:
    """Count, per category, the indicators that went up, down, stayed flat or can't be compared."""
    as_csv = wants_csv(request, params.format)
    base_year = params.effective_base_year

    def work(connection, catalog):
        check_codes("category", params.category, catalog.categories)
        rows = comparisons.list_comparisons(
            connection, year=params.year, base_year=base_year, categories=params.category
        )
        categories = [
            c
            for c in queries.list_categories(connection)
            if not params.category or c["code"] in params.category
        ]
        return comparisons.summarize(rows, categories)

    def render(tiles: list[dict[str, Any]]) -> Response:
        if as_csv:
            return csv_response(tiles, csv_columns(CategoryTile), filename="comparison-summary")
        body = {"year": params.year, "base_year": base_year, "total": len(tiles), "data": tiles}
        return JSONResponse(body)

    # One tile per category (bounded by the reference data), but every pair of the year is
    # compared to count them: off the event loop (app/reads.py).
    return await serve_read(request, engine, work, render, representation=_fmt(as_csv), heavy=True)


@router.get(
    "/indicators/{code}/series",
    response_model=IndicatorSeries,
    responses={**CSV_RESPONSE, **NOT_FOUND},
)
async def get_series(
    request: Request,
    code: Annotated[
        str, Path(description="Indicator code.", examples=["adaptive_training_trainees"])
    ],
    params: Annotated[SeriesQuery, from_query(SeriesQuery)],
    engine: EngineDep,
) -> Response:
    """Get an indicator's yearly values per region, with changes and the growth rate."""
    as_csv = wants_csv(request, params.format)

    def work(connection, catalog):
        check_codes("region", params.region, catalog.regions)
        indicator = next(iter(queries.list_indicators_by_code(connection, codes=[code])), None)
        if indicator is None:
            raise NotFoundError(f"no indicator with code {code!r}")
        rows = comparisons.list_series(
            connection,
            indicator_code=code,
            regions=params.region,
            from_year=params.from_,
            to_year=params.to,
        )
        rate = comparisons.is_rate(indicator["measure_type"], indicator["unit"]["code"])
        return {"indicator": indicator, "series": comparisons.build_series(rows, rate=rate)}

    def render(body: dict[str, Any]) -> Response:
        if not as_csv:
            return JSONResponse(body)
        rows = [
            {"indicator": code, **flatten({k: v for k, v in s.items() if k != "points"}), **p}
            for s in body["series"]
            for p in s["points"]
        ]
        return csv_response(rows, SERIES_CSV_COLUMNS, filename=f"{code}-series")

    return await serve_read(request, engine, work, render, representation=_fmt(as_csv))


def _fmt(as_csv: bool) -> str:
    return "csv" if as_csv else "json"
