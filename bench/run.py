"""The benchmark: the app against itself (a trivial endpoint) and against Datasette, with wrk.

    python bench/run.py [--duration 5] [--runs 3] [--quick] [--database-url POSTGRES_URL]

`make bench` runs it. It builds two databases under bench/.data/ (the real seed, and 1,000,000
SYNTHETIC observations from bench/generate.py, kept between runs), starts `statsapi serve` on
each (one worker, then two) and Datasette over the same SQLite files, and loads every target
(bench/targets.py) with wrk on loopback: `-t2 -c32`, targets alternating, `--runs` rounds.
With a PostgreSQL URL (the option or DATABASE_URL) the app runs on PostgreSQL too (Datasette
reads only SQLite). It prints one table of medians (req/s, p50, p99, peak RSS per worker, ratio
to the trivial endpoint of the same server and round, ratio to Datasette) and the issue's targets
met or not, and writes both to bench/out/ (results.md, results.json).

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
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

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
BACKENDS = ("sqlite", "postgresql")


@dataclass
class Measure:
    database: str  # seed | synthetic
    backend: str  # sqlite | postgresql
    server: str  # "app, 1 worker" | "app, 2 workers" | datasette
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
    return subprocess.Popen(
        command,
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
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
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
    servers: list[tuple[Server, str, str]], backend: str, args: argparse.Namespace
) -> list[Measure]:
    """Load every target of every (server, database) in `servers`, alternating, args.runs times."""
    plan = []
    for server, database, prefix in servers:
        codes = CODES[database]
        for target in TARGETS:
            if args.targets and target.name not in (*args.targets, TRIVIAL):
                continue
            if server.name == PEER:
                if target.peer is None and target.name != TRIVIAL:
                    continue
                path = "/-/versions.json" if target.name == TRIVIAL else ""
                path = path or peer_path(database, target.peer or "", codes)
            else:
                path = prefix + app_path(target, codes)
            headers, rows = prepare(server, path, target)
            measure = Measure(database, backend, server.name, target.name, path, rows)
            plan.append((server, measure, headers))
    load_round(plan, args, record=False)  # warm up: caches, connections, imports
    for _ in range(args.runs):
        load_round(plan, args, record=True)
    return [measure for _server, measure, _headers in plan]


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
    return Server(f"app, {workers} worker{'s' if workers > 1 else ''}", base, process)


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
    OUT.mkdir(exist_ok=True)
    measures: list[Measure] = []
    sqlite = sqlite_databases()
    running: list[Server] = []
    try:
        if args.postgres_only:
            sqlite = {}
        peer = start_datasette(sqlite) if sqlite else None
        running += [peer] if peer else []
        for workers in args.workers if peer else []:
            apps = {name: start_app(url, workers) for name, url in sqlite.items()}
            running += apps.values()
            servers = [(apps[name], name, "") for name in sqlite]
            if workers == 1 and peer:
                servers += [(peer, name, "") for name in sqlite if name != "small"]
            print(f"SQLite, {workers} worker(s):", flush=True)
            measures += measure_servers(servers, "sqlite", args)
            for app in apps.values():
                stop(app.process)
        if peer:
            stop(peer.process)
        if args.database_url:
            postgres = postgres_databases(args.database_url)
            for workers in args.workers:
                apps = {name: start_app(url, workers) for name, url in postgres.items()}
                running += apps.values()
                print(f"PostgreSQL, {workers} worker(s):", flush=True)
                measures += measure_servers(
                    [(apps[name], name, "") for name in postgres], "postgresql", args
                )
                for app in apps.values():
                    stop(app.process)
    finally:
        for server in running:
            stop(server.process)
    return measures


# --- the report ---------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratios(measures: list[Measure]) -> dict[int, dict[str, float | None]]:
    """Per measure: req/s over its server's trivial endpoint, each round's ratio then the median;
    and over Datasette's answer to the same question on the same database (1 worker)."""
    by_key: dict[tuple[Any, ...], Measure] = {}
    for m in measures:
        by_key[(*m.key, m.target)] = m
    result: dict[int, dict[str, float | None]] = {}
    for m in measures:
        trivial = by_key.get((*m.key, TRIVIAL))
        vs_trivial = None
        if trivial and trivial.rps:
            vs_trivial = median([a / b for a, b in zip(m.rps, trivial.rps, strict=True)])
        vs_peer = None
        peer = by_key.get(("sqlite", m.database, PEER, m.target))
        one_worker = m.server.startswith("app, 1 ") and m.backend == "sqlite"
        if one_worker and peer and peer.rps:
            vs_peer = median([a / b for a, b in zip(m.rps, peer.rps, strict=True)])
        result[id(m)] = {"vs_trivial": vs_trivial, "vs_datasette": vs_peer}
    return result


