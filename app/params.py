"""Query-string models, read faster than FastAPI's own parameter models, documented the same.

`params: Annotated[ObservationQuery, from_query(ObservationQuery)]` gives the route a validated
model, as `Annotated[ObservationQuery, Query()]` would. FastAPI reads a parameter model field by
field, looking up each field's aliases and shape on every request: a quarter of a filtered
list's time in-process (docs/benchmarks.md). Here the query string is grouped once (repeatable
fields into lists) and validated by pydantic in one call. Validation errors are FastAPI's
(`RequestValidationError`, located `("query", field)`), so they become the same problem+json.

The OpenAPI parameters are FastAPI's own, generated once from the same model declared the usual
way (`document_query_models` adds them to each route that uses `from_query`).
"""

from functools import cache
from typing import Annotated, Any, TypeVar, get_origin

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
# Errors listed in one 422: every field of the largest query model can be wrong at once, well
# under this; past it the rest are counted, not listed (5,000 unknown parameters in a 55 KB URL
# answered 690 KB, issue 11).
MAX_LISTED_ERRORS = 20


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) is list or annotation is list


def from_query(model: type[M]) -> Any:
    """`Depends` that reads `model` from the query string (see the module docstring)."""
    return Depends(_reader(model))


@cache
def _reader(model: type[M]) -> Any:
    repeatable = frozenset(
        field.alias or name
        for name, field in model.model_fields.items()
        if _is_list(field.annotation)
    )

    async def read(request: Request) -> M:
        raw: dict[str, Any] = {}
        for name, value in request.query_params.multi_items():
            if name in repeatable:
                raw.setdefault(name, []).append(value)
            else:
                raw[name] = value  # a repeated single value is refused before this (guards.py)
        try:
            return model.model_validate(raw)
        except ValidationError as error:
            raise RequestValidationError(_listed(error.errors(include_url=False))) from None

    read.query_model = model  # type: ignore[attr-defined]
    return read


def _listed(errors: list[Any]) -> list[dict[str, Any]]:
    """The first MAX_LISTED_ERRORS errors, located in the query, and one saying how many more."""
    listed = [{**e, "loc": ("query", *e["loc"])} for e in errors[:MAX_LISTED_ERRORS]]
    unlisted = len(errors) - len(listed)
    if unlisted:
        message = (
            f"and {unlisted} more invalid parameters, not listed (at most {MAX_LISTED_ERRORS})"
        )
        listed.append({"type": "too_many_errors", "loc": ("query",), "msg": message})
    return listed


@cache
def _parameters(model: type[BaseModel]) -> tuple[Any, ...]:
    """The OpenAPI parameters FastAPI writes for `Annotated[model, Query()]`."""
    scratch = FastAPI()

    @scratch.get("/")
    def _route(params: Annotated[model, Query()]) -> None:  # type: ignore[valid-type]
        """Never served: FastAPI documents the model here."""

    return tuple(scratch.openapi()["paths"]["/"]["get"].get("parameters", []))


def _api_routes(routes: list[Any]) -> list[APIRoute]:
    """Every APIRoute, through included routers (FastAPI keeps them nested)."""
    found = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found += _api_routes(route.original_router.routes)
    return found


def document_query_models(app: FastAPI) -> None:
    """Give each route reading a model with `from_query` that model's OpenAPI parameters."""
    for route in _api_routes(app.routes):
        for dependency in route.dependant.dependencies:
            model = getattr(dependency.call, "query_model", None)
            if model is not None:
                extra = dict(route.openapi_extra or {})
                # Route objects outlive an app (routers are module globals): each app built in
                # the same process must not list the same parameters again.
                present = {(p["name"], p["in"]) for p in extra.get("parameters", [])}
                missing = [p for p in _parameters(model) if (p["name"], p["in"]) not in present]
                extra["parameters"] = [*extra.get("parameters", []), *missing]
                route.openapi_extra = extra
