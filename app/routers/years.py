"""Years that have data."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app import queries
from app.db import EngineDep
from app.reads import list_renderer, serve_read
from app.rendering import wants_csv
from app.routers.docs import CSV_RESPONSE
from app.schemas import FormatQuery, YearList, YearSummary

router = APIRouter(prefix="/years", tags=["years"])


@router.get("", response_model=YearList, responses=CSV_RESPONSE)
async def list_years(
    request: Request, params: Annotated[FormatQuery, Query()], engine: EngineDep
) -> Response:
    """List each year with data and its number of observations."""
    as_csv = wants_csv(request, params.format)
    return await serve_read(
        request,
        engine,
        lambda connection, _: queries.list_years(connection),
        list_renderer(YearSummary, as_csv=as_csv, filename="years"),
        representation="csv" if as_csv else "json",
    )
