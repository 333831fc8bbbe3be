"""A live server for tests that need real sockets and real worker processes.

`serving` starts `statsapi serve` on a free loopback port against a test database; the fault,
soak and hostile-input probes use it to measure what a test client cannot: worker memory, a
worker's death, latency of other requests while one is being answered.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

STATSAPI = Path(sys.executable).with_name("statsapi")
CLI = [str(STATSAPI)] if STATSAPI.exists() else [sys.executable, "-m", "app"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def worker_pids(self) -> set[int]:
        """The processes answering requests: the workers, or the server itself with one."""
        return children(self.process.pid) or {self.process.pid}


@contextmanager
def serving(
    database_url: str,
    log: Path,
    *,
    workers: int = 1,
    args: tuple[str, ...] = (),
    **env: str,
) -> Iterator[Server]:
    """`statsapi serve` on a free loopback port, ready (/readyz 200), until the block ends.

    It runs in a session of its own so that its whole process group (the workers too) can be
    killed at the end, and nothing else. `args` are more `serve` options.
    """
    port = free_port()
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            [
                *CLI,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                *args,
            ],
            env={**os.environ, "DATABASE_URL": database_url, **env},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{server.log_tail()}")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server was not ready within 30 s:\n{server.log_tail()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def children(pid: int) -> set[int]:
    """The pids of `pid`'s child processes (read from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces or parentheses.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.add(int(entry.name))
    return found


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MiB (VmRSS from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def write_token(database_url: str, *, name: str = "live", scope: str = "write") -> str:
    """The token of a key made with the CLI (`statsapi keys create`)."""
    result = subprocess.run(
        [*CLI, "keys", "create", "--name", name, "--scope", scope],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


def write_key(database_url: str, *, name: str = "live", scope: str = "write") -> dict[str, str]:
    """A key made with the CLI (`statsapi keys create`), as an Authorization header."""
    return {"Authorization": f"Bearer {write_token(database_url, name=name, scope=scope)}"}
