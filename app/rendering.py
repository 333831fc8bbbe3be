"""Response bodies: JSON through orjson with exact decimals, and CSV that Excel reads.

Decimals are written as JSON numbers from their decimal text (orjson.Fragment), so 96.6 is
`96.6`, never `96.59999999999999` and never the string "96.6".
"""

import csv
import io
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from starlette import responses as starlette_responses

from app.bundle import defuse_formula
from app.decimals import to_json_text

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
UTF8_BOM = "\ufeff"


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(to_json_text(value))
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dump_json(body: Any) -> bytes:
    return orjson.dumps(body, default=_default)


class JSONResponse(starlette_responses.JSONResponse):
    """JSON via orjson, exact decimals. A JSONResponse subclass, so OpenAPI documents the
    response model for it."""

    def render(self, content: Any) -> bytes:
        return dump_json(content)


def wants_csv(request: Request, format: str | None) -> bool:
    """`format=` decides; without it, an Accept header that prefers text/csv does."""
    if format is not None:
        return format == "csv"
    accept = request.headers.get("accept", "")
    return "text/csv" in accept and "application/json" not in accept


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # as in the JSON body
    if isinstance(value, Decimal):
        return to_json_text(value)
    return defuse_formula(value)  # the one rule of app/bundle.py, as in `statsapi export`


def flatten(row: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"source": {"id": x}} -> {"source_id": x}; lists are joined with `;`."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}_"))
        elif isinstance(value, list):
            flat[name] = ";".join(
                str(item.get("code", item)) if isinstance(item, Mapping) else str(item)
                for item in value
            )
        else:
            flat[name] = value
    return flat


def render_csv(rows: Iterable[Mapping[str, Any]], columns: list[str]) -> bytes:
    """UTF-8 with a byte-order mark, one header row, nested fields flattened."""
    buffer = io.StringIO()
    buffer.write(UTF8_BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        flat = flatten(row)
        writer.writerow([_cell(flat.get(column)) for column in columns])
    return buffer.getvalue().encode("utf-8")


def csv_response(
    rows: Iterable[Mapping[str, Any]], columns: list[str], *, filename: str
) -> Response:
    return Response(
        render_csv(rows, columns),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )
