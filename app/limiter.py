"""The rate limiter: writes per API key and failed authentications per client address (on by
default), reads per client address (off by default). No HTTP: a request over its limit raises
`RateLimitedError`, which app/errors.py answers as 429 with Retry-After and the RateLimit
headers; app/ratelimit.py says who a request is and when a read counts.

Limits are strings such as "120/minute" (the `limits` library's notation). Counters live in
`STATSAPI_RATE_LIMIT_STORAGE`: `memory://` keeps them per worker process (so N workers allow N
times the limit), `redis://host:6379` shares them between workers and servers.
"""

import math
import time
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from app.config import get_settings
from app.errors import RateLimitedError


@lru_cache
def _limiter() -> MovingWindowRateLimiter:
    return MovingWindowRateLimiter(storage_from_string(get_settings().rate_limit_storage))


@lru_cache
def _item(limit: str) -> RateLimitItem:
    return parse(limit)


def _refusal(limit: str, *, bucket: str, who: str) -> RateLimitedError:
    item = _item(limit)
    stats = _limiter().get_window_stats(item, bucket, who)
    return RateLimitedError(
        limit=limit,
        bucket=bucket,
        allowed=item.amount,
        window_seconds=item.get_expiry(),
        retry_after=max(1, math.ceil(stats.reset_time - time.time())),
    )


def check(limit: str | None, *, bucket: str, who: str) -> None:
    """Count one request for `who`; RateLimitedError when over `limit` (None: no limit)."""
    if limit and not _limiter().hit(_item(limit), bucket, who):
        raise _refusal(limit, bucket=bucket, who=who)


def refuse_if_over(limit: str | None, *, bucket: str, who: str) -> None:
    """RateLimitedError when `who` is already over `limit`, counting nothing: for limits on
    failures, which are counted (`count`) only once the request has failed."""
    if limit and not _limiter().test(_item(limit), bucket, who):
        raise _refusal(limit, bucket=bucket, who=who)


def count(limit: str | None, *, bucket: str, who: str) -> None:
    """Count one event (a failure) for `who` against `limit`."""
    if limit:
        _limiter().hit(_item(limit), bucket, who)
