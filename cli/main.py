"""`gb10-router`: serve, classify, nodes, models, token. A user's mistake gets one line, exit 2."""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from app.runtime import RouterRuntime, build_runtime
from app.settings import Settings
from cli import local
from cluster.node_agent import MODEL_SERVER_PATTERN
from policies.errors import RouterError
from service.auth import ADMIN, GLOBAL_ADMIN, OPERATOR, issue_token

WORKER_STARTUP_S = 60
"""How long uvicorn waits on a worker's health ping before killing it as hung."""


class UsageError(Exception):
    """A mistake the user can fix; printed as one line."""


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    explicit: dict[str, Any] = dict(extra)
    if getattr(args, "cluster_config", None):
        explicit["cluster_config"] = Path(args.cluster_config)
    if getattr(args, "routing_config", None):
        explicit["routing_config"] = Path(args.routing_config)
    return Settings(**explicit)


def _runtime(args: argparse.Namespace) -> RouterRuntime:
    return build_runtime(_settings(args))


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from server import create_app

    settings = _settings(args)
    if args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.workers > 1 and not settings.redis_url:
        raise UsageError(
            "--workers needs REDIS_URL: without a shared control plane each worker would "
            "fill every node's capacity on its own"
        )
    if args.dev and settings.jwt_secret is None:
        settings = settings.model_copy(update={"jwt_secret": SecretStr(secrets.token_urlsafe(32))})
    if args.dev:
        assert settings.jwt_secret is not None
        token = issue_token(
            settings.jwt_secret.get_secret_value(),
            user="dev",
            tenant="dev",
            roles=[ADMIN, OPERATOR],
            ttl_s=12 * 3600,
        )
        print(
            "gb10-router --dev: ephemeral secret; admin token for this run (roles admin, "
            f"operator):\n{token}",
            flush=True,
        )
    with local.nodes_for_serving(
        settings, args.local_nodes, args.dev, args.local_model, args.local_base_port
    ) as settings:
        if args.workers == 1:
            app = create_app(settings)
            with local.ctrl_c_ignored():
                uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
            return 0
        # Workers are processes of their own: they build the app from the environment, which
        # carries what the command line set.
        os.environ.update(_worker_environment(settings))
        uvicorn.run(
            "server:app_from_environment",
            factory=True,
            workers=args.workers,
            # A worker answers uvicorn's health pings only once it has imported this module
            # and its libraries; on a busy host that outlasts the 5 s default, and a worker
            # killed for it restarts into the same wait, round after round.
            timeout_worker_healthcheck=WORKER_STARTUP_S,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
        )
    return 0


def _worker_environment(settings: Settings) -> dict[str, str]:
    env = {
        "ROUTER_CLUSTER_CONFIG": str(settings.cluster_config),
        "ROUTER_ROUTING_CONFIG": str(settings.routing_config),
    }
    if settings.jwt_secret is not None:
        env["ROUTER_JWT_SECRET"] = settings.jwt_secret.get_secret_value()
    return env


def cmd_classify(args: argparse.Namespace) -> int:
    from service.responses import routing_json

    decision = _runtime(args).router.decide(args.prompt, args.hint or [])
    print(json.dumps(routing_json(decision), indent=2))
    return 0


