"""Years that have data."""

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app import queries
from app.db import EngineDep
from app.params import from_query
from app.reads import serve_list
from app.routers.docs import CSV_RESPONSE
from app.schemas import FormatQuery, YearList, YearSummary

router = APIRouter(prefix="/years", tags=["years"])


@router.get("", response_model=YearList, responses=CSV_RESPONSE)
async def list_years(
    request: Request, params: Annotated[FormatQuery, from_query(FormatQuery)], engine: EngineDep
) -> Response:
    """List each year with data and its number of observations."""
    return await serve_list(
        request,
        engine,
        format=params.format,
        query=queries.list_years,
        item_model=YearSummary,
        filename="years",
    )
