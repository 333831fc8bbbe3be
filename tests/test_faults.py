"""Faults against a real `statsapi serve`: a PostgreSQL restart and outage under load, kill -9
in the middle of a bulk import, SIGTERM with an import in flight, a SQLite lock held past the
busy timeout.

Each test starts the CLI's server on a free loopback port against a fresh database, bounds every
wait (subprocess timeouts, client timeouts, deadlines on every loop), and kills the server's
process group when it ends. The PostgreSQL test stops and restarts the local cluster, so it runs
only in the PostgreSQL pass and always leaves the cluster accepting connections (a fixture starts
it again and waits for pg_isready, whatever happened).

Every row these tests write is SYNTHETIC: years 1949-2020, which the seed (2023 only) never
uses, derived, with notes that say SYNTHETIC (tests/factories.py REVIEW_CLAUSE).
"""

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.bundle import read_bundle_file
from app.db import sqlalchemy_url
from tests.conftest import PG_URL, SEED_DIR, DatabaseFactory
from tests.factories import REVIEW_CLAUSE, SYNTHETIC_DERIVED
from tests.live import children, serving, write_key

SOURCE = "cz-tyjrswj-2023-review"
HEADER = "indicator,region,year,value,qualifier,note,source,quote,derived"
SYNTHETIC_YEARS = range(1950, 2021)
IMPORT_ROWS = 20_000
# Twice the default row limit: the import must still be writing when the test strikes.
ROW_LIMIT = {"STATSAPI_MAX_IMPORT_ROWS": str(IMPORT_ROWS)}
PROBLEM = "application/problem+json"
READ_PATH = "/api/v1/observations?indicator=adaptive_training_trainees"
pytestmark = pytest.mark.slow
needs_postgres = pytest.mark.skipif(
    not PG_URL, reason="needs PostgreSQL: set STATSAPI_TEST_DATABASE_URL to run it"
)


# -- servers, keys and data ------------------------------------------------------------------


def _synthetic_csv(rows: int = IMPORT_ROWS) -> bytes:
    """SYNTHETIC rows: the seed's flow indicators x its 7 regions x the years 1950-2020."""
    seed = read_bundle_file(SEED_DIR / "changzhou-2023-review.yaml").bundle
    indicators = [i.code for i in seed.indicators if i.measure_type.value == "flow"]
    cells = [
        (indicator, region.code, year)
        for indicator in indicators
        for region in seed.regions
        for year in SYNTHETIC_YEARS
    ]
    assert len(cells) >= rows
    lines = [HEADER]
    for n, (indicator, region, year) in enumerate(cells[:rows]):
        lines.append(
            f"{indicator},{region},{year},{n},exact,SYNTHETIC fault row {n},{SOURCE},"
            f"{REVIEW_CLAUSE},true"
        )
    return ("\r\n".join(lines) + "\r\n").encode()


