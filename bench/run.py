"""The benchmark: the app against the framework's own ceiling and against Datasette, with wrk.

    python bench/run.py [--duration 5] [--runs 3] [--quick] [--database-url POSTGRES_URL]

`make bench` runs it. It builds two databases under bench/.data/ (the real seed, and 1,000,000
SYNTHETIC observations from bench/generate.py, kept between runs), starts `statsapi serve` on
each (one worker, then two), a bare FastAPI app on the same uvicorn (bench/bare.py: the
ceiling), and Datasette over the same SQLite files, and loads every target (bench/targets.py)
with wrk on loopback: `-t2 -c32`, targets alternating, `--runs` rounds. With a PostgreSQL URL
(the option or DATABASE_URL) the app also runs on PostgreSQL, in the same rounds (Datasette
reads only SQLite). It prints one table of medians (req/s, p50, p99, peak RSS per worker, ratio
to the bare app and, on PostgreSQL, to the same target on SQLite, in the same round; ratio to
Datasette) and the targets met or not, and writes both to bench/out/ (results.md,
results.json).

wrk shares the two cores with the server: absolute numbers drift between runs, ratios from the
same round are what to compare (../shared/PERFORMANCE.md).
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from itertools import product
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from app.cli import KEEP_ALIVE_TIMEOUT_S  # noqa: E402
from app.config import get_settings  # noqa: E402
from bench.targets import (  # noqa: E402
    CODES,
    TARGETS,
    TRIVIAL,
    Target,
    app_path,
    datasette_metadata,
    peer_path,
)

DATA = HERE / ".data"
OUT = HERE / "out"
STATSAPI = ROOT / ".venv" / "bin" / "statsapi"
PYTHON = ROOT / ".venv" / "bin" / "python"
DATASETTE = ROOT / ".venv-bench" / "bin" / "datasette"
# SYNTHETIC databases: name -> indicators (x 50 regions x 10 years). "small" answers every
# target with the same rows as "synthetic" (category 1 and indicator 1 exist in both), so the two
# compare data growth alone; "seed" vs "synthetic" is the comparison.
SYNTHETIC = {"synthetic": 2000, "small": 20}
PEER = "datasette"
BARE = "bare FastAPI"  # bench/bare.py: one route, same uvicorn (the ceiling)
BACKENDS = ("sqlite", "postgresql")


@dataclass
class Measure:
    database: str  # seed | synthetic | small ("-" for the bare app)
    backend: str  # sqlite | postgresql ("-" for the bare app)
    server: str  # "app, 1 worker" | "app, 2 workers" | datasette | "bare FastAPI, 1 worker"...
    target: str
    path: str
    rows: int
    rps: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    rss_mb: float = 0.0
    errors: int = 0  # non-2xx/3xx answers, refused or broken connections
    timeouts: int = 0  # answers slower than wrk's 2 s timeout

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.backend, self.database, self.server)


# --- processes ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(base: str, path: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server for {base} exited with {process.returncode}")
        try:
            if httpx.get(base + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server for {base} did not answer {path} in 120 s")


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # In the folder of the app it serves: uvicorn's worker processes put their working folder
    # first on sys.path, so from this checkout they would import this app, whatever
    # BENCH_APP_ROOT says.
    return subprocess.Popen(
        command,
        cwd=env.get("PYTHONPATH", ROOT),
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # the app's JSON access log: written, as in production
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with_children = task / "children"
        if with_children.exists():
            found += [int(child) for child in with_children.read_text().split()]
    return found


def worker_pids(process: subprocess.Popen[bytes]) -> list[int]:
    """The processes that serve requests: the server itself, or its workers when it has some.

    uvicorn with --workers N supervises N children (plus multiprocessing's resource tracker,
    which serves nothing and is left out by name)."""
    children = [
        pid
        for pid in _children(process.pid)
        if "resource_tracker" not in _cmdline(pid) and "semaphore_tracker" not in _cmdline(pid)
    ]
    return children or [process.pid]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class PeakRSS:
    """Samples the RSS of each serving process while a load runs; keeps the largest."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max([self.peak, *(rss_mb(pid) for pid in self.pids)])
            self._stop.wait(0.25)

    def __enter__(self) -> "PeakRSS":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- wrk ----------------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS_MS[unit]


