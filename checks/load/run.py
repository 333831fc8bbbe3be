"""Load check: locust's mix of reads and writes against `statsapi serve`, then an audit.

    python checks/load/run.py [--database-url URL] [--workers 2] [--users 64] [--seconds 30]
                              [--report PATH]

Without --database-url (or with any sqlite URL) it uses a new SQLite file in a temporary folder;
with a PostgreSQL URL it connects to that (maintenance) database, creates a new database beside
it, and drops it at the end. Then: migrate, seed, a write key, the server on a free loopback port,
locust headless (checks/load/locustfile.py), SIGTERM, and an audit of the database itself:

- no 5xx answer (a 503 with Retry-After, the app's "database locked, busy or unavailable" answer,
  is reported apart as "503 under lock", but still fails; a 503 without it is worse),
  no connection error, no other unexpected answer (412 on a stale If-Match is expected);
- every acknowledged write is in observation_revision: each PUT as the revision its ETag named,
  with its value, one revision past the ETag it sent as If-Match; each imported row reported
  created or changed, with its value; and writes acknowledged <= revisions written;
- every published observation matches the last revision of its history;
- SQLite: PRAGMA integrity_check is ok (and foreign_key_check finds nothing); PostgreSQL:
  amcheck's bt_index_check on every index, when the extension is available.

Exits 0 only when all of that holds. Loopback only, bounded in time; the server's process group
and locust are killed whatever happens, and the temporary database is removed.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
KEY_NAME = "load-check"
READY_SECONDS = 30
STOP_SECONDS = 20
# Settings that would make the server answer something else than the service under load (a
# read rate limit: 429s) or use another database; other STATSAPI_* settings pass through.
SCRUBBED_ENV = {"DATABASE_URL", "STATSAPI_READ_RATE_LIMIT", "PROMETHEUS_MULTIPROC_DIR"}


def _bin(name: str) -> str:
    """A console script of this venv (the one running this script, else the project's)."""
    for folder in (Path(sys.executable).parent, ROOT / ".venv" / "bin"):
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"load check: {name} not found (install the project's dev extras)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _driver_url(url: str) -> str:
    """postgresql:// means psycopg 3 here, as in the app."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _admin_engine(url: str) -> Engine:
    return create_engine(_driver_url(url), isolation_level="AUTOCOMMIT", pool_pre_ping=True)


def _create_pg_database(maintenance_url: str) -> tuple[str, str]:
    """(URL of a new, empty database on the server, its name)."""
    name = f"statsapi_load_{uuid.uuid4().hex[:10]}"
    admin = _admin_engine(maintenance_url)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    fresh = make_url(maintenance_url).set(database=name)
    return fresh.render_as_string(hide_password=False), name


def _drop_pg_database(maintenance_url: str, name: str) -> None:
    admin = _admin_engine(maintenance_url)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _group_alive(pgid: int) -> bool:
    """Whether any process is left in process group `pgid` (Linux /proc)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    return True
            except (ProcessLookupError, PermissionError):
                continue
    return False


def _kill_group(process: subprocess.Popen[bytes] | None, sig: int) -> None:
    """Signal the process group that `process` leads (it was started in a session of its own)."""
    if process is None:
        return
    if process.poll() is None or _group_alive(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


def _stop(process: subprocess.Popen[bytes] | None, timeout: float) -> int | None:
    """SIGTERM the group, wait, then SIGKILL whatever is left; returns the leader's exit code."""
    if process is None:
        return None
    _kill_group(process, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    _kill_group(process, signal.SIGKILL)
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        return None


def _statsapi(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [_bin("statsapi"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"statsapi {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def _wait_ready(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"/readyz did not answer 200 within {READY_SECONDS} s")


# --- audit ---------------------------------------------------------------------------------


def _decimal(value: Any) -> Decimal:
    """A stored value as a Decimal (SQLite hands back int or float, PostgreSQL Decimal)."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def _read_acks(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


REVISIONS_SQL = """
SELECT i.code, r.code, h.year, h.revision, h.value, h.action
FROM observation_revision h
JOIN indicator i ON i.id = h.indicator_id
JOIN region r ON r.id = h.region_id
WHERE h.recorded_by = :name
"""
# Every published value against the newest revision of its own history.
STATE_SQL = """
SELECT i.code, r.code, o.year, o.revision, o.value, h.revision, h.value, h.action
FROM observation o
JOIN indicator i ON i.id = o.indicator_id
JOIN region r ON r.id = o.region_id
LEFT JOIN observation_revision h
  ON h.indicator_id = o.indicator_id AND h.region_id = o.region_id AND h.year = o.year
 AND h.revision = (
     SELECT max(h2.revision) FROM observation_revision h2
     WHERE h2.indicator_id = o.indicator_id AND h2.region_id = o.region_id AND h2.year = o.year)
"""


def audit_writes(engine: Engine, acks: list[dict[str, Any]]) -> dict[str, Any]:
    """Find every acknowledged write in the revision history (see the module docstring)."""
    with engine.connect() as connection:
        history = connection.execute(text(REVISIONS_SQL), {"name": KEY_NAME}).all()
        states = connection.execute(text(STATE_SQL)).all()
    by_revision = {(i, r, y, rev): _decimal(value) for i, r, y, rev, value, _ in history}
    by_value = Counter((i, r, y, _decimal(value)) for i, r, y, _, value, _ in history)

    lost: list[dict[str, Any]] = []
    if_match_violations: list[dict[str, Any]] = []
    claimed: Counter[tuple[str, str, int, int]] = Counter()
    imported: Counter[tuple[str, str, int, Decimal]] = Counter()
    for ack in acks:
        key = (ack["indicator"], ack["region"], int(ack["year"]))
        value = Decimal(ack["value"])
        if ack["kind"] == "put":
            revision = ack.get("revision")
            if revision is None or by_revision.get((*key, revision)) != value:
                lost.append(ack)
            else:
                claimed[(*key, revision)] += 1
            base = ack.get("base_revision")
            if revision is not None and (base is None or revision != base + 1):
                if_match_violations.append(ack)
        else:
            imported[(*key, value)] += 1
    # Two acknowledged PUTs naming one revision: one of them was overwritten unseen.
    for (indicator, region, year, revision), count in claimed.items():
        lost += [
            {"kind": "put", "indicator": indicator, "region": region, "year": year}
            | {"revision": revision, "acknowledged_times": count}
        ] * (count - 1)
    for (indicator, region, year, value), count in imported.items():
        missing = count - by_value.get((indicator, region, year, value), 0)
        lost += [
            {"kind": "import", "indicator": indicator, "region": region, "year": year}
            | {"value": str(value)}
        ] * max(missing, 0)

    stale = [
        {"observation": f"{i}/{r}/{y}", "revision": rev, "history": hrev, "action": action}
        for i, r, y, rev, value, hrev, hvalue, action in states
        if hrev != rev or action == "delete" or _decimal(value) != _decimal(hvalue)
    ]
    writes = [h for h in history if h[5] in ("create", "update")]
    return {
        "writes_acknowledged": len(acks),
        "puts_acknowledged": sum(1 for a in acks if a["kind"] == "put"),
        "import_rows_acknowledged": sum(1 for a in acks if a["kind"] == "import"),
        "revisions_written": len(writes),
        "writes_found": len(acks) - len(lost),
        "lost_writes": len(lost),
        "lost_examples": lost[:10],
        "if_match_violations": len(if_match_violations),
        "if_match_examples": if_match_violations[:10],
        "state_mismatches": len(stale),
        "state_examples": stale[:10],
    }


def integrity(engine: Engine) -> str:
    """'ok', or what is wrong; on PostgreSQL via amcheck when the extension can be had."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            result = [row[0] for row in connection.exec_driver_sql("PRAGMA integrity_check")]
            foreign = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if result != ["ok"]:
                return "; ".join(str(line) for line in result[:5])
            return "ok" if not foreign else f"{len(foreign)} foreign key violations"
        try:
            connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS amcheck")
            connection.commit()
        except Exception as error:  # amcheck is optional: contrib may be absent
            return f"n/a (amcheck unavailable: {type(error).__name__})"
        indexes = connection.exec_driver_sql(
            "SELECT c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE a.amname = 'btree' AND n.nspname = 'public'"
        ).all()
        check = text("SELECT bt_index_check(CAST(:oid AS regclass), true)")
        for (oid,) in indexes:
            connection.execute(check, {"oid": oid})
        return f"ok (amcheck: {len(indexes)} indexes)"


# --- the run -------------------------------------------------------------------------------


def _server_errors(statuses: dict[str, dict[str, int]]) -> dict[str, int]:
    """5xx answers by status label ("500", "503 under lock", ...)."""
    found: Counter[str] = Counter()
    for counts in statuses.values():
        for label, count in counts.items():
            if label.startswith("5"):
                found[label] += count
    return dict(found)


def _by_status(statuses: dict[str, dict[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for counts in statuses.values():
        total.update(counts)
    return dict(sorted(total.items()))


def _log_extract(path: Path, limit: int = 15) -> list[str]:
    """Lines of the server's log that explain a failure: tracebacks, warnings, 5xx."""
    if not path.exists():
        return []
    lines = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        lowered = line.lower()
        if any(
            marker in lowered
            for marker in ('"status": 5', "traceback", "error", "database unavailable")
        ):
            lines.append(line[:400])
            if len(lines) >= limit:
                break
    return lines


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    backend = "sqlite"
    if args.database_url and not args.database_url.startswith("sqlite"):
        backend = make_url(_driver_url(args.database_url)).get_backend_name()
    result: dict[str, Any] = {
        "backend": backend,
        "workers": args.workers,
        "users": args.users,
        "seconds": args.seconds,
    }
    to_drop = None
    server = locust = None
    started = time.monotonic()
    try:
        if backend == "sqlite":
            database_url = f"sqlite:///{workdir / 'load.sqlite3'}"
        else:
            database_url, to_drop = _create_pg_database(args.database_url)
        result["database"] = make_url(database_url).render_as_string(hide_password=True)
        env = {key: value for key, value in os.environ.items() if key not in SCRUBBED_ENV}
        env.update(
            DATABASE_URL=database_url,
            PROMETHEUS_MULTIPROC_DIR=str(workdir / "prometheus"),
            # Keep any temporary file the server makes inside the work folder.
            TMPDIR=str(workdir / "tmp"),
            # The default 120 writes a minute per key would answer most writes 429: measure
            # the service, not the limiter.
            STATSAPI_WRITE_RATE_LIMIT="1000000/minute",
            STATSAPI_RATE_LIMIT_STORAGE="memory://",
        )
        (workdir / "prometheus").mkdir()
        (workdir / "tmp").mkdir()
        _statsapi(env, "migrate")
        _statsapi(env, "seed")
        output = _statsapi(env, "keys", "create", "--name", KEY_NAME, "--scope", "write")
        token = [line.strip() for line in output.splitlines() if line.strip()][-1]

        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        server_log = workdir / "server.log"
        with open(server_log, "wb") as log:
            server = subprocess.Popen(
                [
                    *(_bin("statsapi"), "serve", "--host", "127.0.0.1", "--port", str(port)),
                    *("--workers", str(args.workers)),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_ready(base_url, server)
        result["setup_seconds"] = round(time.monotonic() - started, 1)

        acks_path, stats_path = workdir / "acks.jsonl", workdir / "stats.json"
        locust_log = workdir / "locust.log"
        with open(locust_log, "wb") as log:
            locust = subprocess.Popen(
                [
                    *(_bin("locust"), "-f", str(HERE / "locustfile.py"), "--headless"),
                    *("--users", str(args.users), "--spawn-rate", str(args.users)),
                    *("--run-time", f"{args.seconds}s", "--stop-timeout", "0"),
                    *("--host", base_url, "--only-summary", "--loglevel", "WARNING"),
                    *("--csv", str(workdir / "locust")),
                ],
                env={
                    **env,
                    "STATSAPI_LOAD_TOKEN": token,
                    "STATSAPI_LOAD_ACK_FILE": str(acks_path),
                    "STATSAPI_LOAD_STATS_FILE": str(stats_path),
                },
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                locust.wait(timeout=args.seconds + 30)
            except subprocess.TimeoutExpired:
                result["errors"] = ["locust did not finish in time; killed"]
            _stop(locust, 5)
            locust = None
        result["server_exit_code"] = _stop(server, STOP_SECONDS)
        server = None

        if not stats_path.exists():
            raise RuntimeError(
                "locust wrote no statistics:\n" + locust_log.read_text(errors="replace")[-3000:]
            )
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
        statuses = stats["statuses"]
        result.update(
            requests=stats["requests"],
            rps=round(stats["rps"], 1),
            p50_ms=stats["p50_ms"],
            p99_ms=stats["p99_ms"],
            max_ms=round(stats["max_ms"] or 0),
            by_status=_by_status(statuses),
            server_errors=_server_errors(statuses),
            problems=stats["problems"],
            statuses=statuses,
        )
        engine = create_engine(_driver_url(database_url))
        try:
            result.update(audit_writes(engine, _read_acks(acks_path)))
            result["integrity"] = integrity(engine)
        finally:
            engine.dispose()
        if result["server_errors"] or result["problems"]:
            result["server_log"] = _log_extract(server_log)
            result["locust_output"] = locust_log.read_text(errors="replace")[-4000:]
    except Exception as error:  # setup or audit failed: still a report, and a failing exit
        result.setdefault("errors", []).append(f"{type(error).__name__}: {error}")
    finally:
        _stop(locust, 5)
        _stop(server, STOP_SECONDS)
        if to_drop:
            try:
                _drop_pg_database(args.database_url, to_drop)
            except Exception as error:
                result.setdefault("errors", []).append(f"could not drop {to_drop}: {error}")
        result["total_seconds"] = round(time.monotonic() - started, 1)
    return result


def verdict(result: dict[str, Any]) -> list[str]:
    """Every reason the run fails; empty when it passes."""
    reasons = list(result.get("errors", []))
    if reasons and "requests" not in result:
        return reasons  # it stopped before the load: nothing else to judge
    if not result.get("requests"):
        reasons.append("no request was served")
    if result.get("server_errors"):
        reasons.append(f"5xx answers: {result['server_errors']}")
    if result.get("problems"):
        reasons.append(f"unexpected answers: {result['problems']}")
    if not result.get("puts_acknowledged") or not result.get("import_rows_acknowledged"):
        reasons.append("no PUT or no import was acknowledged: the audit would check nothing")
    if result.get("lost_writes"):
        reasons.append(f"{result['lost_writes']} acknowledged writes not in the history")
    if result.get("if_match_violations"):
        reasons.append(f"{result['if_match_violations']} PUTs not one revision past If-Match")
    if result.get("writes_acknowledged", 0) > result.get("revisions_written", 0):
        reasons.append("more writes acknowledged than revisions written")
    if result.get("state_mismatches"):
        reasons.append(f"{result['state_mismatches']} observations differ from their history")
    if not str(result.get("integrity", "")).startswith(("ok", "n/a")):
        reasons.append(f"integrity: {result.get('integrity')}")
    return reasons


def summary_table(result: dict[str, Any]) -> str:
    errors = result.get("server_errors") or {}
    rows = [
        ("backend", f"{result['backend']} (serve --workers {result['workers']})"),
        ("load", f"{result['users']} users for {result['seconds']} s"),
        ("requests served", result.get("requests", "-")),
        ("req/s", result.get("rps", "-")),
        ("latency p50 / p99 / max (ms)", _latency(result)),
        ("answers by status", _statuses(result.get("by_status", {}))),
        ("5xx", sum(errors.values()) if errors else 0),
        ("  of which 503 under lock", errors.get("503 under lock", 0)),
        ("other unexpected answers", sum(result.get("problems", {}).values())),
        ("writes acknowledged (2xx)", _writes(result)),
        ("revisions written by the key", result.get("revisions_written", "-")),
        ("  written, not acknowledged", _unacknowledged(result)),
        ("writes found in history", result.get("writes_found", "-")),
        ("lost writes", result.get("lost_writes", "-")),
        ("If-Match violations", result.get("if_match_violations", "-")),
        ("published != history", result.get("state_mismatches", "-")),
        ("integrity", result.get("integrity", "-")),
        ("wall time (s)", result.get("total_seconds", "-")),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def _latency(result: dict[str, Any]) -> str:
    if "p50_ms" not in result:
        return "-"
    return f"{result['p50_ms']} / {result['p99_ms']} / {result['max_ms']}"


def _statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{label}: {count}" for label, count in counts.items()) or "-"


def _unacknowledged(result: dict[str, Any]) -> str:
    if "revisions_written" not in result:
        return "-"
    extra = result["revisions_written"] - result["writes_acknowledged"]
    return f"{extra} (in flight when locust stopped)" if extra >= 0 else str(extra)


def _writes(result: dict[str, Any]) -> str:
    if "writes_acknowledged" not in result:
        return "-"
    return (
        f"{result['writes_acknowledged']} ({result['puts_acknowledged']} PUTs, "
        f"{result['import_rows_acknowledged']} imported rows)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL maintenance database to create a fresh one beside (default: SQLite)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--report", type=Path, default=None, help="write the summary as JSON")
    args = parser.parse_args()

    # A CI timeout's SIGTERM unwinds like Ctrl-C: the finally blocks stop the server and locust
    # and drop the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="statsapi-load-"))
    result: dict[str, Any] = {"backend": args.database_url or "sqlite"}
    try:
        result = run(args, workdir)
    except SystemExit:
        result.setdefault("errors", []).append("interrupted by SIGTERM")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    reasons = verdict(result)
    result["passed"] = not reasons
    result["failures"] = reasons
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    if "requests" in result:
        print(summary_table(result))
    for reason in reasons:
        print(f"FAILED: {reason}", file=sys.stderr)
    for line in result.get("server_log", []):
        print(f"server log: {line}", file=sys.stderr)
    print("load check:", "passed" if not reasons else "FAILED")
    return 0 if not reasons else 1


if __name__ == "__main__":
    sys.exit(main())
