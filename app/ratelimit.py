"""Rate limits: writes per API key and failed authentications per client address (on by
default), reads per client address (off by default).

Limits are strings such as "120/minute" (the `limits` library's notation). Counters live in
`STATSAPI_RATE_LIMIT_STORAGE`: `memory://` keeps them per worker process (so N workers allow N
times the limit), `redis://host:6379` shares them between workers and servers.
"""

import math
import time
from functools import lru_cache

from fastapi import Request
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.types import Scope

from app.config import get_settings
from app.errors import ProblemError


class TooManyRequestsError(ProblemError):
    status = 429
    slug = "too-many-requests"


@lru_cache
def _limiter() -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(storage_from_string(get_settings().rate_limit_storage))


@lru_cache
def _item(limit: str) -> RateLimitItem:
    return parse(limit)


def _refusal(limit: str, *, bucket: str, who: str) -> TooManyRequestsError:
    item = _item(limit)
    stats = _limiter().get_window_stats(item, bucket, who)
    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
    return TooManyRequestsError(
        f"More than {limit} {bucket} requests; retry in {retry_after} s.",
        headers={
            "Retry-After": str(retry_after),
            "RateLimit-Policy": f"{item.amount};w={item.get_expiry()}",
            "RateLimit": f"limit={item.amount}, remaining=0, reset={retry_after}",
        },
    )


def check(limit: str | None, *, bucket: str, who: str) -> None:
    """Count one request for `who`; 429 with Retry-After when over `limit` (None: no limit)."""
    if limit and not _limiter().hit(_item(limit), bucket, who):
        raise _refusal(limit, bucket=bucket, who=who)


def refuse_if_over(limit: str | None, *, bucket: str, who: str) -> None:
    """429 with Retry-After when `who` is already over `limit`, counting nothing: for limits on
    failures, which are counted (`count`) only once the request has failed."""
    if limit and not _limiter().test(_item(limit), bucket, who):
        raise _refusal(limit, bucket=bucket, who=who)


def count(limit: str | None, *, bucket: str, who: str) -> None:
    """Count one event (a failure) for `who` against `limit`."""
    if limit:
        _limiter().hit(_item(limit), bucket, who)


def client_address(scope: Scope) -> str:
    """The address that per-address limits count: the peer's, or the one a trusted proxy put in
    X-Forwarded-For (uvicorn rewrites the scope's client: `forwarded_allow_ips` in app/cli.py)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def limit_reads(request: Request) -> None:
    """Counts GETs per client address when a limit is set (app/reads.py `before_api_request`)."""
    limit = get_settings().read_rate_limit
    if limit and request.method in ("GET", "HEAD"):
        check(limit, bucket="read", who=client_address(request.scope))