def cmd_nodes(args: argparse.Namespace) -> int:
    rt = _runtime(args)
    print(f"{'node':<16} {'vram_gb':>8}  {'url':<32} models")
    for node in rt.cluster.nodes:
        print(f"{node.id:<16} {node.vram_total_gb:>8g}  {node.url:<32} {', '.join(node.models)}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    rt = _runtime(args)
    print(f"{'model':<18} {'node':<14} {'vram_gb':>8}  endpoint")
    for e in rt.pool.endpoints():
        vram = rt.cluster.models[e.model].vram_gb
        print(f"{e.model:<18} {e.node_id:<14} {vram:>8g}  {e.base_url}")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    from graph.builder import build_graph

    print(build_graph().compile().get_graph().draw_mermaid(), end="")
    return 0


def cmd_node_agent(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from cluster.node_agent import NodeAgent, NvmlReader, NvmlUnavailable, command_line_matches

    logging.basicConfig(level=logging.INFO, format="%(asctime)s node-agent %(message)s")
    if args.interval <= 0:
        raise UsageError("--interval must be a positive number of seconds")
    try:
        is_model_server = command_line_matches(args.model_server_pattern)
    except re.error as exc:
        raise UsageError(f"--model-server-pattern is not a valid regex: {exc}") from None
    try:
        reader = NvmlReader(is_model_server=is_model_server)
    except NvmlUnavailable as exc:
        raise UsageError(
            f"{exc} (the node agent runs on a GB10 node with its NVIDIA driver)"
        ) from None

    async def run() -> None:
        agent = NodeAgent(args.node_id, args.router, args.token, reader, interval_s=args.interval)
        try:
            await agent.run(iterations=args.count)
        finally:
            await agent.aclose()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except PermissionError as exc:
        raise UsageError(str(exc)) from None
    finally:
        reader.close()
    return 0


def cmd_audit_export(args: argparse.Namespace) -> int:
    import asyncio

    from app.backends import open_audit_store
    from service.audit import AuditQuery, to_jsonl

    settings = _settings(args)
    filters = {k: v for k, v in {"tenant": args.tenant, "user_id": args.user}.items() if v}

    async def export() -> int:
        store = await open_audit_store(settings.database_url, settings.state_dir)
        written, offset = 0, 0
        try:
            while True:
                page = await store.query(
                    AuditQuery(filters, args.since, args.until, limit=1000, offset=offset)
                )
                if not page:
                    return written
                sys.stdout.write(to_jsonl(page))
                written += len(page)
                offset += len(page)
        finally:
            await store.close()

    count = asyncio.run(export())
    print(f"gb10-router: exported {count} audit records", file=sys.stderr)
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings.jwt_secret is None:
        raise UsageError("ROUTER_JWT_SECRET is not set: it signs the token")
    if args.ttl <= 0:
        raise UsageError("--ttl must be a positive number of seconds")
    wanted = {ADMIN: args.admin, OPERATOR: args.operator, GLOBAL_ADMIN: args.global_admin}
    roles = [role for role, on in wanted.items() if on]
    print(
        issue_token(
            settings.jwt_secret.get_secret_value(),
            user=args.user,
            tenant=args.tenant,
            roles=roles,
            ttl_s=args.ttl,
        )
    )
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gb10-router", description="LLM routing for GB10 GPU nodes.")
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--cluster-config", help="cluster YAML (default: config/cluster.yaml)")
        sp.add_argument("--routing-config", help="routing YAML (default: config/routing.yaml)")
        return sp

    serve = with_config(sub.add_parser("serve", help="run the HTTP service"))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="router processes on this host (more than one needs REDIS_URL)",
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="ephemeral JWT secret; prints an admin token for this run",
    )
    serve.add_argument(
        "--local-nodes",
        choices=["auto", "always", "never"],
        default="auto",
        help="start vLLM nodes on this machine's CPU; auto: with --dev, when no node is "
        "configured and none of the default cluster's answers",
    )
    serve.add_argument("--local-model", choices=["smollm2", "tiny"], default="smollm2")
    serve.add_argument(
        "--local-base-port", type=int, default=8100, help="local nodes use base+1, base+2"
    )
    serve.set_defaults(func=cmd_serve)

    classify = with_config(sub.add_parser("classify", help="route a prompt without running it"))
    classify.add_argument("prompt")
    classify.add_argument("--hint", action="append", help="a task hint (repeatable)")
    classify.set_defaults(func=cmd_classify)

    with_config(sub.add_parser("nodes", help="list the configured nodes")).set_defaults(
        func=cmd_nodes
    )
    with_config(sub.add_parser("models", help="list the model endpoints")).set_defaults(
        func=cmd_models
    )

    sub.add_parser("graph", help="print the routing graph as Mermaid").set_defaults(func=cmd_graph)
    local.register(sub)

    agent = sub.add_parser("node-agent", help="report this node's GPU (NVML) to the router")
    agent.add_argument("--node-id", required=True)
    agent.add_argument("--router", required=True, help="router base URL, e.g. http://router:8000")
    agent.add_argument("--token", required=True, help="an operator's bearer token")
    agent.add_argument("--interval", type=float, default=2.0, help="seconds between reports")
    agent.add_argument("--count", type=int, default=None, help="stop after this many reports")
    agent.add_argument(
        "--model-server-pattern",
        default=MODEL_SERVER_PATTERN,
        help="regex over process command lines: the node's model servers, whose GPU memory the "
        f"router accounts for itself (default: {MODEL_SERVER_PATTERN})",
    )
    agent.set_defaults(func=cmd_node_agent)

    export = sub.add_parser("audit-export", help="write the audit trail as JSON lines to stdout")
    export.add_argument("--tenant")
    export.add_argument("--user")
    export.add_argument("--since", type=float, help="unix time, inclusive")
    export.add_argument("--until", type=float, help="unix time, exclusive")
    export.set_defaults(func=cmd_audit_export)

    token = sub.add_parser("token", help="print a signed bearer token (needs ROUTER_JWT_SECRET)")
    token.add_argument("--user", required=True)
    token.add_argument("--tenant", required=True)
    token.add_argument("--admin", action="store_true", help="reads its tenant's audit trail")
    token.add_argument(
        "--operator", action="store_true", help="changes node status (shared by every tenant)"
    )
    token.add_argument(
        "--global-admin", action="store_true", help="every tenant's audit trail, and operator"
    )
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    token.set_defaults(func=cmd_token)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except (UsageError, RouterError, ValueError, RuntimeError) as exc:
        print(f"gb10-router: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    return code


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    if isinstance(exc, RouterError):
        return exc.message
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
