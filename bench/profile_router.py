"""Where the router's CPU goes under load: py-spy samples the server while clients keep it busy.

    uv run python bench/profile_router.py [--seconds 20] [--concurrency 32] [--classified 0.0]

Starts one zero-latency fake node and the router (one worker), warms both, then samples the
router with py-spy while `--concurrency` clients send `/api/llm/process` requests, a
`--classified` share of them with a distinct prompt to classify and the rest with their
`task_type`. Prints the requests per second reached, the router's CPU time per request
(user + system, all threads, from /proc), the share of samples by package (the
innermost frame's), and the functions with the largest inclusive share. `--raw FILE` keeps
py-spy's collapsed stacks (for a flame graph). py-spy comes with the dev dependencies; it
needs ptrace on the server's process (root, or `kernel.yama.ptrace_scope=0`).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import fake_node, router_server
from service.auth import issue_token

SECRET = "bench-secret-0123456789abcdef0123456789"
PROMPT = "Is this login from a new country malicious? user=ann src=203.0.113.7"
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
ROOT = Path(__file__).resolve().parent.parent
#: langgraph's subpackages, which py-spy names without the `langgraph/` of a namespace package.
LANGGRAPH = {"pregel", "channels", "_internal", "runtime", "graph", "managed", "func", "stream"}


def package_of(file: str) -> str:
    """The package a source file belongs to (`langgraph`, `starlette`, `asyncio`), with the
    router's own marked `gb10:`. py-spy names files relative to their import root, and
    langgraph's namespace package by its subpackage (`pregel/main.py`)."""
    head = (Path(file).parts or ("?",))[0].removesuffix(".py")
    if (ROOT / file).is_file():
        return f"gb10:{head}"
    return "langgraph" if head in LANGGRAPH else head


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summarise(raw: Path, top: int) -> None:
    """Print the package and function tables from py-spy's collapsed stacks."""
    by_package: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = [FRAME.match(f) for f in stack.split(";")]
        parsed = [m for m in frames if m is not None]
        if not parsed:
            continue
        leaf = parsed[-1]
        by_package[package_of(leaf["file"])] += count
        seen = set()
        for m in parsed:
            name = f"{m['function']} ({package_of(m['file'])})"
            if name not in seen:
                seen.add(name)
                inclusive[name] += count
    print(f"\n{total} samples on the router's threads (holding the GIL)")
    print("\n| package (innermost frame) | share |\n|---|---|")
    for name, count in by_package.most_common(top):
        print(f"| {name} | {100 * count / total:.1f} % |")
    print("\n| function (inclusive) | share |\n|---|---|")
    for name, count in inclusive.most_common(top * 2):
        print(f"| {name} | {100 * count / total:.1f} % |")


async def load(router: str, seconds: float, concurrency: int, classified: float) -> float:
    """Keep `concurrency` requests in flight for `seconds`; requests per second."""
    token = issue_token(SECRET, user="bench", tenant="bench")
    headers = {"Authorization": f"Bearer {token}"}
    distinct = itertools.count()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    done = 0
    async with httpx.AsyncClient(timeout=60, limits=limits, headers=headers) as c:
        deadline = time.perf_counter() + seconds

        async def worker(index: int) -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                n = next(distinct)
                if n % 1000 < classified * 1000:
                    body = {"prompt": f"{PROMPT} (event {n})"}
                else:
                    body = {"prompt": PROMPT, "task_type": "adversarial_reasoning"}
                (await c.post(f"{router}/api/llm/process", json=body)).raise_for_status()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--classified", type=float, default=0.0)
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--raw", type=Path)
    parser.add_argument("--no-spy", action="store_true", help="only the rate and CPU figures")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    raw = args.raw or Path(tempfile.mkdtemp()) / "router.txt"
    with (
        fake_node() as node,
        router_server(SECRET, LLM_NODE_1_URL=node, LLM_NODE_2_URL=node) as (router, pid),
    ):
        asyncio.run(load(router, 3, args.concurrency, args.classified))  # warm up
        command = [py_spy, "record", "--pid", str(pid), "--format", "raw", "--output", str(raw)]
        command += ["--duration", str(int(args.seconds)), "--rate", "200", "--gil", "--nonblocking"]
        quiet = subprocess.DEVNULL
        spy = None if args.no_spy else subprocess.Popen(command, stdout=quiet, stderr=quiet)
        cpu = cpu_seconds(pid)
        rate = asyncio.run(load(router, args.seconds, args.concurrency, args.classified))
        cpu_per_request_ms = (cpu_seconds(pid) - cpu) / (rate * args.seconds) * 1000
        if spy is not None:
            spy.wait(timeout=args.seconds + 30)
    print(f"{rate:.1f} requests/s at concurrency {args.concurrency} while sampled")
    print(f"router CPU per request: {cpu_per_request_ms:.2f} ms")
    if not args.no_spy:
        summarise(raw, args.top)


if __name__ == "__main__":
    main()
