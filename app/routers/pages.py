"""The front door (`/`) and the dashboard (`/dashboard`), with their assets under `/static`.

Both pages are static files: their JavaScript modules read the public API as any dashboard team
would (the server renders no figure into them), so the dashboard is also a working proof that
the JSON endpoints suffice for a front end. Apache ECharts is served from a pinned, checksummed
copy (`app/static/vendor/echarts/`, refreshed by `make vendor-echarts`): nothing is fetched from
another host, and the pages work on an offline intranet.
"""

import os
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.types import Scope

from app.rendering import JSONResponse

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
STATIC_URL = "/static"
VENDOR_DIR = STATIC_DIR / "vendor"

# Only the app's own scripts (no inline script), styles, images and API calls; ECharts draws on
# a canvas and styles its elements through the DOM, which a style-src policy does not restrict.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
# The vendored library is referenced with its version in the query (`?v=6.1.0`), so a refresh
# changes its URL: browsers may keep it for a year. The pages' own files are revalidated
# (their ETag makes that a 304).
VENDOR_CACHE = "public, max-age=31536000, immutable"
OWN_CACHE = "no-cache"

router = APIRouter(include_in_schema=False)


class CachedStaticFiles(StaticFiles):
    """StaticFiles with the Cache-Control above."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        vendored = Path(full_path).is_relative_to(VENDOR_DIR)
        response.headers["Cache-Control"] = VENDOR_CACHE if vendored else OWN_CACHE
        return response


def _page(name: str) -> FileResponse:
    return FileResponse(
        STATIC_DIR / name,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": OWN_CACHE},
    )


def _quality(accept: str, media_type: str) -> tuple[float, int]:
    """How much `accept` wants `media_type`: its q-value, then how specific the matching range
    is (`text/html` over `text/*` over `*/*`), as RFC 9110 section 12.5.1 ranks them."""
    kind = media_type.split("/")[0]
    best = (0.0, -1)
    for item in accept.split(","):
        range_, *params = (part.strip() for part in item.split(";"))
        specificity = {media_type: 2, f"{kind}/*": 1, "*/*": 0}.get(range_.lower())
        if specificity is None:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if specificity > best[1]:
            best = (q, specificity)
    return best


def prefers_json(accept: str) -> bool:
    """True when the Accept header ranks application/json above text/html; HTML otherwise
    (a browser's `*/*`, no header, a tie)."""
    return _quality(accept, "application/json")[0] > _quality(accept, "text/html")[0]


class EntryPoints(BaseModel):
    """What `/` answers to `Accept: application/json`: where everything is."""

    title: str
    version: str
    links: dict[str, str]


def entry_points(app: FastAPI, root: str) -> EntryPoints:
    api = f"{root}/api/v1"
    links = {
        "dashboard": f"{root}/dashboard",
        "docs": f"{root}/docs",
        "redoc": f"{root}/redoc",
        "openapi": f"{root}{app.openapi_url}",
        **{
            name: f"{api}/{name}"
            for name in (
                "years",
                "categories",
                "indicators",
                "regions",
                "sources",
                "observations",
                "comparisons",
            )
        },
        "observations_csv": f"{api}/observations?format=csv&limit=1000",
        "healthz": f"{root}/healthz",
    }
    return EntryPoints(title=app.title, version=app.version, links=links)


@router.get("/")
async def front_door(request: Request) -> Response:
    """The landing page; a JSON index of the entry points for `Accept: application/json`."""
    if prefers_json(request.headers.get("accept", "")):
        index = entry_points(request.app, request.scope.get("root_path", ""))
        return JSONResponse(index.model_dump())
    return _page("index.html")


@router.get("/dashboard")
async def dashboard() -> FileResponse:
    """The dashboard: tiles, charts and sources, all read from the public API."""
    return _page("dashboard.html")


def install_pages(app: FastAPI) -> None:
    """`/`, `/dashboard` and their assets under `/static`."""
    app.mount(STATIC_URL, CachedStaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(router)
