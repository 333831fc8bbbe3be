"""Sources: the published documents the figures come from, and their stored texts."""

from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from app import queries
from app.db import EngineDep
from app.errors import NotFoundError
from app.params import from_query
from app.reads import Fresh, NotModified, item_response, list_response, read
from app.rendering import wants_csv
from app.routers.docs import CSV_RESPONSE, NOT_FOUND
from app.schemas import FormatQuery, Source, SourceId, SourceList

router = APIRouter(prefix="/sources", tags=["sources"])
FormatParams = Annotated[FormatQuery, from_query(FormatQuery)]


@router.get("", response_model=SourceList, responses=CSV_RESPONSE)
async def list_sources(request: Request, params: FormatParams, engine: EngineDep) -> Response:
    """List the source documents by publication date."""
    answer = await read(request, engine, queries.list_sources)
    as_csv = wants_csv(request, params.format)
    return list_response(
        _with_text_urls(request, answer), Source, as_csv=as_csv, filename="sources"
    )


@router.get("/{id}", response_model=Source, responses=NOT_FOUND)
async def get_source(request: Request, id: SourceId, engine: EngineDep) -> Response:
    """Get one source document's description."""
    answer = await read(request, engine, queries.list_sources, id)
    found = _with_text_urls(request, answer)
    return item_response(_first(found), not_found=f"no source with id {id!r}")


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
    answer = await read(request, engine, queries.get_source_text, id)
    if isinstance(answer, NotModified):
        return answer.response()
    exists, text = answer.data
    if not exists:
        raise NotFoundError(f"no source with id {id!r}")
    if text is None:
        raise NotFoundError(f"source {id!r} has no stored text")
    return answer.respond(PlainTextResponse(text, media_type="text/plain; charset=utf-8"))


Sources = Fresh[list[dict[str, Any]]] | NotModified


def _with_text_urls(request: Request, answer: Sources) -> Sources:
    """Sources as published: where each one's stored text is served (or null), rather than
    whether it has one."""
    if isinstance(answer, NotModified):
        return answer
    for source in answer.data:
        has_text = source.pop("has_text")
        text_path = request.app.url_path_for("get_source_text", id=source["id"])
        source["text_url"] = str(text_path) if has_text else None
    return answer


def _first(answer: Sources) -> Fresh[dict[str, Any] | None] | NotModified:
    if isinstance(answer, NotModified):
        return answer
    return Fresh(answer.data[0] if answer.data else None, answer.etag, answer.changed_at)
