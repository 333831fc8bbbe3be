"""Observations: the yearly values, filtered, sorted and paged."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app import queries
from app.catalog import check_codes
from app.db import EngineDep
from app.reads import serve_read
from app.rendering import JSONResponse, csv_response, wants_csv
from app.routers.docs import CSV_RESPONSE
from app.schemas import Observation, ObservationPage, ObservationQuery, csv_columns

router = APIRouter(prefix="/observations", tags=["observations"])


def _next_url(request: Request, params: ObservationQuery, total: int) -> str | None:
    following = params.offset + params.limit
    if following >= total:
        return None
    query = dict(request.query_params)
    query.update(limit=str(params.limit), offset=str(following))
    return (
        str(request.url.replace_query_params(**query).path)
        + "?"
        + str(request.url.replace_query_params(**query).query)
    )


@router.get("", response_model=ObservationPage, responses=CSV_RESPONSE)
async def list_observations(
    request: Request, params: Annotated[ObservationQuery, Query()], engine: EngineDep
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
        next_url = _next_url(request, params, total)
        headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else {}
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
        response.headers.update({**headers, "X-Total-Count": str(total)})
        return response

    return await serve_read(
        request, engine, work, render, representation="csv" if as_csv else "json"
    )
