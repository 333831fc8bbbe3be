"""Rate limits as HTTP meets them: who a request is (its client address) and which requests
count against the read limit. The counting and refusing is a service (app/limiter.py)."""

from fastapi import Request
from starlette.types import Scope

from app import limiter
from app.config import get_settings


def client_address(scope: Scope) -> str:
    """The address that per-address limits count: the peer's, or the one a trusted proxy put in
    X-Forwarded-For (uvicorn rewrites the scope's client: `forwarded_allow_ips` in app/cli.py)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def limit_reads(request: Request) -> None:
    """Counts GETs per client address when a limit is set (app/reads.py `before_api_request`)."""
    limit = get_settings().read_rate_limit
    if limit and request.method in ("GET", "HEAD"):
        limiter.check(limit, bucket="read", who=client_address(request.scope))
