"""Years that have data."""

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app import queries
from app.db import EngineDep
from app.params import from_query
from app.reads import list_response, read
from app.rendering import wants_csv
from app.routers.docs import CSV_RESPONSE
from app.schemas import FormatQuery, YearList, YearSummary

router = APIRouter(prefix="/years", tags=["years"])


@router.get("", response_model=YearList, responses=CSV_RESPONSE)
async def list_years(
    request: Request, params: Annotated[FormatQuery, from_query(FormatQuery)], engine: EngineDep
) -> Response:
    """List each year with data and its number of observations."""
    answer = await read(request, engine, queries.list_years)
    as_csv = wants_csv(request, params.format)
    return list_response(answer, YearSummary, as_csv=as_csv, filename="years")
