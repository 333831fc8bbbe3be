"""Two processes write different values at once for a minute; every acknowledged write stays.

A real server with two workers, and two client processes each PUTting its own series of values
(to its own keys and to one shared key) as fast as it can. Afterwards every write that was
answered 2xx must be in the revision history with the value it sent, and the published value of
each key must be the last acknowledged one. STATSAPI_SOAK_SECONDS shortens the minute locally.
"""

import multiprocessing
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.db import build_engine
from app.models import indicator_table, region_table, revision_table
from tests.conftest import DatabaseFactory
from tests.factories import SYNTHETIC_DERIVED
from tests.live import serving, write_token

SECONDS = float(os.environ.get("STATSAPI_SOAK_SECONDS", "60"))
SHARED = "job_fairs_held/320400/2023"


def _writer(
    url: str, token: str, writer: int, seconds: float, queue: "multiprocessing.Queue"
) -> None:  # type: ignore[type-arg]
    """PUT distinct values until time is up; report every acknowledged (2xx) write."""
    acknowledged: list[tuple[str, str, int]] = []
    unexpected: list[str] = []
    own = f"adaptive_training_trainees/32040{2 if writer == 0 else 4}/2023"
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + seconds
    n = 0
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            n += 1
            for path in (own, SHARED):
                # writer 0 sends even values, writer 1 odd ones: never the same value twice
                value = str(2 * (n * 2 + (path == SHARED)) + writer)
                body = {"value": value, "source": "cz-tyjrswj-2023-review", "note": "SYNTHETIC"}
                body |= SYNTHETIC_DERIVED
                try:
                    response = client.put(
                        f"/api/v1/observations/{path}", json=body, headers=headers
                    )
                except httpx.HTTPError as error:  # an answer lost is a failure too
                    unexpected.append(f"{type(error).__name__} on {path}")
                    continue
                if response.status_code in (200, 201):
                    revision = int(response.headers["etag"].strip('"r'))
                    acknowledged.append((path, value, revision))
                elif response.status_code != 503 or "retry-after" not in response.headers:
                    unexpected.append(f"{response.status_code} {response.text[:200]}")
    queue.put((acknowledged, unexpected))


@pytest.fixture
def server(databases: DatabaseFactory, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    database_url = databases.fresh("seeded")
    token = write_token(database_url, name="soak")
    with serving(database_url, tmp_path / "server.log", workers=2) as live:
        yield live.url, token, database_url


@pytest.mark.slow  # a minute of writing (STATSAPI_SOAK_SECONDS shortens it)
def test_two_processes_writing_for_a_minute_lose_no_acknowledged_write(
    server: tuple[str, str, str],
) -> None:
    url, token, database_url = server
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    writers = [
        context.Process(target=_writer, args=(url, token, n, SECONDS, queue)) for n in (0, 1)
    ]
    for process in writers:
        process.start()
    results = [queue.get(timeout=SECONDS + 60) for _ in writers]
    for process in writers:
        process.join(timeout=30)
    acknowledged = [write for acked, _ in results for write in acked]
    unexpected = [line for _, lines in results for line in lines]
    assert not unexpected, unexpected[:5]
    assert len(acknowledged) > 20 * SECONDS / 60  # the writers really wrote

    engine = build_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                indicator_table.c.code,
                region_table.c.code,
                revision_table.c.year,
                revision_table.c.revision,
                revision_table.c.value,
            )
            .join(indicator_table, revision_table.c.indicator_id == indicator_table.c.id)
            .join(region_table, revision_table.c.region_id == region_table.c.id)
            .where(revision_table.c.recorded_by == "soak")
        ).all()
    engine.dispose()
    stored = {(f"{i}/{r}/{y}", rev): value for i, r, y, rev, value in rows}
    for path, value, revision in acknowledged:
        assert stored.get((path, revision)) == Decimal(value), (path, revision, value)
    assert len(stored) == len(acknowledged)  # and nothing was recorded that was not answered

    final = httpx.get(f"{url}/api/v1/observations/{SHARED}").json()
    last = max((w for w in acknowledged if w[0] == SHARED), key=lambda w: w[2])
    assert Decimal(str(final["value"])) == Decimal(last[1])
