"""Categories: the sections of the review."""

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from app import queries
from app.db import EngineDep
from app.params import from_query
from app.reads import item_renderer, serve_list, serve_read
from app.routers.docs import CSV_RESPONSE, NOT_FOUND
from app.schemas import Category, CategoryDetail, CategoryList, FormatQuery

router = APIRouter(prefix="/categories", tags=["categories"])
CategoryCode = Annotated[
    str, Path(description="Category code.", examples=["employment_entrepreneurship"])
]


@router.get("", response_model=CategoryList, responses=CSV_RESPONSE)
async def list_categories(
    request: Request, params: Annotated[FormatQuery, from_query(FormatQuery)], engine: EngineDep
) -> Response:
    """List the categories (sections of the review) in review order."""
    return await serve_list(
        request,
        engine,
        format=params.format,
        query=queries.list_categories,
        item_model=Category,
        filename="categories",
    )


@router.get("/{code}", response_model=CategoryDetail, responses=NOT_FOUND)
async def get_category(request: Request, code: CategoryCode, engine: EngineDep) -> Response:
    """Get one category with its indicators."""
    return await serve_read(
        request,
        engine,
        lambda connection, _: queries.get_category(connection, code=code),
        item_renderer(not_found=f"no category with code {code!r}"),
    )
