"""`gb10-router local-nodes` and `gb10-router demo`: real vLLM stand-ins for the GB10 nodes."""

from __future__ import annotations

import argparse
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from app.settings import Settings
from cluster.config import load_cluster_config
from devnodes.environment import ModelKind, cache_dir, model_dir, vllm_python
from devnodes.servers import DEFAULT_CLUSTER, VllmServer, local_servers, write_cluster_config

#: The batch example's 50 log entries: mostly routine, every seventh an encoded PowerShell.
DEMO_LOG = [
    f"02:{i:02d} host{i % 7} "
    + ("powershell -enc SQBFAFgA" if i % 7 == 3 else "sshd: accepted key for backup")
    for i in range(50)
]
DEMO_REQUESTS: list[tuple[str, dict[str, Any]]] = [
    (
        "threat analysis",
        {
            "prompt": "Analyze this suspicious PowerShell script for malicious intent: "
            "powershell -nop -w hidden -enc SQBFAFgAKABOAGUAdwAtAE8AYgBqAGUAYwB0ACkA",
            "task_hints": ["threat", "adversary", "malicious"],
            "parameters": {"temperature": 0.3, "max_tokens": 48},
        },
    ),
    (
        "YARA rule",
        {
            "prompt": "Generate a YARA rule to detect this malware family: it drops evil.dll "
            "and contains the string 'x0r_k3y'.",
            "task_hints": ["code", "rule", "generate"],
            "parameters": {"temperature": 0.5, "max_tokens": 256},
        },
    ),
    (
        "parallel batch",
        {
            "prompt": "Analyze these 50 log entries for anomalies.",
            "task_hints": ["classify", "anomaly"],
            "requires_parallel": True,
            "items": DEMO_LOG,
            "labels": ["benign", "malicious"],
            "parameters": {"max_tokens": 256},
        },
    ),
    (
        "chain",
        {
            "prompt": "First extract IOCs, then classify threats, finally generate response plan. "
            "Alert: host 10.1.2.3 contacted evil-c2.example.net and ran mimikatz.exe.",
            "task_hints": ["parse", "classify", "generate"],
            "requires_chaining": True,
            "operations": ["extract", "classify", "generate"],
            "parameters": {"max_tokens": 32},
        },
    ),
]


def _progress(message: str) -> None:
    print(f"[local-nodes] {message}", flush=True)


@contextmanager
def running_nodes(kind: ModelKind, base_port: int) -> Iterator[tuple[list[VllmServer], Path]]:
    """Build what is missing, start both nodes, yield them with their cluster file; stop after."""
    python = vllm_python(_progress)
    model = model_dir(kind, _progress)
    servers = local_servers(python, model, base_port, cache_dir() / "logs")
    try:
        for server in servers:
            _progress(f"starting {server.name} ({', '.join(server.served_names)}) on {server.url}")
            server.start()
        for server in servers:
            took = server.wait_ready()
            _progress(f"{server.name} ready in {took:.0f}s")
        config = write_cluster_config(servers, cache_dir() / "local-cluster.yaml")
        yield servers, config
    finally:
        # A second Ctrl-C while they stop would leave a server running, holding its port.
        with ctrl_c_ignored():
            for server in servers:
                server.stop()
        _progress("servers stopped")


