"""Categories, regions and years: the small reference lists, one shape declared as data.

Each is an unpaged list (JSON or CSV) and, but for years, one item by its code. They differ only
in data (the path, the query that answers, the models, the words of the docs), so each is one
`Reference` below and its routes are made by `reference_router`. Indicators (which filter) and
sources (which serve their texts) have modules of their own.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import Connection

from app import queries
from app.db import EngineDep
from app.params import from_query
from app.reads import item_response, list_response, read
from app.rendering import wants_csv
from app.routers.docs import CSV_RESPONSE, NOT_FOUND
from app.schemas import (
    Category,
    CategoryCode,
    CategoryDetail,
    CategoryList,
    FormatQuery,
    Region,
    RegionCode,
    RegionDetail,
    RegionList,
    YearList,
    YearSummary,
)

FormatParams = Annotated[FormatQuery, from_query(FormatQuery)]


@dataclass(frozen=True)
class Operation:
    name: str  # the operation id ("get_region"), which a generated client uses as a method name
    doc: str
    model: type[BaseModel]  # the JSON answer

    def documented(self, responses: dict[int | str, dict[str, Any]]) -> dict[str, Any]:
        return {"name": self.name, "description": self.doc, "response_model": self.model} | {
            "responses": responses
        }


@dataclass(frozen=True)
class Reference(Operation):
    """`GET {path}`: the whole list, as `{"data": [...], "total": n}` or CSV."""

    path: str  # also the tag and the CSV file's name
    fetch: Callable[[Connection], list[dict[str, Any]]]
    row: type[BaseModel]  # one row, and the CSV columns


@dataclass(frozen=True)
class Item(Operation):
    """`GET {path}/{code}`: one of the list, or 404."""

    fetch: Callable[[Connection, str], dict[str, Any] | None]
    code: Any  # the path parameter, as app/schemas.py documents it (`RegionCode`)


def reference_router(reference: Reference, item: Item | None = None) -> APIRouter:
    noun = reference.path.strip("/")
    router = APIRouter(prefix=reference.path, tags=[noun])

    async def list_rows(request: Request, params: FormatParams, engine: EngineDep) -> Response:
        answer = await read(request, engine, reference.fetch)
        as_csv = wants_csv(request, params.format)
        return list_response(answer, reference.row, as_csv=as_csv, filename=noun)

    router.add_api_route("", list_rows, **reference.documented(CSV_RESPONSE))
    if item is not None:
        singular = item.name.removeprefix("get_")

        async def get_one(request: Request, code: str, engine: EngineDep) -> Response:
            answer = await read(request, engine, item.fetch, code)
            return item_response(answer, not_found=f"no {singular} with code {code!r}")

        get_one.__annotations__["code"] = item.code  # its Path() documentation, for OpenAPI
        router.add_api_route("/{code}", get_one, **item.documented(NOT_FOUND))
    return router


categories = reference_router(
    Reference(
        "list_categories",
        "List the categories (sections of the review) in review order.",
        CategoryList,
        path="/categories",
        fetch=queries.list_categories,
        row=Category,
    ),
    Item(
        "get_category",
        "Get one category with its indicators.",
        CategoryDetail,
        fetch=queries.get_category,
        code=CategoryCode,
    ),
)
regions = reference_router(
    Reference(
        "list_regions",
        "List the regions by code, with or without data.",
        RegionList,
        path="/regions",
        fetch=queries.list_regions,
        row=Region,
    ),
    Item(
        "get_region",
        "Get one region, with its child regions and the years that have data there.",
        RegionDetail,
        fetch=queries.get_region,
        code=RegionCode,
    ),
)
years = reference_router(
    Reference(
        "list_years",
        "List each year with data and its number of observations.",
        YearList,
        path="/years",
        fetch=queries.list_years,
        row=YearSummary,
    )
)
