"""Load check: 64 users for 30 s against `statsapi serve --workers 2`, then an audit.

    python checks/load.py [--database-url URL] [--users 64] [--seconds 30] [--workers 2]

Without --database-url it uses a fresh SQLite file; with a PostgreSQL URL it creates a fresh
database on that server and drops it afterwards. Passes (exit 0) only with zero 5xx answers,
every acknowledged write found in the revision history, and, on SQLite, `PRAGMA integrity_check`
answering ok. Loopback only; the server and locust are stopped whatever happens.
"""

import argparse
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.auth import Scope, create_key  # noqa: E402
from app.db import build_engine, sqlalchemy_url  # noqa: E402
from app.models import indicator_table, region_table, revision_table  # noqa: E402

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fresh_database(url: str | None, workdir: Path) -> tuple[str, str | None]:
    """(URL of a new empty database, name to drop afterwards on PostgreSQL)."""
    if not url:
        return f"sqlite:///{workdir / 'load.sqlite3'}", None
    name = f"statsapi_load_{uuid.uuid4().hex[:8]}"
    admin = create_engine(sqlalchemy_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    fresh = make_url(sqlalchemy_url(url)).set(database=name)
    return fresh.render_as_string(hide_password=False), name


def _drop(url: str, name: str) -> None:
    admin = create_engine(sqlalchemy_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _statsapi(*args: str, env: dict[str, str]) -> None:
    subprocess.run([str(BIN / "statsapi"), *args], env=env, check=True, timeout=120)


def _audit(database_url: str, ack_file: Path) -> dict[str, int]:
    acks = (
        [line.split("\t") for line in ack_file.read_text().splitlines()]
        if ack_file.exists()
        else []
    )
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
            .where(revision_table.c.recorded_by == "load")
        ).all()
    engine.dispose()
    by_revision = {(f"{i}/{r}/{y}", rev): value for i, r, y, rev, value in rows}
    values = {(f"{i}/{r}/{y}", value) for i, r, y, _, value in rows}
    lost = 0
    for kind, path, value, revision in acks:
        key = path.removeprefix("/api/v1/observations/")
        if kind == "PUT":
            found = by_revision.get((key, int(revision))) == Decimal(value)
        else:
            found = (key, Decimal(value)) in values
        lost += not found
    return {"writes_acknowledged": len(acks), "revisions_written": len(rows), "lost": lost}


def _locust_totals(prefix: Path) -> dict[str, float]:
    with open(f"{prefix}_stats.csv", newline="") as stats:
        total = next(row for row in csv.DictReader(stats) if row["Name"] == "Aggregated")
    server_errors = 0
    failures_path = Path(f"{prefix}_failures.csv")
    if failures_path.exists():
        with open(failures_path, newline="") as failures:
            for row in csv.DictReader(failures):
                if row["Error"].strip()[:1] == "5":
                    server_errors += int(row["Occurrences"])
    return {
        "requests": int(total["Request Count"]),
        "failures": int(total["Failure Count"]),
        "server_errors": server_errors,
        "rps": round(float(total["Requests/s"]), 1),
        "p50_ms": float(total["50%"]),
        "p99_ms": float(total["99%"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("LOAD_DATABASE_URL"))
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="statsapi-load-"))
    database_url, to_drop = _fresh_database(args.database_url, workdir)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "STATSAPI_WRITE_RATE_LIMIT": "1000000/minute",  # measure the service, not the limiter
        "PROMETHEUS_MULTIPROC_DIR": str(workdir),
    }
    server = None
    try:
        _statsapi("migrate", env=env)
        _statsapi("seed", env=env)
        engine = build_engine(database_url)
        token = create_key(engine, name="load", scopes={Scope.write})
        engine.dispose()
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [str(BIN / "statsapi"), "serve", "--port", str(port), "--workers", str(args.workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        ack_file = workdir / "acks.tsv"
        prefix = workdir / "locust"
        subprocess.run(
            [
                str(BIN / "locust"),
                "-f",
                str(ROOT / "checks" / "locustfile.py"),
                "--headless",
                "--users",
                str(args.users),
                "--spawn-rate",
                str(args.users),
                "--run-time",
                f"{args.seconds}s",
                "--host",
                url,
                "--csv",
                str(prefix),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            env={**env, "LOAD_TOKEN": token, "LOAD_ACK_FILE": str(ack_file)},
            timeout=args.seconds + 60,
            check=False,
            stdout=subprocess.DEVNULL,
        )
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        server = None
        result: dict[str, object] = {"backend": make_url(database_url).get_backend_name()}
        result.update(_locust_totals(prefix))
        result.update(_audit(database_url, ack_file))
        if result["backend"] == "sqlite":
            with build_engine(database_url).connect() as connection:
                result["integrity"] = connection.execute(text("PRAGMA integrity_check")).scalar()
        else:
            result["integrity"] = "n/a"
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        if to_drop and args.database_url:
            _drop(args.database_url, to_drop)
    print(json.dumps(result, indent=2))
    passed = (
        result["server_errors"] == 0
        and result["lost"] == 0
        and result["integrity"] in ("ok", "n/a")
        and int(result["writes_acknowledged"]) > 0  # type: ignore[call-overload]
    )
    print("load check:", "passed" if passed else "FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
