"""Observations: the yearly values, filtered, sorted and paged; one value read, written,
deleted, and its history."""

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import Response

from app import queries, writes
from app.auth import WriteKey
from app.catalog import check_codes
from app.db import EngineDep, read_connection
from app.errors import NotFoundError, UnsupportedMediaTypeError
from app.params import from_query
from app.reads import (
    cache_headers,
    etag_matches,
    next_page_url,
    page_headers,
    run_db,
    run_write,
    serve_read,
)
from app.rendering import JSONResponse, csv_response, wants_csv
from app.routers.docs import CSV_RESPONSE, NOT_FOUND, PRECONDITION_FAILED, WRITE_ERRORS
from app.schemas import (
    MAX_YEAR,
    MIN_YEAR,
    Observation,
    ObservationPage,
    ObservationQuery,
    ObservationWrite,
    RevisionList,
    csv_columns,
)

router = APIRouter(prefix="/observations", tags=["observations"])
# An OFFSET reads every row it skips: a page further than this is heavy work (app/reads.py),
# about a millisecond per 10,000 rows skipped on SQLite.
CHEAP_OFFSET = 10_000


@router.get("", response_model=ObservationPage, responses=CSV_RESPONSE)
async def list_observations(
    request: Request,
    params: Annotated[ObservationQuery, from_query(ObservationQuery)],
    engine: EngineDep,
) -> Response:
    """List observations with their labels and sources, filtered, sorted and paged."""
    as_csv = wants_csv(request, params.format)

    def work(connection, catalog):
        check_codes("category", params.category, catalog.categories)
        check_codes("indicator", params.indicator, catalog.indicators)
        check_codes("region", params.region, catalog.regions)
        return queries.list_observations(connection, query=params)

    def render(result: tuple[list[dict[str, Any]], int]) -> Response:
        rows, total = result
        next_url = next_page_url(request, limit=params.limit, offset=params.offset, total=total)
        if as_csv:
            response = csv_response(rows, csv_columns(Observation), filename="observations")
        else:
            body = {
                "data": rows,
                "total": total,
                "limit": params.limit,
                "offset": params.offset,
                "next": next_url,
            }
            response = JSONResponse(body)
        response.headers.update(page_headers(next_url, total))
        return response

    return await serve_read(
        request,
        engine,
        work,
        render,
        representation="csv" if as_csv else "json",
        heavy=(
            params.as_of is not None
            or params.updated_after is not None
            or params.offset > CHEAP_OFFSET
        ),
    )


# --- one value ----------------------------------------------------------------------------

IndicatorCode = Annotated[
    str, Path(description="Indicator code.", examples=["adaptive_training_trainees"])
]
RegionCode = Annotated[str, Path(description="GB/T 2260 region code.", examples=["320400"])]
YearPath = Annotated[int, Path(ge=MIN_YEAR, le=MAX_YEAR, description="Year.", examples=[2023])]
IfMatch = Annotated[
    str | None,
    Header(
        description="ETag of the state you edited; 412 if someone changed it since.",
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


def _not_found(indicator: str, region: str, year: int) -> NotFoundError:
    return NotFoundError(f"no published value for {indicator} in {region} in {year}")


@router.get(VALUE_PATH, response_model=Observation, responses=NOT_FOUND)
async def get_observation(
    request: Request,
    indicator: IndicatorCode,
    region: RegionCode,
    year: YearPath,
    engine: EngineDep,
) -> Response:
    """Get one value, with the ETag to send as If-Match when you change it."""

    def read() -> dict[str, Any] | None:
        with read_connection(engine) as connection:
            return queries.get_observation(
                connection, indicator_code=indicator, region_code=region, year=year
            )

    row = await run_db(engine, read)
    if row is None:
        raise _not_found(indicator, region, year)
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
        **PRECONDITION_FAILED,
    },
)
async def put_observation(
    indicator: IndicatorCode,
    region: RegionCode,
    year: YearPath,
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
            indicator=indicator,
            region=region,
            year=year,
            requested=writes.RequestedValue(
                value=body.value,
                qualifier=body.qualifier.value,
                source=body.source,
                quote=body.quote,
                note=body.note,
                unit=body.unit,
            ),
            if_match=if_match,
            if_none_match=if_none_match,
        )
    )
    headers = {"ETag": result.etag}
    if result.action == "created":
        headers["Location"] = f"/api/v1/observations/{indicator}/{region}/{year}"
    status = 201 if result.action == "created" else 200
    return JSONResponse(result.observation, status_code=status, headers=headers)


@router.delete(
    VALUE_PATH,
    status_code=204,
    response_class=Response,
    responses={**WRITE_ERRORS, **PRECONDITION_FAILED},
)
async def delete_observation(
    indicator: IndicatorCode,
    region: RegionCode,
    year: YearPath,
    key: WriteKey,
    engine: EngineDep,
    if_match: IfMatch = None,
) -> Response:
    """Remove a value from the published data; it stays in its history."""
    await run_write(
        partial(
            writes.delete_value,
            engine,
            key=key,
            indicator=indicator,
            region=region,
            year=year,
            if_match=if_match,
        )
    )
    return Response(status_code=204)


@router.get(VALUE_PATH + "/revisions", response_model=RevisionList, responses=NOT_FOUND)
async def list_revisions(
    request: Request,
    indicator: IndicatorCode,
    region: RegionCode,
    year: YearPath,
    engine: EngineDep,
) -> Response:
    """List every state a value has had: when, by which key, from which source."""

    def work(connection, catalog):
        if indicator not in catalog.indicators or region not in catalog.regions:
            raise _not_found(indicator, region, year)
        return queries.list_revisions(
            connection, indicator_code=indicator, region_code=region, year=year
        )

    def render(rows: list[dict[str, Any]]) -> Response:
        if not rows:
            raise NotFoundError(f"no value was ever recorded for {indicator} in {region} in {year}")
        body = {"indicator": indicator, "region": region, "year": year, "total": len(rows)}
        return JSONResponse({**body, "data": rows})

    return await serve_read(request, engine, work, render)
