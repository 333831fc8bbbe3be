"""Liveness, readiness and metrics: for load balancers, container health checks, Prometheus."""

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import migrate
from app.db import EngineDep
from app.errors import ServiceUnavailableError
from app.observability import metrics

router = APIRouter(tags=["health"])


class Liveness(BaseModel):
    """The process answers."""

    status: str = "ok"


class Readiness(BaseModel):
    """The database answers and its schema is at the migration head."""

    status: str = "ready"
    schema_revision: str


def _not_ready(reason: str) -> ServiceUnavailableError:
    error = ServiceUnavailableError(reason, headers={"Retry-After": "5"})
    error.slug = "not-ready"
    return error


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> Liveness:
    """Liveness: the process is up. It does not touch the database."""
    return Liveness()


@router.get(
    "/readyz",
    summary="Readiness: the database answers and its schema is current",
    responses={503: {"description": "Database unreachable or schema not at the migration head"}},
)
def readyz(engine: EngineDep) -> Readiness:
    """Readiness: the database answers and its schema is at the migration head."""
    head = migrate.head_revision()
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = migrate.current_revision(engine)
    except SQLAlchemyError as error:
        raise _not_ready(f"database unreachable ({type(error).__name__})") from None
    if current != head:
        raise _not_ready(f"schema at {current or 'nothing'}, expected {head}: run statsapi migrate")
    return Readiness(schema_revision=head or "")


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def get_metrics(request: Request) -> Response:
    """Request counts and latencies per route, and database errors (Prometheus text format)."""
    return await metrics(request)
