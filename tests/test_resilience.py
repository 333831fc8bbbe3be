"""Faults: a locked SQLite file, a killed worker mid-import, SIGTERM, a PostgreSQL outage.

Each test runs a real `statsapi serve` on a free loopback port against a fresh database, and
bounds every wait. The PostgreSQL outage test restarts the local cluster, so it runs only in the
PostgreSQL pass of the suite and always leaves the cluster running.
"""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from app.auth import Scope, create_key
from app.bundle import read_bundle_file
from app.db import build_engine
from app.models import observation_table
from tests.conftest import PG_URL, SEED_DIR, DatabaseFactory

SOURCE = "cz-tyjrswj-2023-review"
HEADER = "indicator,region,year,value,qualifier,note,source,quote"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(database_url: str, **env: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`statsapi serve` (one worker, in its own process group) until the block ends."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env={**os.environ, "DATABASE_URL": database_url, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(url, timeout=30)
        yield url, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _wait_until_ready(url: str, *, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} was not ready within {timeout} s")


def _write_key(database_url: str) -> dict[str, str]:
    engine = build_engine(database_url)
    token = create_key(engine, name="resilience", scopes={Scope.write})
    engine.dispose()
    return {"Authorization": f"Bearer {token}"}


def _synthetic_csv(rows: int) -> bytes:
    """SYNTHETIC rows for years 1950-1999 on the seed's indicators (whose only year is 2023)."""
    seed = read_bundle_file(SEED_DIR / "changzhou-2023-review.yaml").bundle
    pairs = [(i.code, r.code) for i in seed.indicators for r in seed.regions]
    assert rows <= len(pairs) * 50
    lines = [HEADER]
    for n in range(rows):
        indicator, region = pairs[n % len(pairs)]
        year = 1950 + n // len(pairs)
        lines.append(f"{indicator},{region},{year},{n},exact,,{SOURCE},SYNTHETIC row {n}")
    return ("\r\n".join(lines) + "\r\n").encode()


def _count_before_2000(database_url: str) -> int:
    engine = build_engine(database_url)
    with engine.connect() as connection:
        count = connection.execute(
            select(func.count())
            .select_from(observation_table)
            .where(observation_table.c.year < 2000)
        ).scalar_one()
    engine.dispose()
    return int(count)


def test_a_sqlite_lock_held_past_the_busy_timeout_is_a_503(databases: DatabaseFactory) -> None:
    if databases.backend != "sqlite":
        pytest.skip("SQLite locking: this run is on PostgreSQL")
    url = databases.fresh("seeded")
    headers = _write_key(url)
    body = {"value": 609, "source": SOURCE, "quote": "SYNTHETIC"}
    path = "/api/v1/observations/adaptive_training_trainees/320400/2023"
    with serving(url, STATSAPI_SQLITE_BUSY_TIMEOUT_MS="300") as (server, _):
        blocker = sqlite3.connect(make_url(url).database or "", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # hold the write lock
        try:
            started = time.monotonic()
            refused = httpx.put(f"{server}{path}", json=body, headers=headers, timeout=10)
            waited = time.monotonic() - started
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        assert waited < 3
        # reads never waited for the writer, and once the lock is gone the write goes through
        accepted = httpx.put(f"{server}{path}", json=body, headers=headers, timeout=10)
        assert accepted.status_code == 200


def test_a_worker_killed_mid_import_leaves_all_or_nothing(databases: DatabaseFactory) -> None:
    url = databases.fresh("seeded")
    headers = {**_write_key(url), "Content-Type": "text/csv"}
    rows = 19_000
    with serving(url) as (server, process):
        outcome: dict[str, object] = {}

        def post() -> None:
            try:
                outcome["response"] = httpx.post(
                    f"{server}/api/v1/imports",
                    content=_synthetic_csv(rows),
                    headers=headers,
                    timeout=60,
                )
            except httpx.HTTPError as error:
                outcome["error"] = error

        thread = threading.Thread(target=post)
        thread.start()
        time.sleep(1.0)  # parsing and writing 20,000 rows takes longer than this
        os.killpg(process.pid, signal.SIGKILL)
        thread.join(timeout=30)
    assert "error" in outcome  # the connection died with the worker: no answer came
    assert _count_before_2000(url) in (0, rows)
    with serving(url) as (server, _):
        assert httpx.get(f"{server}/api/v1/years", timeout=5).status_code == 200
    if make_url(url).get_backend_name() == "sqlite":
        with sqlite3.connect(make_url(url).database or "") as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_sigterm_lets_an_import_in_flight_finish(databases: DatabaseFactory) -> None:
    url = databases.fresh("seeded")
    headers = {**_write_key(url), "Content-Type": "text/csv"}
    rows = 10_000
    with serving(url) as (server, process):
        outcome: dict[str, object] = {}

        def post() -> None:
            outcome["response"] = httpx.post(
                f"{server}/api/v1/imports",
                content=_synthetic_csv(rows),
                headers=headers,
                timeout=60,
            )

        thread = threading.Thread(target=post)
        thread.start()
        time.sleep(0.5)
        os.killpg(process.pid, signal.SIGTERM)
        thread.join(timeout=60)
        process.wait(timeout=30)  # and the server then exits by itself
    response = outcome["response"]
    assert isinstance(response, httpx.Response) and response.status_code == 200
    assert _count_before_2000(url) == rows


def _cluster() -> str:
    return sorted(os.listdir("/etc/postgresql"))[-1]


def _pg(action: str, *options: str) -> None:
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", _cluster(), "main", action, *options],
        check=True,
        timeout=60,
        capture_output=True,
    )


def _pg_ready() -> bool:
    result = subprocess.run(
        ["pg_isready", "-h", "127.0.0.1", "-q"], timeout=10, check=False, capture_output=True
    )
    return result.returncode == 0


@pytest.fixture
def postgres_comes_back() -> Iterator[None]:
    yield
    if not _pg_ready():
        _pg("start")
    deadline = time.monotonic() + 30
    while not _pg_ready() and time.monotonic() < deadline:
        time.sleep(0.5)


@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL: set STATSAPI_TEST_DATABASE_URL")
def test_a_postgresql_outage_is_503_and_the_app_recovers_by_itself(
    databases: DatabaseFactory, postgres_comes_back: None, capsys: pytest.CaptureFixture[str]
) -> None:
    url = databases.fresh("seeded")
    path = "/api/v1/observations?indicator=adaptive_training_trainees"
    with serving(url) as (server, _):
        seen: list[tuple[float, int | str, bool]] = []
        stop = threading.Event()

        def hammer() -> None:
            with httpx.Client(timeout=5) as client:
                while not stop.is_set():
                    try:
                        response = client.get(f"{server}{path}")
                        problem = response.headers.get("content-type") == "application/problem+json"
                        retry = "retry-after" in response.headers
                        seen.append((time.monotonic(), response.status_code, problem and retry))
                    except httpx.HTTPError as error:
                        seen.append((time.monotonic(), type(error).__name__, False))
                    time.sleep(0.02)

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1)
            _pg("restart", "-m", "fast")
            time.sleep(1)
            down = time.monotonic()
            _pg("stop", "-m", "immediate")
            time.sleep(3)
            _pg("start")
            while not _pg_ready():
                time.sleep(0.2)
            back = time.monotonic()
            recovered = None
            while time.monotonic() - back < 10:
                if seen and seen[-1][1] == 200 and seen[-1][0] > back:
                    recovered = seen[-1][0] - back
                    break
                time.sleep(0.1)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=10)
    statuses = {status for _, status, _ in seen}
    assert statuses <= {200, 503}, statuses  # never a 500, never a timeout
    assert all(ok for _, status, ok in seen if status == 503)
    assert 503 in statuses  # the outage was seen
    assert recovered is not None and recovered <= 5
    with capsys.disabled():
        outage = [t for t, status, _ in seen if status == 503]
        print(
            f"\n[postgres outage] requests={len(seen)} 503s={len(outage)} "
            f"stopped for {back - down:.1f} s, first 200 {recovered:.2f} s after it was back"
        )
