"""Instructions per request, counted by valgrind's callgrind: a cost that does not move with
the machine's load, for comparing two versions of the router.

    uv run python bench/instructions.py [--few 20] [--many 120]

For each path it runs the same process twice under callgrind, with `--few` and `--many`
requests, and divides the difference by the extra requests, so start-up cancels out:
- graph: `ainvoke` of the compiled graph (task_type given, rules classifier), single mode;
- http: `POST /api/llm/process` through the whole app in process (ASGI, SQLite audit).
Both call a zero-latency fake node in its own process, which callgrind does not trace.
Needs valgrind (Debian: valgrind); takes several minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fake_node

PROMPT = "Analyze this suspicious PowerShell script"
SECRET = "instructions-bench-secret-0123456789abcdef"
PATHS = ("graph", "http")


async def _graph(url: str, n: int) -> None:
    from app.runtime import build_runtime
    from app.settings import Settings
    from graph.builder import build_graph

    settings = Settings(
        llm_node_1_url=url, llm_node_2_url=url, llm_max_retries=0, classifier="rules"
    )
    runtime = build_runtime(settings)
    graph = build_graph().compile()
    request = {"prompt": PROMPT, "task_type": "adversarial_reasoning"}
    for _ in range(n):
        await graph.ainvoke(request, context=runtime.context)
    await runtime.aclose()


async def _http(url: str, n: int) -> None:
    import httpx

    from app.settings import Settings
    from server import create_app
    from service.auth import issue_token

    settings = Settings(
        llm_node_1_url=url,
        llm_node_2_url=url,
        llm_max_retries=0,
        classifier="rules",
        jwt_secret=SECRET,
        health_interval_s=0,
        policy_reload_s=0,
        state_dir=Path(tempfile.mkdtemp(prefix="gb10-bench-")),
    )
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {issue_token(SECRET, user='bench', tenant='bench')}"}
    body = {"prompt": PROMPT, "task_type": "adversarial_reasoning"}
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://router", headers=headers) as c,
    ):
        for _ in range(n):
            r = await c.post("/api/llm/process", json=body)
            r.raise_for_status()


def child(path: str, n: int) -> None:
    """The measured process: `n` requests down `path`."""
    run = _graph if path == "graph" else _http
    with fake_node() as url:
        asyncio.run(run(url, n))


def collected(path: str, n: int) -> int:
    """Instructions callgrind counted for a child making `n` requests."""
    proc = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            path,
            str(n),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"Collected : (\d+)", proc.stderr)
    if match is None:
        raise RuntimeError(f"no callgrind total in:\n{proc.stderr[-2000:]}")
    return int(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--few", type=int, default=20)
    parser.add_argument("--many", type=int, default=120)
    parser.add_argument("--child", nargs=2, metavar=("PATH", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    print("| path  | instructions per request |")
    print("|-------|--------------------------|")
    for path in PATHS:
        per_request = (collected(path, args.many) - collected(path, args.few)) / (
            args.many - args.few
        )
        print(f"| {path:<5} | {per_request / 1e6:>22.2f}M |")


if __name__ == "__main__":
    main()