def _fmt(value: float | None, pattern: str) -> str:
    return "" if value is None else pattern.format(value)


def table(measures: list[Measure]) -> str:
    rel = ratios(measures)
    lines = [
        "| backend | database | server | target | rows | req/s | p50 ms | p99 ms | peak RSS MB"
        " | vs trivial | vs Datasette | errors | > 2 s |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in measures:
        lines.append(
            f"| {m.backend} | {m.database} | {m.server} | {m.target} | {m.rows}"
            f" | {median(m.rps):,.0f} | {median(m.p50_ms):.1f} | {median(m.p99_ms):.1f}"
            f" | {m.rss_mb:.0f} | {_fmt(rel[id(m)]['vs_trivial'], '{:.2f}')}"
            f" | {_fmt(rel[id(m)]['vs_datasette'], '{:.1f}x')} | {m.errors} | {m.timeouts} |"
        )
    return "\n".join(lines)


# The ratio targets: (target, ratio, at least, label).
RATIO_TARGETS = [
    ("filtered", "vs_trivial", 0.45, "filtered observations >= 45% of trivial"),
    ("filtered", "vs_datasette", 3.0, "filtered observations >= 3x Datasette"),
    ("comparisons", "vs_datasette", 2.5, "comparisons >= 2.5x Datasette"),
    ("revalidate", "vs_trivial", 0.8, "304 revalidation >= 80% of trivial"),
]


def verdicts(measures: list[Measure]) -> list[tuple[str, str, bool]]:
    """The issue's targets (one worker, SQLite; PostgreSQL for p99 and RSS too)."""
    rel = ratios(measures)
    one = {(m.backend, m.database, m.target): m for m in measures if m.server == "app, 1 worker"}
    found: list[tuple[str, str, bool]] = []
    for database in ("seed", "synthetic"):
        for target, ratio, least, label in RATIO_TARGETS:
            measure = one.get(("sqlite", database, target))
            value = rel[id(measure)][ratio] if measure else None
            if value is not None:
                shown = f"{value:.0%}" if ratio == "vs_trivial" else f"{value:.1f}x"
                found.append((f"{label} ({database})", shown, value >= least))
    bases = [("seed", "seed"), ("small", "10k, same answers")]
    for (backend, (base, label)), target in product(product(BACKENDS, bases), TARGETS):
        before = one.get((backend, base, target.name))
        after = one.get((backend, "synthetic", target.name))
        if target.name == TRIVIAL or not before or not after:
            continue
        p99_before, p99_after = median(before.p99_ms), median(after.p99_ms)
        found.append(
            (
                f"p99 at 1M <= 1.5x {label}: {target.name} ({backend})",
                f"{p99_after / p99_before:.2f}x ({p99_before:.1f} -> {p99_after:.1f} ms)",
                p99_after / p99_before <= 1.5,
            )
        )
    apps = [m for m in measures if m.server != PEER]
    if apps:
        peak = max(m.rss_mb for m in apps)
        found.append(("RSS per worker <= 120 MB", f"{peak:.0f} MB", peak <= 120))
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
    parser.add_argument("--duration", type=float, default=5, help="seconds per wrk run")
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
