"""Regions: Changzhou and its county-level divisions (GB/T 2260)."""

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app import queries
from app.db import EngineDep
from app.params import from_query
from app.reads import item_response, list_response, read
from app.rendering import wants_csv
from app.routers.docs import CSV_RESPONSE, NOT_FOUND
from app.schemas import FormatQuery, Region, RegionCode, RegionDetail, RegionList

router = APIRouter(prefix="/regions", tags=["regions"])


@router.get("", response_model=RegionList, responses=CSV_RESPONSE)
async def list_regions(
    request: Request, params: Annotated[FormatQuery, from_query(FormatQuery)], engine: EngineDep
) -> Response:
    """List the regions by code, with or without data."""
    answer = await read(request, engine, queries.list_regions)
    as_csv = wants_csv(request, params.format)
    return list_response(answer, Region, as_csv=as_csv, filename="regions")


@router.get("/{code}", response_model=RegionDetail, responses=NOT_FOUND)
async def get_region(request: Request, code: RegionCode, engine: EngineDep) -> Response:
    """Get one region, with its child regions and the years that have data there."""
    answer = await read(request, engine, queries.get_region, code)
    return item_response(answer, not_found=f"no region with code {code!r}")
