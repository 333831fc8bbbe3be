"""Regions: Changzhou and its county-level divisions (GB/T 2260)."""

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from app import queries
from app.db import EngineDep
from app.params import from_query
from app.reads import item_renderer, serve_list, serve_read
from app.routers.docs import CSV_RESPONSE, NOT_FOUND
from app.schemas import FormatQuery, Region, RegionDetail, RegionList

router = APIRouter(prefix="/regions", tags=["regions"])
RegionCode = Annotated[str, Path(description="GB/T 2260 code.", examples=["320411"])]


@router.get("", response_model=RegionList, responses=CSV_RESPONSE)
async def list_regions(
    request: Request, params: Annotated[FormatQuery, from_query(FormatQuery)], engine: EngineDep
) -> Response:
    """List the regions by code, with or without data."""
    return await serve_list(
        request,
        engine,
        format=params.format,
        query=queries.list_regions,
        item_model=Region,
        filename="regions",
    )


@router.get("/{code}", response_model=RegionDetail, responses=NOT_FOUND)
async def get_region(request: Request, code: RegionCode, engine: EngineDep) -> Response:
    """Get one region, with its child regions and the years that have data there."""
    return await serve_read(
        request,
        engine,
        lambda connection, _: queries.get_region(connection, code=code),
        item_renderer(not_found=f"no region with code {code!r}"),
    )
