"""Observations: the yearly values, filtered, sorted and paged; one value read, written,
deleted, and its history."""

from dataclasses import asdict, dataclass
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response

from app import queries, writes
from app.auth import WriteKey
from app.blocking import run_read, run_write
from app.db import EngineDep
from app.errors import NotFoundError, UnsupportedMediaTypeError
from app.etags import cache_headers, etag_matches
from app.params import from_query
from app.reads import NotModified, page_response, read
from app.rendering import JSONResponse, wants_csv
from app.routers.docs import (
    CSV_RESPONSE,
    NOT_FOUND,
    PRECONDITION_FAILED,
    UNSUPPORTED_MEDIA_TYPE,
    WRITE_ERRORS,
    problem,
    with_change_seq,
)
from app.schemas import (
    IndicatorCode,
    Observation,
    ObservationPage,
    ObservationQuery,
    ObservationWrite,
    RegionCode,
    RevisionList,
    YearPath,
    csv_columns,
)

router = APIRouter(prefix="/observations", tags=["observations"])
Params = Annotated[ObservationQuery, from_query(ObservationQuery)]


@router.get("", response_model=ObservationPage, responses=with_change_seq(CSV_RESPONSE))
async def list_observations(request: Request, params: Params, engine: EngineDep) -> Response:
    """List observations with their labels and sources, filtered, sorted and paged."""
    filters = params.filters()
    answer = await read(request, engine, queries.list_observations, filters, heavy=filters.heavy)
    as_csv = wants_csv(request, params.format)
    csv = (csv_columns(Observation), "observations") if as_csv else None
    # A `since` answer pages by change sequence: `next` asks for the rows after the last one.
    keyset = ("since", "change_seq") if filters.since is not None else None
    return page_response(request, answer, filters, csv=csv, keyset=keyset)


# --- one value ----------------------------------------------------------------------------

IfMatch = Annotated[
    str | None,
    Header(
        description=(
            "ETag of the state you edited; 412 if someone changed it since. Compared strongly; "
            'a tag written without its quotes (`r1`) is read as `"r1"`.'
        ),
        examples=['"r1"'],
    ),
]
IfNoneMatchStar = Annotated[
    str | None,
    Header(description="`*`: create only; 412 if a value exists.", examples=["*"]),
]
VALUE_PATH = "/{indicator}/{region}/{year}"


async def json_body(request: Request) -> None:
    """415 for a body that is not JSON, rather than a confusing validation error."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaTypeError(
            f"Content-Type {media_type or 'missing'}: send application/json."
        )


@dataclass(frozen=True)
class ValuePath:
    """Which value: `/observations/{indicator}/{region}/{year}`."""

    indicator: IndicatorCode
    region: RegionCode
    year: YearPath

    def __str__(self) -> str:
        return f"{self.indicator} in {self.region} in {self.year}"


At = Annotated[ValuePath, Depends()]


@router.get(VALUE_PATH, response_model=Observation, responses=NOT_FOUND)
async def get_observation(request: Request, at: At, engine: EngineDep) -> Response:
    """Get one value, with the ETag to send as If-Match when you change it."""
    row = await run_read(engine, queries.get_observation, at.indicator, at.region, at.year)
    if row is None:
        raise NotFoundError(f"no published value for {at}")
    headers = cache_headers(writes.observation_etag(row["revision"]), row["updated_at"])
    if etag_matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return JSONResponse(row, headers=headers)


@router.put(
    VALUE_PATH,
    response_model=Observation,
    dependencies=[Depends(json_body)],
    responses={
        201: {"description": "Created.", "model": Observation},
        **WRITE_ERRORS,
        **UNSUPPORTED_MEDIA_TYPE,
        404: problem("No indicator or region with that code."),
        **PRECONDITION_FAILED,
        422: problem(
            "A field is invalid (an unknown source or unit, a value out of range, a quote the "
            "source does not hold), or the body is not JSON (`errors` names `body`)."
        ),
    },
)
async def put_observation(
    at: At,
    body: ObservationWrite,
    key: WriteKey,
    engine: EngineDep,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatchStar = None,
) -> Response:
    """Create (201) or replace (200) one value; the old state stays in its history."""
    result = await run_write(
        partial(
            writes.put_value,
            engine,
            key=key,
            **asdict(at),
            requested=writes.RequestedValue(
                value=body.value,
                qualifier=body.qualifier.value,
                source=body.source,
                quote=body.quote,
                note=body.note,
                unit=body.unit,
                derived=body.derived,
            ),
            if_match=if_match,
            if_none_match=if_none_match,
        )
    )
    headers = {"ETag": result.etag}
    if result.action == "created":
        headers["Location"] = f"/api/v1/observations/{at.indicator}/{at.region}/{at.year}"
    status = 201 if result.action == "created" else 200
    return JSONResponse(result.observation, status_code=status, headers=headers)


@router.delete(
    VALUE_PATH,
    status_code=204,
    response_class=Response,
    responses={
        **WRITE_ERRORS,
        404: problem("No published value at that indicator, region and year."),
        **PRECONDITION_FAILED,
    },
)
async def delete_observation(
    at: At, key: WriteKey, engine: EngineDep, if_match: IfMatch = None
) -> Response:
    """Remove a value from the published data; it stays in its history."""
    await run_write(partial(writes.delete_value, engine, key=key, **asdict(at), if_match=if_match))
    return Response(status_code=204)


@router.get(VALUE_PATH + "/revisions", response_model=RevisionList, responses=NOT_FOUND)
async def list_revisions(request: Request, at: At, engine: EngineDep) -> Response:
    """List every state a value has had: when, by which key, from which source."""
    answer = await read(request, engine, queries.list_revisions, at.indicator, at.region, at.year)
    if isinstance(answer, NotModified):
        return answer.response()
    if not answer.data:
        raise NotFoundError(f"no value was ever recorded for {at}")
    body = {**asdict(at), "total": len(answer.data)}
    return answer.respond(JSONResponse({**body, "data": answer.data}))
