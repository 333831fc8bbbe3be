"""Categories: the sections of the review."""

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app import queries
from app.db import EngineDep
from app.params import from_query
from app.reads import item_response, list_response, read
from app.rendering import wants_csv
from app.routers.docs import CSV_RESPONSE, NOT_FOUND
from app.schemas import Category, CategoryCode, CategoryDetail, CategoryList, FormatQuery

router = APIRouter(prefix="/categories", tags=["categories"])


@router.get("", response_model=CategoryList, responses=CSV_RESPONSE)
async def list_categories(
    request: Request, params: Annotated[FormatQuery, from_query(FormatQuery)], engine: EngineDep
) -> Response:
    """List the categories (sections of the review) in review order."""
    answer = await read(request, engine, queries.list_categories)
    as_csv = wants_csv(request, params.format)
    return list_response(answer, Category, as_csv=as_csv, filename="categories")


@router.get("/{code}", response_model=CategoryDetail, responses=NOT_FOUND)
async def get_category(request: Request, code: CategoryCode, engine: EngineDep) -> Response:
    """Get one category with its indicators."""
    answer = await read(request, engine, queries.get_category, code)
    return item_response(answer, not_found=f"no category with code {code!r}")
