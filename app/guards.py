"""Request guards: parameter hygiene, before any parameter is parsed."""

from fastapi import Request

from app.errors import InvalidParameterError
from app.filters import REPEATABLE as REPEATABLE_PARAMETERS


def check_parameters(request: Request) -> None:
    """422 for a parameter given twice that takes one value (`?q=a&q=b`), instead of silently
    keeping the last (list filters are the repeatable ones), and for a NUL character, which
    PostgreSQL cannot store or compare."""
    seen: set[str] = set()
    for name, value in request.query_params.multi_items():
        if name in seen and name not in REPEATABLE_PARAMETERS:
            raise InvalidParameterError.for_field("query", name, "given more than once")
        if "\x00" in value:
            raise InvalidParameterError.for_field("query", name, "contains a NUL character")
        seen.add(name)
    for name, value in request.path_params.items():
        if "\x00" in str(value):
            raise InvalidParameterError.for_field("path", name, "contains a NUL character")
