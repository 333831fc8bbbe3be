"""OpenAPI descriptions shared by the routers: error bodies, CSV and 304 responses."""

from typing import Any

from pydantic import BaseModel, Field

from app.errors import PROBLEM_MEDIA_TYPE


class FieldError(BaseModel):
    """One fault in a request, naming the parameter or field."""

    field: str = Field(description="The parameter or body field at fault.", examples=["region"])
    in_: str = Field(alias="in", description="query, path, header or body.", examples=["query"])
    message: str = Field(examples=["unknown code '320499'"])


class Problem(BaseModel):
    """RFC 9457 problem details: the shape of every error."""

    type: str = Field(examples=["urn:statsapi:problem:validation-error"])
    title: str = Field(examples=["Unprocessable Content"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["query parameter 'region': unknown code '320499'"])
    instance: str | None = Field(default=None, examples=["/api/v1/observations"])
    errors: list[FieldError] | None = Field(
        default=None, description="For 422: each fault, naming its parameter."
    )


def problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "model": Problem,
        "content": {PROBLEM_MEDIA_TYPE: {}},
    }


COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not Modified: the `If-None-Match` ETag is current."},
    422: problem("A parameter is invalid: an unknown code, a bad year or range, a limit too big."),
    429: problem("Over the rate limit (when one is set): retry after `Retry-After` seconds."),
    503: problem("The database is unavailable or busy; retry after `Retry-After` seconds."),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: problem("No resource with that code.")}
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON by default; CSV with `format=csv` or `Accept: text/csv`.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: problem("The body could not be parsed (not JSON where JSON is required)."),
    401: problem("No API key, or an unknown or revoked one (see `WWW-Authenticate`)."),
    403: problem("The API key lacks the scope this operation needs."),
    404: problem("No indicator or region with that code, or no value to delete."),
    413: problem("The body is over the size limit."),
    415: problem("The body's Content-Type is not one this operation reads."),
}
PRECONDITION_FAILED: dict[int | str, dict[str, Any]] = {
    412: problem("If-Match names a state that is no longer current: GET, merge, retry."),
}
