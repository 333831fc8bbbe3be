"""The application: middleware, routers and error handlers, assembled in `create_app`."""

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute

from app.config import get_settings
from app.errors import install_error_handlers
from app.idempotency import REPLAY_HEADER
from app.middleware import Edge
from app.observability import REQUEST_ID_HEADER, configure_logging
from app.params import document_query_models
from app.reads import CHANGE_SEQ_HEADER, before_api_request
from app.rendering import JSONResponse
from app.routers import (
    comparisons,
    export,
    extractions,
    health,
    imports,
    indicators,
    observations,
    sources,
)
from app.routers.docs import (
    COMMON_ERRORS,
    PROBLEM_SCHEMAS,
    document_not_modified,
    install_docs,
    publish_schemas,
)
from app.routers.pages import install_pages
from app.routers.reference import categories, regions, years

API_PREFIX = "/api/v1"
DESCRIPTION = """\
Statistics from the annual reviews of the Changzhou Municipal Bureau of Veterans Affairs
(常州市退役军人事务局), published as data: every value an exact decimal in base units, every
value traced to the sentence of the published text that states it (`source.quote`).

**Reads are public**: no key. CORS: any allowed origin (all by default) may read and, with
a key in `Authorization: Bearer`, write; cookies are never used (no credentialed requests).
Every GET carries an `ETag` and `Last-Modified`; send `If-None-Match` to get `304 Not Modified`.
The same question asked again before the next write is answered from memory: never stale,
since every write moves the data version the answers are kept by.
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


# CORS, declared once (README, "CORS"). Reads from any allowed origin; writes from a browser
# too (a dashboard's editing tool), authenticated by a bearer token in `Authorization`, never
# by cookies: credentials stay disallowed, so a page can never write with a visitor's cookies.
CORS_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "DELETE"]
# The request headers the API reads: conditional requests, the key, idempotent imports, the
# body's type (application/json, text/csv and application/yaml are not CORS-safelisted types),
# and a client's own request id.
CORS_REQUEST_HEADERS = [
    "Accept",
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "If-None-Match",
    REQUEST_ID_HEADER,
]
# The response headers a client acts on; a browser hides any other from scripts but the
# safelisted ones (Cache-Control, Content-Type, Content-Length...).
CORS_EXPOSED_HEADERS = [
    "ETag",
    "Last-Modified",
    "Link",
    "X-Total-Count",
    "Location",
    "Retry-After",
    "RateLimit",
    "RateLimit-Policy",
    "WWW-Authenticate",
    "Content-Disposition",
    REPLAY_HEADER,
    CHANGE_SEQ_HEADER,
    REQUEST_ID_HEADER,
]
# How long a browser may reuse a preflight's answer: Chromium caps it at 2 hours (Firefox at
# 24). The policy changes only with a deployment, and an origin taken off the list is refused
# on the real request anyway (its answer lacks Access-Control-Allow-Origin), so the longest
# useful time saves a preflight per URL and method.
CORS_MAX_AGE_S = 7200


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
    app.add_middleware(
        Edge,
        cors={
            "allow_origins": settings.cors_origins,
            "allow_methods": CORS_METHODS,
            "allow_headers": CORS_REQUEST_HEADERS,
            "allow_credentials": False,  # keys travel as bearer tokens: no cookie is ever needed
            "expose_headers": CORS_EXPOSED_HEADERS,
            "max_age": CORS_MAX_AGE_S,
        },
        gzip_minimum_size=1024,
        api_prefix=f"{API_PREFIX}/",
        answer_cache_bytes=settings.answer_cache_bytes,
        write_guard={
            "default_limit": settings.max_body_bytes,
            "limits": {f"{API_PREFIX}/imports": settings.max_import_bytes},
            "body_timeout": settings.body_timeout_s,
        },
    )
    app.include_router(health.router)  # first: probes are the most frequent requests
    for router in (
        categories,
        indicators.router,
        regions,
        years,
        sources.router,
        observations.router,
        comparisons.router,
        imports.router,
        extractions.router,
        export.router,
    ):
        # Each straight into the app, not through one `/api/v1` router: FastAPI resolves an
        # included router on every request, matching each level twice (to find it, then to
        # dispatch into it), and two levels took 40% of `/healthz` (docs/benchmarks.md).
        app.include_router(
            router,
            prefix=API_PREFIX,
            responses=COMMON_ERRORS,
            dependencies=[Depends(before_api_request)],
        )
    install_pages(app)
    document_query_models(app)
    publish_schemas(app, {**imports.BUNDLE_SCHEMAS, **PROBLEM_SCHEMAS})
    document_not_modified(app, prefix=API_PREFIX)
    return app


app = create_app()
