"""The application: middleware, routers and error handlers, assembled in `create_app`."""

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.routing import APIRoute

from app.config import get_settings
from app.errors import install_error_handlers
from app.middleware import ResponseHeadersMiddleware, WriteGuardMiddleware
from app.observability import (
    REQUEST_ID_HEADER,
    AccessLogMiddleware,
    configure_logging,
    request_id_middleware,
)
from app.params import document_query_models
from app.reads import NotModifiedError, before_api_request, not_modified_response
from app.rendering import JSONResponse
from app.routers import (
    comparisons,
    export,
    health,
    imports,
    indicators,
    observations,
    sources,
)
from app.routers.docs import COMMON_ERRORS, install_docs, publish_schemas
from app.routers.reference import categories, regions, years

API_PREFIX = "/api/v1"
DESCRIPTION = """\
Statistics from the annual reviews of the Changzhou Municipal Bureau of Veterans Affairs
(常州市退役军人事务局), published as data: every value an exact decimal in base units, every
value traced to the sentence of the published text that states it (`source.quote`).

**Reads are public**: no key, CORS open to any origin, no credentials.
Every GET carries an `ETag` and `Last-Modified`; send `If-None-Match` to get `304 Not Modified`.
Every list answers `format=csv` (or `Accept: text/csv`): UTF-8 with a byte-order mark.
Errors are RFC 9457 `application/problem+json` and name the parameter at fault.

The contract under `/api/v1` is versioned: paths, parameters and field names stay stable.

**Limits**: pages of at most 1000 rows; at most 100 codes per filter; years 1949-2100; request
bodies up to 1 MiB (imports up to 10 MiB and 10,000 rows), `413` past them; writes limited per
key (120 a minute by default, `429` with `Retry-After`), failed authentications per address (30
a minute); a body must arrive within 30 s (`408`); on PostgreSQL every statement is cancelled
after 5 s (`503`). Writes need `Authorization: Bearer TOKEN` (see *Authorize*), checked before
the body is read.
"""


def operation_id(route: APIRoute) -> str:
    """A route's OpenAPI operation id: its name (`list_observations`), which a generated client
    uses as the method's name. FastAPI's default appends the path and the method
    (`list_observations_api_v1_observations_get`). Names are unique: tests/test_openapi.py."""
    return route.name


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging()
    app = FastAPI(
        title="Changzhou Veterans Affairs Statistics API",
        version="1.0.0",
        description=DESCRIPTION,
        default_response_class=JSONResponse,
        docs_url=None,  # app/routers/docs.py serves them, offline and with their own CSP
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    install_docs(app)
    install_error_handlers(app)
    app.add_exception_handler(NotModifiedError, not_modified_response)
    # Innermost first: each add_middleware wraps what was added before it.
    app.add_middleware(
        WriteGuardMiddleware,
        default_limit=settings.max_body_bytes,
        limits={f"{API_PREFIX}/imports": settings.max_import_bytes},
        body_timeout=settings.body_timeout_s,
    )
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "HEAD", "OPTIONS"],  # writes come from servers, not browsers
        allow_credentials=False,  # public data: a credentialed CORS request is never needed
        expose_headers=["ETag", "Last-Modified", "Link", "X-Total-Count", REQUEST_ID_HEADER],
        max_age=600,
    )
    app.add_middleware(ResponseHeadersMiddleware)  # outside CORS: its preflights get them too
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(request_id_middleware)
    api = APIRouter(
        prefix=API_PREFIX,
        responses=COMMON_ERRORS,
        dependencies=[Depends(before_api_request)],
    )
    for router in (
        categories,
        indicators.router,
        regions,
        years,
        sources.router,
        observations.router,
        comparisons.router,
        imports.router,
        export.router,
    ):
        api.include_router(router)
    app.include_router(api)
    app.include_router(health.router)
    document_query_models(app)
    publish_schemas(app, imports.BUNDLE_SCHEMAS)
    return app


app = create_app()
