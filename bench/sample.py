"""Where a request's time goes: py-spy samples one worker while wrk loads one endpoint.

    python bench/sample.py [TARGET] [--database seed|synthetic] [--seconds 10] [--top 25]

TARGET is a name from bench/targets.py (default: filtered). Prints the functions with the most
samples on the stack (inclusive) and on top of it (self), the py-spy view that docs/benchmarks.md
quotes, and writes the collapsed stacks to bench/out/samples-TARGET.txt (for a flame graph:
https://github.com/brendangregg/FlameGraph, or `py-spy record --format speedscope`).
"""

import argparse
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.run import OUT, prepare, sqlite_databases, start_app, stop, wrk  # noqa: E402
from bench.targets import CODES, TARGETS, app_path  # noqa: E402

# A thread-pool thread waiting for work is not work (py-spy counts it as active).
IDLE = "Condition.wait (threading.py)"
PY_SPY = HERE.parent / ".venv-bench" / "bin" / "py-spy"


def summarize(collapsed: str, top: int) -> str:
    """Inclusive and self sample counts per function from py-spy's collapsed stacks."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(frame) for frame in stack.split(";")]
        if frames[-1] == IDLE:
            continue
        total += count
        for frame in set(frames):
            inclusive[frame] += count
        own[frames[-1]] += count
    lines = [f"{total} samples", "", "inclusive  self  function"]
    for frame, count in inclusive.most_common(top):
        lines.append(f"{count / total:8.0%} {own[frame] / total:5.0%}  {frame}")
    lines += ["", "self  function (most time on top of the stack)"]
    for frame, count in own.most_common(top):
        lines.append(f"{count / total:4.0%}  {frame}")
    return "\n".join(lines)


def _short(frame: str) -> str:
    """`handler (app/reads.py:120)` -> `handler (app/reads.py)`: one row per function."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", nargs="?", default="filtered")
    parser.add_argument("--database", default="seed", choices=sorted(CODES))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    target = next(t for t in TARGETS if t.name == args.target)
    OUT.mkdir(exist_ok=True)
    url = sqlite_databases()[args.database]
    app = start_app(url, workers=1)
    raw = OUT / f"samples-{target.name}.txt"
    try:
        path = app_path(target, CODES[args.database])
        headers, _rows = prepare(app, path, target)
        load = threading.Thread(
            target=wrk,
            args=(app.base + path,),
            kwargs={"seconds": args.seconds + 2, "headers": headers}
            | {"threads": 2, "connections": 32},
        )
        load.start()
        subprocess.run(
            [
                *(str(PY_SPY), "record", "--pid", str(app.process.pid)),
                *("--duration", str(args.seconds), "--format", "raw"),
                *("--output", str(raw), "--nonblocking"),
            ],
            check=True,
            capture_output=True,
        )
        load.join()
    finally:
        stop(app.process)
    print(f"{target.name} on {args.database}: {target.what}")
    print(summarize(raw.read_text(encoding="utf-8"), args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
