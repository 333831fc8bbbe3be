"""Indicators: named measures with a unit."""

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app import queries
from app.db import EngineDep
from app.params import from_query
from app.reads import item_response, list_response, read
from app.rendering import wants_csv
from app.routers.docs import CSV_RESPONSE, NOT_FOUND
from app.schemas import Indicator, IndicatorCode, IndicatorDetail, IndicatorList, IndicatorQuery

router = APIRouter(prefix="/indicators", tags=["indicators"])
Params = Annotated[IndicatorQuery, from_query(IndicatorQuery)]


@router.get("", response_model=IndicatorList, responses=CSV_RESPONSE)
async def list_indicators(request: Request, params: Params, engine: EngineDep) -> Response:
    """List indicators, by category, name text, or where and when they have data."""
    answer = await read(request, engine, queries.list_indicators, params.filters())
    as_csv = wants_csv(request, params.format)
    return list_response(answer, Indicator, as_csv=as_csv, filename="indicators")


@router.get("/{code}", response_model=IndicatorDetail, responses=NOT_FOUND)
async def get_indicator(request: Request, code: IndicatorCode, engine: EngineDep) -> Response:
    """Get one indicator, with the years and regions that have data."""
    answer = await read(request, engine, queries.get_indicator, code)
    return item_response(answer, not_found=f"no indicator with code {code!r}")