def _query_one(database_url: str, sql: str) -> int:
    engine = create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as connection:
            return int(connection.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


SYNTHETIC_FILTER = "year BETWEEN 1950 AND 2020 AND note LIKE 'SYNTHETIC fault row %'"


def _synthetic_counts(database_url: str) -> tuple[int, int]:
    """(observations, revisions) that the synthetic import wrote."""
    return (
        _query_one(database_url, f"SELECT count(*) FROM observation WHERE {SYNTHETIC_FILTER}"),
        _query_one(
            database_url, f"SELECT count(*) FROM observation_revision WHERE {SYNTHETIC_FILTER}"
        ),
    )


def _data_version(database_url: str) -> int:
    return _query_one(database_url, "SELECT version FROM data_version")


def _pg_backends(database_url: str, condition: str = "TRUE") -> int:
    """Server processes connected to the test database (other than this query's own)."""
    engine = create_engine(sqlalchemy_url(PG_URL or ""), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = :name "
                        f"AND pid <> pg_backend_pid() AND ({condition})"
                    ),
                    {"name": make_url(database_url).database},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def _write_in_progress(database_url: str) -> bool:
    """Whether some connection is inside a write transaction on the database right now.

    SQLite: the write lock is taken (a probe's BEGIN IMMEDIATE with no busy timeout fails).
    PostgreSQL: a backend on the database holds a transaction id, which it gets on its first
    write (the import's LOCK TABLE does not give one; its first INSERT does).
    """
    if make_url(database_url).get_backend_name() == "sqlite":
        probe = sqlite3.connect(make_url(database_url).database or "", timeout=0)
        probe.isolation_level = None
        try:
            probe.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            return True
        finally:
            if probe.in_transaction:
                probe.execute("ROLLBACK")
            probe.close()
        return False
    return _pg_backends(database_url, "backend_xid IS NOT NULL") > 0


def _wait_for(condition: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


@dataclass
class Outcome:
    response: httpx.Response | None = None
    error: BaseException | None = None
    finished_at: float = 0.0


def _post_in_background(
    url: str, body: bytes, headers: dict[str, str]
) -> tuple[Outcome, threading.Thread]:
    outcome = Outcome()

    def post() -> None:
        try:
            outcome.response = httpx.post(
                f"{url}/api/v1/imports",
                content=body,
                headers={**headers, "Content-Type": "text/csv"},
                timeout=60,
            )
        except httpx.HTTPError as error:
            outcome.error = error
        finally:
            outcome.finished_at = time.monotonic()

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return outcome, thread


def _report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\n[faults] {line}", flush=True)


# -- 1. PostgreSQL restarted and stopped under load ----------------------------------------------


def _cluster() -> str:
    return sorted(os.listdir("/etc/postgresql"))[-1]


def _pg_ctl(action: str, *options: str, check: bool = True) -> None:
    """`pg_ctlcluster VERSION main ACTION`, bounded to 60 s (crash recovery included)."""
    result = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", _cluster(), "main", action, *options],
        timeout=60,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(f"pg_ctlcluster {action} failed: {result.stderr.strip()}")


def _pg_ready() -> bool:
    result = subprocess.run(
        ["pg_isready", "-h", "127.0.0.1", "-q"], timeout=10, check=False, capture_output=True
    )
    return result.returncode == 0


def _wait_for_pg(timeout: float = 60) -> float:
    """Seconds until pg_isready answers; fails past `timeout`."""
    started = time.monotonic()
    while not _pg_ready():
        if time.monotonic() - started > timeout:
            pytest.fail(f"PostgreSQL did not accept connections within {timeout} s")
        time.sleep(0.1)
    return time.monotonic() - started


def _pg_ctl_until_ready(action: str, *options: str) -> tuple[float, float]:
    """Runs `pg_ctlcluster ACTION` while polling pg_isready (bounded to 60 s).

    Returns (the moment PostgreSQL first accepted connections again, the moment the command
    returned): the wrapper script may return a second or more after the server is ready.
    """
    returned: list[float] = []
    failures: list[str] = []

    def run() -> None:
        result = subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", _cluster(), "main", action, *options],
            timeout=60,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            failures.append(result.stderr.strip())
        returned.append(time.monotonic())

    command = threading.Thread(target=run, daemon=True)
    command.start()
    was_down = action == "start"
    back = None
    deadline = time.monotonic() + 60
    while back is None and time.monotonic() < deadline:
        if not _pg_ready():
            was_down = True
        elif was_down or returned:  # a restart: up again (or the command is done)
            back = time.monotonic()
        time.sleep(0.05)
    command.join(timeout=60)
    if failures:
        pytest.fail(f"pg_ctlcluster {action} failed: {failures[0]}")
    if back is None or not returned:
        pytest.fail(f"PostgreSQL was not ready within 60 s of pg_ctlcluster {action}")
    return back, returned[0]


@pytest.fixture
def postgres_left_running() -> Iterator[None]:
    """Whatever the test did to the cluster, it accepts connections again afterwards."""
    try:
        yield
    finally:
        if not _pg_ready():
            _pg_ctl("start", check=False)  # fails harmlessly if it is already starting
        _wait_for_pg()


@dataclass
class Seen:
    path: str
    started: float
    ended: float
    outcome: int | str  # an HTTP status, or the name of the client error
    problem: bool  # application/problem+json
    retry_after: str | None


def _hammer(url: str, path: str, seen: list[Seen], stop: threading.Event) -> None:
    with httpx.Client(timeout=3.0) as client:
        while not stop.is_set():
            started = time.monotonic()
            try:
                response = client.get(f"{url}{path}")
                outcome: int | str = response.status_code
                problem = response.headers.get("content-type", "").startswith(PROBLEM)
                retry_after = response.headers.get("retry-after")
            except httpx.HTTPError as error:
                outcome, problem, retry_after = type(error).__name__, False, None
            seen.append(Seen(path, started, time.monotonic(), outcome, problem, retry_after))
            time.sleep(0.02)


def _first_ok_after(seen: list[Seen], path: str, moment: float) -> Seen | None:
    return next(
        (s for s in list(seen) if s.path == path and s.started >= moment and s.outcome == 200),
        None,
    )


def _recovery(seen: list[Seen], paths: list[str], back: float) -> dict[str, float]:
    """Per path, seconds from the database's return to the end of the first 200 (<= 15 s)."""
    recovered: dict[str, float] = {}
    deadline = back + 15
    while time.monotonic() < deadline and len(recovered) < len(paths):
        for path in paths:
            first = _first_ok_after(seen, path, back)
            if first is not None:
                recovered.setdefault(path, first.ended - back)
        time.sleep(0.05)
    missing = [path for path in paths if path not in recovered]
    assert not missing, f"no 200 within 15 s of PostgreSQL's return on {missing}"
    return recovered


def _phase(seen: list[Seen], start: float, end: float) -> str:
    """What the clients saw between `start` and `end`: counts, and the span of the 503s."""
    inside = [s for s in seen if s.ended >= start and s.started <= end]
    refused = [s for s in inside if s.outcome == 503]
    span = f"{refused[-1].ended - refused[0].started:.2f} s" if refused else "none"
    ok = sum(s.outcome == 200 for s in inside)
    return f"{len(refused)} 503s (first to last {span}), {ok} 200s"


@pytest.mark.postgres
@needs_postgres
def test_postgresql_restart_and_outage_under_load_answer_503_and_recover_within_5_s(
    databases: DatabaseFactory,
    postgres_left_running: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = databases.fresh("seeded")
    paths = [READ_PATH, READ_PATH, READ_PATH, "/readyz"]
    seen: list[Seen] = []
    stop = threading.Event()
    at: dict[str, float] = {}
    with serving(url, tmp_path / "server.log", workers=2) as server:
        workers = children(server.process.pid)
        threads = [
            threading.Thread(target=_hammer, args=(server.url, path, seen, stop), daemon=True)
            for path in paths
        ]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1.0)
            # A fast restart: every connection in the pools dies at once.
            at["restart"] = time.monotonic()
            at["restarted"], at["restart_returned"] = _pg_ctl_until_ready("restart", "-m", "fast")
            after_restart = _recovery(seen, [READ_PATH, "/readyz"], at["restarted"])
            # An outage: the cluster crashes (no shutdown checkpoint) and stays down for 3 s.
            time.sleep(0.5)
            at["stop"] = time.monotonic()
            _pg_ctl("stop", "-m", "immediate")
            at["stopped"] = time.monotonic()
            time.sleep(3.0)
            at["start"] = time.monotonic()
            at["back"], at["started"] = _pg_ctl_until_ready("start")
            after_outage = _recovery(seen, [READ_PATH, "/readyz"], at["back"])
            time.sleep(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=10)
        alive = server.process.poll() is None
        workers_after = children(server.process.pid)
        log_tail = server.log_tail()

    outage = [s for s in seen if s.ended >= at["stop"] and s.started <= at["back"]]
    statuses = sorted({str(s.outcome) for s in seen})
    slowest = max(s.ended - s.started for s in seen)
    restart = _phase(seen, at["restart"], at["restarted"])
    down = _phase(seen, at["stop"], at["back"])
    _report(
        capsys,
        f"PostgreSQL fault, 2 workers, {len(paths)} clients: {len(seen)} requests, statuses "
        f"{statuses}, slowest {slowest:.2f} s.\n  restart -m fast: pg_isready again after "
        f"{at['restarted'] - at['restart']:.2f} s (the command returned after "
        f"{at['restart_returned'] - at['restart']:.2f} s), {restart}; first 200 "
        f"{after_restart[READ_PATH]:.2f} s (observations) / {after_restart['/readyz']:.2f} s "
        f"(readyz) after pg_isready.\n  stop -m immediate took "
        f"{at['stopped'] - at['stop']:.2f} s, down 3.0 s, then start: pg_isready after "
        f"{at['back'] - at['start']:.2f} s (the command returned after "
        f"{at['started'] - at['start']:.2f} s). Outage (stop to pg_isready) "
        f"{at['back'] - at['stop']:.2f} s: {down}; first 200 "
        f"{after_outage[READ_PATH]:.2f} s (observations) / {after_outage['/readyz']:.2f} s "
        "(readyz) after pg_isready",
    )
    failures = [s for s in seen if s.outcome not in (200, 503)]
    assert not failures, (
        f"{len(failures)} answers were neither 200 nor 503 (a timeout counts): "
        f"{sorted({str(s.outcome) for s in failures})}\n{log_tail}"
    )
    bad_503 = [
        s
        for s in seen
        if s.outcome == 503
        and not (s.problem and s.retry_after is not None and s.retry_after.isdigit())
    ]
    assert not bad_503, f"503s without problem+json and Retry-After: {bad_503[:3]}"
    assert all(int(s.retry_after or 0) >= 1 for s in seen if s.outcome == 503)
    for path in (READ_PATH, "/readyz"):
        assert any(s.outcome == 503 and s.path == path for s in outage), (
            f"no 503 on {path} while PostgreSQL was down: the outage was not observed"
        )
    assert max(after_restart.values()) <= 5, after_restart
    assert max(after_outage.values()) <= 5, after_outage
    # ...by itself: the same server and the same workers, none restarted.
    assert alive, f"the server exited:\n{log_tail}"
    assert workers and workers_after == workers, (workers, workers_after)


# -- 2. kill -9 in the middle of a bulk import --------------------------------------------------


def test_a_worker_killed_mid_import_leaves_all_of_it_or_none_and_the_database_serves(
    databases: DatabaseFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = databases.fresh("seeded")
    sqlite = make_url(url).get_backend_name() == "sqlite"
    headers = write_key(url, name="faults")
    body = _synthetic_csv()
    assert _synthetic_counts(url) == (0, 0)
    version_before = _data_version(url)
    with serving(url, tmp_path / "server.log", **ROW_LIMIT) as server:
        # One worker: uvicorn serves in the process it was started in, so that is the worker.
        assert children(server.process.pid) == set(), "serve --workers 1 forked a worker"
        outcome, thread = _post_in_background(server.url, body, headers)
        _wait_for(
            lambda: _write_in_progress(url) or not thread.is_alive(),
            timeout=30,
            what="the import to start writing",
        )
        assert thread.is_alive(), f"the import ended before its write was seen: {outcome}"
        wal = Path(f"{make_url(url).database}-wal")
        if sqlite:
            # Kill once the uncommitted transaction has spilled pages into the WAL (past the
            # page cache), so that recovery has uncommitted frames to throw away.
            wal_at_start = wal.stat().st_size
            _wait_for(
                lambda: wal.stat().st_size > wal_at_start + 500_000 or not thread.is_alive(),
                timeout=30,
                what="the import's pages to reach the WAL",
            )
        else:
            time.sleep(1.0)  # well inside the transaction (about 6 s on PostgreSQL)
        writing = _write_in_progress(url)
        assert writing, "the import finished before the kill: nothing was killed mid-write"
        wal_bytes = wal.stat().st_size if sqlite else None
        killed_at = time.monotonic()
        os.kill(server.process.pid, signal.SIGKILL)
        assert server.process.wait(timeout=10) == -signal.SIGKILL
        thread.join(timeout=30)
        assert not thread.is_alive()
    assert outcome.response is None or outcome.finished_at < killed_at, (
        "an answer came from a killed server"
    )
    if not sqlite:  # the killed server's backends roll back once they see it gone
        _wait_for(lambda: _pg_backends(url) == 0, timeout=15, what="the old backends to exit")
    observations, revisions = _synthetic_counts(url)
    version_after = _data_version(url)
    _report(
        capsys,
        f"kill -9 mid-import ({'SQLite' if sqlite else 'PostgreSQL'}): write in progress at the "
        f"kill: {writing}; WAL {wal_bytes} bytes; client saw "
        f"{outcome.response.status_code if outcome.response else type(outcome.error).__name__}; "
        f"afterwards {observations} observations, {revisions} revisions of {IMPORT_ROWS}; "
        f"data version {version_before} -> {version_after}",
    )
    assert observations in (0, IMPORT_ROWS), f"a partial import survived: {observations} rows"
    assert revisions == observations, (observations, revisions)
    assert (version_after == version_before) == (observations == 0)
    if outcome.response is not None:  # answered before the kill: then it must all be there
        assert outcome.response.status_code == 200 and observations == IMPORT_ROWS
    if sqlite:
        with sqlite3.connect(make_url(url).database or "") as connection:
            assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
    # A new server on the same database: ready, reads, and writes (no lock left behind).
    with serving(url, tmp_path / "server2.log") as server:
        assert httpx.get(f"{server.url}/readyz", timeout=5).status_code == 200
        read = httpx.get(f"{server.url}{READ_PATH}&year=2023", timeout=5)
        assert read.status_code == 200
        assert [row["year"] for row in read.json()["data"]] == [2023]
        written = httpx.put(
            f"{server.url}/api/v1/observations/job_fairs_held/320402/1949",
            json={"value": 3, "source": SOURCE, "note": "SYNTHETIC after the kill"}
            | SYNTHETIC_DERIVED,
            headers=headers,
            timeout=10,
        )
        assert written.status_code == 201, written.text


# -- 3. SIGTERM drains a request in flight --------------------------------------------------------


def test_sigterm_lets_an_import_in_flight_finish_and_the_server_exits_by_itself(
    databases: DatabaseFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = databases.fresh("seeded")
    headers = write_key(url, name="faults")
    body = _synthetic_csv()
    with serving(url, tmp_path / "server.log", **ROW_LIMIT) as server:
        outcome, thread = _post_in_background(server.url, body, headers)
        _wait_for(
            lambda: _write_in_progress(url) or not thread.is_alive(),
            timeout=30,
            what="the import to start writing",
        )
        assert thread.is_alive(), f"the import ended before its write was seen: {outcome}"
        terminated_at = time.monotonic()
        os.kill(server.process.pid, signal.SIGTERM)
        thread.join(timeout=60)
        assert not thread.is_alive(), "the import in flight got no answer within 60 s"
        try:
            returncode = server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server did not exit within 30 s of the answer:\n{server.log_tail()}")
        exited_at = time.monotonic()
        log_tail = server.log_tail(100_000)
    response = outcome.response
    _report(
        capsys,
        f"SIGTERM mid-import: answered "
        f"{response.status_code if response else type(outcome.error).__name__} "
        f"{outcome.finished_at - terminated_at:.2f} s after SIGTERM; server exited "
        f"{exited_at - terminated_at:.2f} s after SIGTERM with {returncode}",
    )
    assert response is not None, f"the import in flight was cut off: {outcome.error!r}"
    assert outcome.finished_at > terminated_at
    assert response.status_code == 200, response.text[:500]
    assert response.json()["summary"]["observations"]["created"] == IMPORT_ROWS
    # uvicorn re-raises the signal it caught once its graceful shutdown is done, so the status
    # is "killed by SIGTERM" (-15) rather than 0; the log shows the shutdown ran to its end.
    assert returncode in (0, -signal.SIGTERM), log_tail[-3000:]
    assert "Application shutdown complete" in log_tail, log_tail[-3000:]
    assert log_tail.index("Shutting down") < log_tail.index('"route":"/api/v1/imports"')
    assert _synthetic_counts(url) == (IMPORT_ROWS, IMPORT_ROWS)


# -- 4. a SQLite lock held past the busy timeout -------------------------------------------------


def test_a_sqlite_lock_held_past_the_busy_timeout_answers_503_with_retry_after(
    databases: DatabaseFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if databases.backend != "sqlite":
        pytest.skip("SQLite locking: this pass runs on PostgreSQL")
    url = databases.fresh("seeded")
    headers = write_key(url, name="faults")
    path = "/api/v1/observations/adaptive_training_trainees/320402/1990"
    body = {"value": 12, "source": SOURCE, "note": "SYNTHETIC locked"} | SYNTHETIC_DERIVED
    with serving(url, tmp_path / "server.log", STATSAPI_SQLITE_BUSY_TIMEOUT_MS="200") as server:
        blocker = sqlite3.connect(make_url(url).database or "", timeout=0)
        blocker.isolation_level = None
        blocker.execute("BEGIN IMMEDIATE")  # the write lock, held
        try:
            started = time.monotonic()
            try:
                refused = httpx.put(f"{server.url}{path}", json=body, headers=headers, timeout=10)
            except httpx.TimeoutException:
                pytest.fail("the PUT hung for 10 s behind the lock")
            waited = time.monotonic() - started
            # Reads never wait for a writer; and the refused write left nothing.
            read = httpx.get(f"{server.url}{READ_PATH}", timeout=5)
            absent = httpx.get(f"{server.url}{path}", timeout=5)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        accepted = httpx.put(f"{server.url}{path}", json=body, headers=headers, timeout=10)
        stored = httpx.get(f"{server.url}{path}", timeout=5)
    _report(
        capsys,
        f"SQLite lock past a 200 ms busy timeout: {refused.status_code} "
        f"({refused.headers.get('content-type')}, Retry-After "
        f"{refused.headers.get('retry-after')}) after {waited:.2f} s; after the release "
        f"{accepted.status_code}",
    )
    assert refused.status_code == 503, refused.text[:500]
    assert refused.headers["content-type"].startswith(PROBLEM)
    assert int(refused.headers["retry-after"]) >= 1
    assert json.loads(refused.text)["status"] == 503
    assert waited < 2.0
    assert read.status_code == 200
    assert absent.status_code == 404
    assert accepted.status_code == 201, accepted.text[:500]
    assert stored.status_code == 200 and stored.json()["value"] == 12