@contextmanager
def ctrl_c_ignored() -> Iterator[None]:
    """Ignore Ctrl-C for the block (main thread only: no other can change signal handlers).

    Also what `uvicorn.run` needs to end on Ctrl-C as a return: it shuts down, then raises
    the signal again for the handler it found, which by default would interrupt asyncio's
    runner mid-shutdown (a KeyboardInterrupt traceback and a cancelled lifespan)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _reachable(url: str) -> bool:
    """Whether anything answers HTTP at `url` within a second."""
    try:
        httpx.get(url, timeout=1.0)
    except httpx.HTTPError:
        return False
    return True


def _why_local(settings: Settings, mode: str, dev: bool) -> str | None:
    """Why `serve` should start local nodes, or None when it should route to the cluster."""
    if mode == "never" or (mode == "auto" and not dev):
        return None
    if mode == "always":
        return "--local-nodes always"
    configured = settings.cluster_config.resolve() != DEFAULT_CLUSTER.resolve()
    if configured or settings.node_url_overrides():
        return None  # configured nodes win, reachable or not
    nodes = load_cluster_config(settings.cluster_config).nodes
    if any(_reachable(node.url) for node in nodes):
        return None
    return f"no node of the default cluster answers ({', '.join(n.url for n in nodes)})"


@contextmanager
def nodes_for_serving(
    settings: Settings, mode: str, dev: bool, kind: ModelKind, base_port: int
) -> Iterator[Settings]:
    """The settings to serve with: as given, or pointed at local vLLM nodes started here
    (and stopped when the block ends) when `mode` and the cluster call for them."""
    why = _why_local(settings, mode, dev)
    if why is None:
        yield settings
        return
    _progress(f"{why}: starting local vLLM nodes on the CPU ({kind})")
    with running_nodes(kind, base_port) as (_, config):
        _progress("routing to the local nodes; Ctrl-C stops the router and them")
        yield settings.model_copy(update={"cluster_config": config})


def _wait_for_interrupt() -> None:
    """Return on SIGINT or SIGTERM.

    SIGINT gets a handler of its own: a process started in the background of a
    non-interactive shell inherits SIGINT ignored, and Ctrl-C must still stop the servers.
    """
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def cmd_local_nodes(args: argparse.Namespace) -> int:
    if args.prepare:
        vllm_python(_progress)
        _progress(f"model ready at {model_dir(args.model, _progress)}")
        return 0
    with running_nodes(args.model, args.base_port) as (_, config):
        _progress(f"cluster file: {config}")
        _progress(f"run the router with: gb10-router serve --dev --cluster-config {config}")
        _progress("Ctrl-C stops the servers")
        _wait_for_interrupt()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import uvicorn
    from pydantic import SecretStr

    from app.settings import Settings
    from server import create_app
    from service.auth import issue_token

    with running_nodes(args.model, args.base_port) as (_, config):
        secret = secrets.token_urlsafe(32)
        settings = Settings(
            cluster_config=config, jwt_secret=SecretStr(secret), llm_default_timeout=120
        )
        port = args.base_port + 3
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        token = issue_token(secret, user="demo", tenant="demo")
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                timeout=300,
                headers={"Authorization": f"Bearer {token}"},
            ) as client:
                for number, (title, body) in enumerate(DEMO_REQUESTS, start=1):
                    started = time.perf_counter()
                    r = client.post("/api/llm/process", json=body)
                    took = time.perf_counter() - started
                    print(_describe(title, r, took), flush=True)
                    if args.save is not None:
                        args.save.mkdir(parents=True, exist_ok=True)
                        name = f"{number}-{title.replace(' ', '-').lower()}.json"
                        (args.save / name).write_text(r.text)
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    return 0


def _describe(title: str, r: httpx.Response, took_s: float) -> str:
    if r.status_code != 200:
        return f"\n== {title}: HTTP {r.status_code} {r.text[:300]}"
    body = r.json()
    routing, scheduling = body["routing"], body["scheduling"]
    nodes = sorted({n["node_id"] for n in scheduling["nodes"]})
    lines = [
        f"\n== {title}  ({took_s * 1000:.0f} ms)",
        f"   task type : {routing['task_type']}",
        f"   model(s)  : {', '.join(body['models_used'])}",
        f"   node(s)   : {', '.join(nodes)}",
        f"   mode      : {body['execution_mode']}",
    ]
    for step in body.get("chain") or []:
        lines.append(
            f"   step {step['step'] + 1} {step['operation']:<9}-> {step['model']}@"
            f"{step['node_id']}: {' '.join(step['output'].split())[:70]}"
        )
    result = body["result"]
    validation = result.get("validation")
    if validation is not None:
        why = f": {validation['error']}" if validation["error"] else ""
        lines.append(f"   validation: {validation['status']} ({validation['kind']}{why})")
        lines.extend(f"     warning: {w}" for w in validation["warnings"])
    items = result.get("items") or []
    if items:
        counts = Counter(i["status"] for i in items)
        lines.append(
            f"   items     : {len(items)} ({', '.join(f'{n} {s}' for s, n in counts.items())})"
        )
        for item in items[:4]:
            who = f"{item['model']}@{item['node_id']}" if item["model"] else "-"
            sure = "" if item["confidence"] is None else f" {item['confidence']:.2f}"
            lines.append(
                f"     #{item['index'] + 1:<3} {item['answer'] or item['problem']}{sure} ({who})"
            )
    content = result["choices"][0]["message"]["content"]
    if validation is not None and validation["status"] != "failed":
        # A checked rule is shown whole, as the tool read it.
        lines.append("   answer    :")
        lines.extend(f"     {line}" for line in content.strip().splitlines())
    else:
        lines.append(f"   answer    : {' '.join(content.split())[:200]}")
    return "\n".join(lines)


def register(sub: Any) -> None:
    """Add `local-nodes` and `demo` to the CLI."""
    local = sub.add_parser("local-nodes", help="run real vLLM servers standing in for the nodes")
    local.add_argument(
        "--model",
        choices=["smollm2", "tiny"],
        default="smollm2",
        help="smollm2: a real small instruct model; tiny: random weights, fast",
    )
    local.add_argument("--base-port", type=int, default=8100, help="nodes use base+1, base+2")
    local.add_argument(
        "--prepare",
        action="store_true",
        help="only build the vLLM environment and the model, then exit",
    )
    local.set_defaults(func=cmd_local_nodes)

    demo = sub.add_parser("demo", help="local nodes + router + the specification's four requests")
    demo.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    demo.add_argument("--base-port", type=int, default=8100)
    demo.add_argument(
        "--save", type=Path, metavar="DIR", help="also write each response's JSON into DIR"
    )
    demo.set_defaults(func=cmd_demo)
