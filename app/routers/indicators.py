"""Indicators: named measures with a unit."""

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from app import queries
from app.catalog import check_codes
from app.db import EngineDep
from app.params import from_query
from app.reads import item_renderer, list_renderer, serve_read
from app.rendering import wants_csv
from app.routers.docs import CSV_RESPONSE, NOT_FOUND
from app.schemas import Indicator, IndicatorDetail, IndicatorList, IndicatorQuery

router = APIRouter(prefix="/indicators", tags=["indicators"])
IndicatorCode = Annotated[
    str, Path(description="Indicator code.", examples=["adaptive_training_trainees"])
]


@router.get("", response_model=IndicatorList, responses=CSV_RESPONSE)
async def list_indicators(
    request: Request,
    params: Annotated[IndicatorQuery, from_query(IndicatorQuery)],
    engine: EngineDep,
) -> Response:
    """List indicators, by category, name text, or where and when they have data."""
    as_csv = wants_csv(request, params.format)

    def work(connection, catalog):
        check_codes("category", params.category, catalog.categories)
        check_codes("region", params.region, catalog.regions)
        return queries.list_indicators(
            connection,
            categories=params.category,
            text=params.q,
            regions=params.region,
            year=params.year,
        )

    return await serve_read(
        request,
        engine,
        work,
        list_renderer(Indicator, as_csv=as_csv, filename="indicators"),
        representation="csv" if as_csv else "json",
    )


@router.get("/{code}", response_model=IndicatorDetail, responses=NOT_FOUND)
async def get_indicator(request: Request, code: IndicatorCode, engine: EngineDep) -> Response:
    """Get one indicator, with the years and regions that have data."""
    return await serve_read(
        request,
        engine,
        lambda connection, _: queries.get_indicator(connection, code=code),
        item_renderer(not_found=f"no indicator with code {code!r}"),
    )