def wrk(url: str, *, seconds: float, headers: dict[str, str], threads: int, connections: int):
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    output = subprocess.run(
        [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = int(bad.group(1)) if bad else 0
    # "Socket errors: connect 0, read 0, write 0, timeout 12": a timeout is an answer slower
    # than wrk's 2 s, counted apart from refused or broken connections.
    socket = dict(re.findall(r"(connect|read|write|timeout) (\d+)", output))
    timeouts = int(socket.pop("timeout", 0))
    errors += sum(int(n) for n in socket.values())
    return rps, p50, p99, errors, timeouts


# --- databases ----------------------------------------------------------------------------


def run_quietly(command: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(command, env={**os.environ, **(env or {})}, check=True, capture_output=True)


def build_seed(url: str) -> None:
    env = {"DATABASE_URL": url}
    run_quietly([str(STATSAPI), "migrate"], env)
    run_quietly([str(STATSAPI), "seed"], env)


def synthetic_ready(url: str, indicators: int) -> bool:
    """Whether `url` holds that synthetic database whole already (1M rows take a minute)."""
    from sqlalchemy import func, select

    from app.db import build_engine
    from app.models import observation_table

    engine = build_engine(url)
    try:
        with engine.connect() as connection:
            count = connection.execute(select(func.count()).select_from(observation_table))
            return count.scalar() == indicators * 50 * 10
    except Exception:  # no such table, no such database: make it
        return False
    finally:
        engine.dispose()


def make_synthetic(url: str, indicators: int) -> None:
    print(f"making {indicators * 500:,} SYNTHETIC observations (once; kept)", flush=True)
    command = [str(PYTHON), str(HERE / "generate.py"), url, "--indicators", str(indicators)]
    subprocess.run(command, check=True)


def checkpoint(path: Path) -> None:
    """Move the WAL into the main file: Datasette opens it immutable, which ignores the WAL."""
    import sqlite3

    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()


def sqlite_databases() -> dict[str, str]:
    DATA.mkdir(exist_ok=True)
    seed = DATA / "seed.sqlite3"
    for stale in DATA.glob("seed.sqlite3*"):
        stale.unlink()
    build_seed(f"sqlite:///{seed}")
    urls = {"seed": f"sqlite:///{seed}"}
    for name, indicators in SYNTHETIC.items():
        path = DATA / f"{name}.sqlite3"
        urls[name] = f"sqlite:///{path}"
        if not synthetic_ready(urls[name], indicators):
            for stale in DATA.glob(f"{name}.sqlite3*"):
                stale.unlink()
            make_synthetic(urls[name], indicators)
        checkpoint(path)
    checkpoint(seed)
    return urls


def postgres_databases(maintenance_url: str) -> dict[str, str]:
    from sqlalchemy import create_engine, make_url, text

    from app.db import sqlalchemy_url

    admin = create_engine(sqlalchemy_url(maintenance_url), isolation_level="AUTOCOMMIT")
    urls = {}
    with admin.connect() as connection:
        for name in ("seed", "synthetic"):
            database = f"statsapi_bench_{name}"
            url = make_url(maintenance_url).set(database=database)
            urls[name] = url.render_as_string(hide_password=False)
            if name == "synthetic" and synthetic_ready(urls[name], SYNTHETIC[name]):
                continue
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    build_seed(urls["seed"])
    if not synthetic_ready(urls["synthetic"], SYNTHETIC["synthetic"]):
        make_synthetic(urls["synthetic"], SYNTHETIC["synthetic"])
    return urls


# --- measuring ----------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    base: str
    process: subprocess.Popen[bytes]


def rows_in(response: httpx.Response) -> int:
    if response.status_code == 304:
        return 0
    if "csv" in response.headers.get("content-type", ""):
        return max(0, response.text.count("\n") - 1)
    body = response.json()
    if isinstance(body, dict) and "series" in body:  # an indicator's series: its points
        return sum(len(series["points"]) for series in body["series"])
    if isinstance(body, dict) and "data" in body:
        return len(body["data"])
    if isinstance(body, dict) and "rows" in body:
        return len(body["rows"])
    return 1


def prepare(server: Server, path: str, target: Target) -> tuple[dict[str, str], int]:
    """Headers to send and the rows in one answer; fails loudly on a wrong answer."""
    first = httpx.get(server.base + path, timeout=30)
    if first.status_code != 200:
        raise SystemExit(f"{server.name} {path}: {first.status_code} {first.text[:300]}")
    if not target.revalidate:
        return {}, rows_in(first)
    headers = {"If-None-Match": first.headers["etag"]}
    again = httpx.get(server.base + path, headers=headers, timeout=30)
    if again.status_code != 304:
        raise SystemExit(f"{server.name} {path}: expected 304, got {again.status_code}")
    return headers, 0


def drain(server: Server) -> None:
    """Wait until the requests wrk left queued are answered, so the next run starts clean."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        started = time.monotonic()
        httpx.get(server.base + ("/-/versions.json" if server.name == PEER else "/healthz"))
        if time.monotonic() - started < 0.05:
            return
        time.sleep(0.2)


def load_round(
    plan: list[tuple[Server, Measure, dict[str, str]]], args: argparse.Namespace, record: bool
) -> None:
    for server, measure, headers in plan:
        with PeakRSS(worker_pids(server.process)) as peak:
            rps, p50, p99, errors, timeouts = wrk(
                server.base + measure.path,
                seconds=args.duration if record else 1,
                headers=headers,
                threads=args.threads,
                connections=args.connections,
            )
        measure.rss_mb = max(measure.rss_mb, peak.peak)
        drain(server)
        if record:
            measure.rps.append(rps)
            measure.p50_ms.append(p50)
            measure.p99_ms.append(p99)
            measure.errors += errors
            measure.timeouts += timeouts
            print(
                f"  {measure.database:9} {measure.server:15} {measure.target:12}"
                f" {rps:8.0f} req/s  p99 {p99:7.1f} ms",
                flush=True,
            )


def measure_servers(
    servers: list[tuple[Server, str, str]], args: argparse.Namespace
) -> list[Measure]:
    """Load every target of every (server, database, backend) in `servers`, alternating,
    args.runs times: every ratio compares measures taken in the same rounds."""
    plan = []
    for server, database, backend in servers:
        if server.name.startswith(BARE):
            targets = [(TRIVIAL, "/", Target(TRIVIAL, "bare", "/"))]
        else:
            codes = CODES[database]
            targets = []
            for target in TARGETS:
                if args.targets and target.name not in (*args.targets, TRIVIAL):
                    continue
                if server.name == PEER:
                    if target.peer is None and target.name != TRIVIAL:
                        continue
                    path = "/-/versions.json" if target.name == TRIVIAL else ""
                    path = path or peer_path(database, target.peer or "", codes)
                else:
                    path = app_path(target, codes)
                targets.append((target.name, path, target))
        for name, path, target in targets:
            headers, rows = prepare(server, path, target)
            measure = Measure(database, backend, server.name, name, path, rows)
            plan.append((server, measure, headers))
    load_round(plan, args, record=False)  # warm up: caches, connections, imports
    for _ in range(args.runs):
        load_round(plan, args, record=True)
    return [measure for _server, measure, _headers in plan]


def _workers(workers: int) -> str:
    return f"{workers} worker{'s' if workers > 1 else ''}"


def start_app(url: str, workers: int) -> Server:
    """`statsapi serve` on `url`; BENCH_APP_ROOT=/other/checkout serves that checkout's app
    instead (same harness, same databases: how docs/benchmarks.md measured "before")."""
    port = free_port()
    env = {"DATABASE_URL": url}
    if os.environ.get("BENCH_APP_ROOT"):
        env["PYTHONPATH"] = os.environ["BENCH_APP_ROOT"]
    process = start([str(STATSAPI), "serve", "--port", str(port), "--workers", str(workers)], env)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base, "/readyz", process)
    return Server(f"app, {_workers(workers)}", base, process)


def start_bare(workers: int) -> Server:
    """bench/bare.py on uvicorn with what `statsapi serve` passes it (app/cli.py): the same
    loop, HTTP parser, connection limit and keep-alive, no access log, no server header."""
    port = free_port()
    command = [
        str(PYTHON), "-m", "uvicorn", "bench.bare:app", "--port", str(port),
        "--workers", str(workers), "--no-access-log", "--no-server-header",
        "--limit-concurrency", str(get_settings().limit_concurrency),
        "--timeout-keep-alive", str(KEEP_ALIVE_TIMEOUT_S),
    ]  # fmt: skip
    process = start(command, {"PYTHONPATH": str(ROOT)})
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base, "/", process)
    return Server(f"{BARE}, {_workers(workers)}", base, process)


def start_datasette(files: dict[str, str]) -> Server:
    metadata = OUT / "datasette-metadata.json"
    metadata.write_text(json.dumps(datasette_metadata(list(files)), indent=2), encoding="utf-8")
    port = free_port()
    command = [str(DATASETTE), "serve", "--port", str(port), "--metadata", str(metadata)]
    for path in files.values():
        command += ["-i", path.removeprefix("sqlite:///")]  # immutable: Datasette's fastest mode
    command += ["--setting", "sql_time_limit_ms", "10000"]  # never a timeout answer counted
    process = start(command, {})
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base, "/-/versions.json", process)
    return Server(PEER, base, process)


def run(args: argparse.Namespace) -> list[Measure]:
    """For each worker count: the bare app, the app on each SQLite database (and on each
    PostgreSQL one), and Datasette with one worker, all loaded in the same rounds."""
    OUT.mkdir(exist_ok=True)
    measures: list[Measure] = []
    sqlite = {} if args.postgres_only else sqlite_databases()
    postgres = postgres_databases(args.database_url) if args.database_url else {}
    running: list[Server] = []
    try:
        for workers in args.workers:
            servers: list[tuple[Server, str, str]] = []
            bare = start_bare(workers)
            running.append(bare)
            servers.append((bare, "-", "-"))
            for backend, urls in (("sqlite", sqlite), ("postgresql", postgres)):
                for name, url in urls.items():
                    if name == "small" and workers > 1:
                        continue  # the data-growth comparison is a one-worker one
                    app = start_app(url, workers)
                    running.append(app)
                    servers.append((app, name, backend))
            if workers == 1 and sqlite:
                peer = start_datasette({k: v for k, v in sqlite.items() if k != "small"})
                running.append(peer)
                servers += [(peer, name, "sqlite") for name in sqlite if name != "small"]
            print(f"{_workers(workers)}:", flush=True)
            measures += measure_servers(servers, args)
            for server in running:
                stop(server.process)
            running.clear()
    finally:
        for server in running:
            stop(server.process)
    return measures


# --- the report ---------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _per_round(measure: Measure, base: Measure | None) -> float | None:
    """Each round's req/s over `base`'s in the same round, then the median."""
    if base is None or not base.rps or not measure.rps:
        return None
    return median([a / b for a, b in zip(measure.rps, base.rps, strict=True)])


def ratios(measures: list[Measure]) -> dict[int, dict[str, float | None]]:
    """Per measure, each a median of per-round ratios: req/s over the bare FastAPI app with as
    many workers; a PostgreSQL measure over the same target and database on SQLite with as
    many workers; one SQLite worker over Datasette's answer to the same question on the same
    file."""
    by_key = {(*m.key, m.target): m for m in measures}
    result: dict[int, dict[str, float | None]] = {}
    for m in measures:
        workers = m.server.partition(", ")[2]
        bare = by_key.get(("-", "-", f"{BARE}, {workers}", TRIVIAL))
        sqlite = by_key.get(("sqlite", m.database, m.server, m.target))
        peer = by_key.get(("sqlite", m.database, PEER, m.target))
        one_sqlite_worker = m.server == "app, 1 worker" and m.backend == "sqlite"
        result[id(m)] = {
            "vs_bare": _per_round(m, bare) if m.server != PEER else None,
            "vs_sqlite": _per_round(m, sqlite) if m.backend == "postgresql" else None,
            "vs_datasette": _per_round(m, peer) if one_sqlite_worker else None,
        }
    return result


def _fmt(value: float | None, pattern: str) -> str:
    return "" if value is None else pattern.format(value)


def table(measures: list[Measure]) -> str:
    rel = ratios(measures)
    lines = [
        "| backend | database | server | target | rows | req/s | p50 ms | p99 ms | peak RSS MB"
        " | vs bare | vs SQLite | vs Datasette | errors | > 2 s |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in measures:
        ratio = rel[id(m)]
        lines.append(
            f"| {m.backend} | {m.database} | {m.server} | {m.target} | {m.rows}"
            f" | {median(m.rps):,.0f} | {median(m.p50_ms):.1f} | {median(m.p99_ms):.1f}"
            f" | {m.rss_mb:.0f} | {_fmt(ratio['vs_bare'], '{:.2f}')}"
            f" | {_fmt(ratio['vs_sqlite'], '{:.2f}')} | {_fmt(ratio['vs_datasette'], '{:.1f}x')}"
            f" | {m.errors} | {m.timeouts} |"
        )
    return "\n".join(lines)


# Issue 16's shares of the bare FastAPI ceiling (one worker, SQLite, the seed): (target, at
# least, label).
BARE_TARGETS = [
    (TRIVIAL, 0.75, "/healthz (every middleware) >= 0.75 of bare FastAPI"),
    ("filtered", 0.40, "filtered observations >= 0.40 of bare FastAPI"),
    ("revalidate", 0.70, "304 revalidation >= 0.70 of bare FastAPI"),
]
PG_SHARE = 0.8  # every PostgreSQL read target, of the same on SQLite
COMPARISONS_P99_GROWTH = 4.0  # comparisons at 1M rows, p99 over the seed's
COMPARISONS_VS_DATASETTE = 2.0
RSS_LIMIT_MB = 120


def verdicts(measures: list[Measure]) -> list[tuple[str, str, bool]]:
    """The targets of issue 16 (and the data-growth bound of an earlier one), met or not."""
    rel = ratios(measures)
    at = {(m.backend, m.database, m.server, m.target): m for m in measures}
    one = "app, 1 worker"
    found: list[tuple[str, str, bool]] = []
    for target, least, label in BARE_TARGETS:
        measure = at.get(("sqlite", "seed", one, target))
        value = rel[id(measure)]["vs_bare"] if measure else None
        if value is not None:
            found.append((label, f"{value:.2f}", value >= least))
    for m in measures:
        share = rel[id(m)]["vs_sqlite"]
        if share is not None and m.target != TRIVIAL and m.database != "small":
            label = f"PostgreSQL >= {PG_SHARE} of SQLite: {m.target} ({m.database}, {m.server})"
            found.append((label, f"{share:.2f}", share >= PG_SHARE))
    for backend in BACKENDS:
        seed = at.get((backend, "seed", one, "comparisons"))
        big = at.get((backend, "synthetic", one, "comparisons"))
        if not seed or not big:
            continue
        found.append(
            (
                f"comparisons at 1M, 32 connections: no answer > 2 s ({backend})",
                f"{big.timeouts} over 2 s",
                big.timeouts == 0,
            )
        )
        growth = median(big.p99_ms) / median(seed.p99_ms)
        found.append(
            (
                f"comparisons p99 at 1M <= {COMPARISONS_P99_GROWTH:g}x the seed's ({backend})",
                f"{growth:.2f}x ({median(seed.p99_ms):.1f} -> {median(big.p99_ms):.1f} ms)",
                growth <= COMPARISONS_P99_GROWTH,
            )
        )
        peer = rel[id(big)]["vs_datasette"]
        if peer is not None:
            found.append(
                (
                    f"comparisons at 1M >= {COMPARISONS_VS_DATASETTE:g}x Datasette",
                    f"{peer:.1f}x",
                    peer >= COMPARISONS_VS_DATASETTE,
                )
            )
    # An earlier issue's bound: a 1M-row database answers as a 10k one does (same rows).
    for backend, target in product(BACKENDS, TARGETS):
        before = at.get((backend, "small", one, target.name))
        after = at.get((backend, "synthetic", one, target.name))
        if target.name == TRIVIAL or not before or not after:
            continue
        p99_before, p99_after = median(before.p99_ms), median(after.p99_ms)
        found.append(
            (
                f"p99 at 1M <= 1.5x at 10k (same answers): {target.name} ({backend})",
                f"{p99_after / p99_before:.2f}x ({p99_before:.1f} -> {p99_after:.1f} ms)",
                p99_after / p99_before <= 1.5,
            )
        )
    for backend in BACKENDS:
        apps = [m for m in measures if m.backend == backend and m.server.startswith("app")]
        if apps:
            peak = max(m.rss_mb for m in apps)
            found.append(
                (f"RSS per worker <= {RSS_LIMIT_MB} MB ({backend})", f"{peak:.0f} MB",
                 peak <= RSS_LIMIT_MB)
            )  # fmt: skip
    errors = sum(m.errors for m in measures)
    found.append(("no error answers under load", str(errors), errors == 0))
    return found


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    gigabytes = int(memory) // 1024 // 1024
    return f"{os.cpu_count()} cores ({cpu}), {gigabytes} GB RAM, Python {sys.version.split()[0]}"


def report(measures: list[Measure], args: argparse.Namespace) -> str:
    lines = [
        f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s, {args.runs} rounds,"
        f" medians; {machine()}",
        "",
        table(measures),
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    for name, value, met in verdicts(measures):
        lines.append(f"| {name} | {value} | {'yes' if met else 'NO'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=4, help="seconds per wrk run")
    parser.add_argument("--runs", type=int, default=3, help="rounds over every target")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--postgres-only", action="store_true", help="skip the SQLite runs")
    parser.add_argument("--targets", nargs="+", help="only these (and the trivial endpoint)")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s, one worker")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL") or None,
        help="a PostgreSQL server (maintenance database URL) to measure as well",
    )
    args = parser.parse_args()
    if args.quick:
        args.duration, args.runs, args.workers = 2, 1, [1]
    if args.database_url and not args.database_url.startswith("postgres"):
        args.database_url = None  # the SQLite runs use their own files
    for tool, hint in (
        (shutil.which("wrk"), "apt-get install wrk"),
        (DATASETTE.exists(), "make bench"),
    ):
        if not tool:
            raise SystemExit(f"missing a benchmark tool: {hint}")
    measures = run(args)
    text = report(measures, args)
    print()
    print(text)
    (OUT / "results.md").write_text(text + "\n", encoding="utf-8")
    raw = [asdict(m) | {"path": m.path} for m in measures]
    (OUT / "results.json").write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
