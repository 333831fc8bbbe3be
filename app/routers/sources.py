"""Sources: the published documents the figures come from, and their stored texts."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import PlainTextResponse, Response

from app import queries
from app.db import EngineDep
from app.errors import NotFoundError
from app.params import from_query
from app.reads import item_renderer, serve_list, serve_read
from app.routers.docs import CSV_RESPONSE, NOT_FOUND
from app.schemas import FormatQuery, Source, SourceList

router = APIRouter(prefix="/sources", tags=["sources"])
SourceId = Annotated[str, Path(description="Source id.", examples=["cz-tyjrswj-2023-review"])]


@router.get("", response_model=SourceList, responses=CSV_RESPONSE)
async def list_sources(
    request: Request, params: Annotated[FormatQuery, from_query(FormatQuery)], engine: EngineDep
) -> Response:
    """List the source documents by publication date."""
    return await serve_list(
        request,
        engine,
        format=params.format,
        query=queries.list_sources,
        item_model=Source,
        filename="sources",
    )


@router.get("/{id}", response_model=Source, responses=NOT_FOUND)
async def get_source(request: Request, id: SourceId, engine: EngineDep) -> Response:
    """Get one source document's description."""

    def work(connection, _) -> dict[str, Any] | None:
        found = queries.list_sources(connection, code=id)
        return found[0] if found else None

    return await serve_read(
        request, engine, work, item_renderer(not_found=f"no source with id {id!r}")
    )


@router.get(
    "/{id}/text",
    response_class=PlainTextResponse,
    responses={
        200: {"description": "The stored text, byte-identical to the published document."},
        **NOT_FOUND,
    },
)
async def get_source_text(request: Request, id: SourceId, engine: EngineDep) -> Response:
    """Get a source's full text as published (text/plain; charset=utf-8)."""

    def render(found: tuple[bool, str | None]) -> Response:
        exists, text = found
        if not exists:
            raise NotFoundError(f"no source with id {id!r}")
        if text is None:
            raise NotFoundError(f"source {id!r} has no stored text")
        return PlainTextResponse(text, media_type="text/plain; charset=utf-8")

    return await serve_read(
        request,
        engine,
        lambda connection, _: queries.get_source_text(connection, code=id),
        render,
        representation="text",
    )
