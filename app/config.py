"""Settings: the only code that reads the environment.

Every setting has a `STATSAPI_` environment variable; the database URL also answers to the
conventional `DATABASE_URL`.
"""

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = Path("data") / "statsapi.sqlite3"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STATSAPI_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEFAULT_SQLITE_PATH}",
        validation_alias=AliasChoices("DATABASE_URL", "STATSAPI_DATABASE_URL"),
        description="SQLAlchemy URL. Default: a SQLite file under ./data/, created on first use.",
    )
    sqlite_busy_timeout_ms: int = Field(
        default=5000, ge=0, description="How long a SQLite writer waits for the lock."
    )
    sqlite_read_timeout_ms: int = Field(
        default=5000,
        ge=0,
        description="How long one read on SQLite may run before it is interrupted (503); "
        "0: no limit. The same default as PostgreSQL's statement timeout.",
    )
    pg_statement_timeout_ms: int = Field(
        default=5000, ge=0, description="PostgreSQL statement_timeout for every connection."
    )
    pg_connect_timeout_s: int = Field(default=3, ge=1, description="PostgreSQL connect timeout.")
    pg_pool_size: int = Field(default=5, ge=1, description="PostgreSQL connections per worker.")
    seed_dir: Path = Field(
        default=PROJECT_ROOT / "seed", description="Folder whose *.yaml bundles `seed` loads."
    )
    cache_max_age: int = Field(
        default=60, ge=0, description="Cache-Control max-age (seconds) on GET responses."
    )
    max_import_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest import body accepted (413 past it)."
    )
    # An import is all or nothing: one write transaction, so its rows bound how long it holds
    # the write lock, and a concurrent writer waits 5 s (busy timeout, statement timeout)
    # before its 503. Batched, on a 2-core machine shared with other jobs (load average 7),
    # 10,000 rows held the lock 0.8-1.5 s on SQLite and 1.9 s on PostgreSQL; 20,000 rows up
    # to 3.8 s and 2.5 s, and past 5 s once in the live probe (`python -m checks.import_lock`,
    # tests/test_hostile_imports.py). 10,000 keeps the lock well inside a writer's wait.
    max_import_rows: int = Field(
        default=10_000, ge=1, description="Most observations one import may hold."
    )
    # Long enough for any client's retries (a day covers a night's failed batch job), short
    # enough that stored summaries stay small: at most a few hundred bytes each, 120 a minute
    # per key at the write limit, so under 60 MB per key at most.
    idempotency_ttl_hours: int = Field(
        default=24, ge=1, le=24 * 30, description="How long an Idempotency-Key's answer replays."
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest body of any other request."
    )
    body_timeout_s: float = Field(
        # 30 s carries the largest import (10 MiB) at about 3 Mbit/s, slower than any partner's
        # link to an intranet server; past it the worker stops holding a trickled body.
        default=30,
        gt=0,
        description="Seconds to receive a whole request body once reading starts (408 past it).",
    )
    limit_concurrency: int = Field(
        # Per worker: three times the 64 users of the load check (checks/load) spread over two
        # workers, so a real peak never meets it, while a flood of open connections gets a
        # 503 at the 201st instead of growing the worker.
        default=200,
        ge=1,
        description="Open connections and requests per worker (uvicorn answers 503 past it).",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description=(
            "Addresses whose X-Forwarded-For / X-Forwarded-Proto are trusted (a reverse proxy's); "
            "empty: none."
        ),
    )
    write_rate_limit: str | None = Field(
        default="120/minute", description="Writes per API key, e.g. 120/minute; empty: none."
    )
    auth_failure_rate_limit: str | None = Field(
        # A live key never fails; a misconfigured client fails a few times and stops. 30 a
        # minute leaves it room to retry, and makes a flood of bad tokens cost one counter
        # check each instead of a key lookup.
        default="30/minute",
        description="Failed authentications (401) per client address; past it, 429.",
    )
    read_rate_limit: str | None = Field(
        default=None, description="Reads per client address, e.g. 600/minute; default: none."
    )
    rate_limit_storage: str = Field(
        default="memory://", description="memory:// (per worker) or redis://host:port (shared)."
    )
    answer_cache_bytes: int = Field(
        # A page of 100 observations is about 75 KB: 8 MiB keeps a hundred such answers, and
        # stays well inside a worker's 120 MB (docs/benchmarks.md).
        default=8 * 1024 * 1024,
        ge=0,
        description="Bytes of GET answers kept per worker until the next write; 0: none.",
    )
    cors_origins: list[str] = Field(
        default=["*"],
        description="Origins whose pages may call the API with CORS (JSON list); writes still "
        "need a key.",
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
