"""Export: everything in one answer, as `statsapi export` writes it and `statsapi import` (or
POST /imports) reads it back; for a partner mirroring the whole dataset in one request."""

from collections.abc import Callable, Iterator
from typing import Annotated, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from app import exporter
from app.db import EngineDep
from app.params import from_query
from app.reads import Fresh, NotModified, read
from app.rendering import CSV_MEDIA_TYPE, wants_csv
from app.routers.docs import COMPONENT_REF, with_change_seq
from app.schemas import ExportQuery

router = APIRouter(tags=["export"])
Params = Annotated[ExportQuery, from_query(ExportQuery)]
T = TypeVar("T")

EXPORT_RESPONSES = with_change_seq(
    {
        200: {
            "description": (
                "JSON: a complete bundle (sources with their texts, units, categories, regions, "
                "indicators, observations), the body `POST /imports` and `statsapi import` "
                "take. CSV (`format=csv` or `Accept: text/csv`): the observation rows an "
                "import reads, for a database that has the reference data."
            ),
            "content": {
                "application/json": {"schema": {"$ref": COMPONENT_REF.format(model="Bundle")}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    }
)


@router.get("/export", response_class=StreamingResponse, responses=EXPORT_RESPONSES)
async def export_data(request: Request, params: Params, engine: EngineDep) -> Response:
    """Export everything (or one year's values): the bundle `statsapi import` reads back."""
    name = "statsapi-export" + (f"-{params.year}" if params.year is not None else "")
    if wants_csv(request, params.format):
        rows = await read(request, engine, exporter.export_observations, params.year, heavy=True)
        return _streamed(rows, exporter.csv_pieces, CSV_MEDIA_TYPE, f"{name}.csv")
    bundle = await read(request, engine, exporter.export_bundle, params.year, heavy=True)
    return _streamed(bundle, exporter.json_pieces, "application/json", f"{name}.json")


def _streamed(
    answer: Fresh[T] | NotModified,
    pieces: Callable[[T], Iterator[bytes]],
    media_type: str,
    filename: str,
) -> Response:
    """The answer's body written a piece at a time, as a download; or the 304."""
    if isinstance(answer, NotModified):
        return answer.response()
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    response = StreamingResponse(pieces(answer.data), media_type=media_type, headers=disposition)
    return answer.respond(response)
