"""Liveness and readiness, for load balancers and container health checks."""

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import migrate
from app.db import EngineDep
from app.errors import problem_response

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    """Liveness: the process is up. It does not touch the database."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the database answers and its schema is current",
    responses={503: {"description": "Database unreachable or schema not at the migration head"}},
)
def readyz(engine: EngineDep) -> Response | dict[str, str]:
    """Readiness: the database answers and its schema is at the migration head."""
    head = migrate.head_revision()
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = migrate.current_revision(engine)
    except SQLAlchemyError as error:
        return problem_response(
            503,
            detail=f"database unreachable ({type(error).__name__})",
            slug="not-ready",
            headers={"Retry-After": "5"},
        )
    if current != head:
        return problem_response(
            503,
            detail=f"schema at {current or 'nothing'}, expected {head}: run `statsapi migrate`",
            slug="not-ready",
            headers={"Retry-After": "5"},
        )
    return {"status": "ready", "schema": head or ""}
