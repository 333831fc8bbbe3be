"""Microseconds per request inside the app, with no network and no load generator.

    python bench/inprocess.py [--database seed|synthetic] [--profile TARGET]

Calls the ASGI app directly, as uvicorn would, a few thousand times per target (the same
targets as bench/run.py) and prints the mean time per request: what the app itself costs, apart
from HTTP parsing and the CPU that wrk takes from it. `--profile TARGET` adds a cProfile of that
target, sorted by cumulative time (cProfile inflates every call; compare shares, not totals).
BENCH_APP_ROOT=/other/checkout measures another version of the app.
"""

import argparse
import asyncio
import cProfile
import logging
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
# BENCH_APP_ROOT=/other/checkout measures that checkout's app (as bench/run.py does).
sys.path.insert(0, os.environ.get("BENCH_APP_ROOT") or str(HERE.parent))

from bench.targets import CODES, TARGETS, Target, app_path  # noqa: E402


def _scope(path_and_query: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    path, _, query = path_and_query.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


async def _call(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def _scope_for(app: Any, target: Target, database: str) -> dict[str, Any]:
    path = app_path(target, CODES[database])
    if not target.revalidate:
        return _scope(path, [])
    first = await _call(app, _scope(path, []))
    etag = dict(first[0]["headers"])[b"etag"]
    return _scope(path, [(b"if-none-match", etag)])


async def main(args: argparse.Namespace) -> None:
    from app.main import app

    for handler in logging.getLogger("statsapi").handlers:  # logged as in production, unseen
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    for target in TARGETS:
        scope = await _scope_for(app, target, args.database)
        for _ in range(200):
            await _call(app, scope)
        started = time.perf_counter()
        for _ in range(args.requests):
            await _call(app, scope)
        micros = (time.perf_counter() - started) / args.requests * 1e6
        print(f"{target.name:12} {micros:8.1f} us per request")
    if args.profile:
        target = next(t for t in TARGETS if t.name == args.profile)
        scope = await _scope_for(app, target, args.database)
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.requests):
            await _call(app, scope)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="seed", choices=["seed", "synthetic"])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", default=None)
    arguments = parser.parse_args()
    data = HERE / ".data" / f"{arguments.database}.sqlite3"
    if not data.exists():
        raise SystemExit(f"{data} is missing: run `make bench` (or bench/run.py --quick) first")
    os.environ["DATABASE_URL"] = f"sqlite:///{data}"
    asyncio.run(main(arguments))
