"""`GET /status`: the cluster at a glance, rendered on the server (no JavaScript), refreshing
itself: each node's VRAM, utilisation and KV-cache use, its models up or down, its operator
state; the queue; the viewer's tenant's recent routing decisions."""

from __future__ import annotations

import time
from html import escape
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cluster.registry import NodeState
from service.audit import AuditQuery
from service.context import Service, User

router = APIRouter(tags=["status"])
REFRESH_S = 5
STYLE = """body{font-family:system-ui;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{padding:.3rem .6rem;text-align:left}
tr:nth-child(even){background:#f4f4f4}.node{border:1px solid #ccc;border-radius:6px;
padding:.8rem 1rem;margin:.6rem 0;display:inline-block;min-width:22rem;vertical-align:top}
.bar{background:#eee;border-radius:3px;height:.8rem;width:14rem;display:inline-block}
.fill{background:#3a7;height:100%;border-radius:3px}.hot{background:#d73}
.up{color:#292}.down{color:#b22}small{color:#666}"""


def _bar(label: str, share: float, text: str) -> str:
    share = min(1.0, max(0.0, share))
    hot = " hot" if share > 0.85 else ""
    return (
        f'<div>{label}: <span class="bar"><span class="fill{hot}" '
        f'style="width:{share * 100:.0f}%;display:block"></span></span> {escape(text)}</div>'
    )


def _node(node: NodeState, models: list[tuple[str, bool]]) -> str:
    kv = node.vllm_load.kv_cache_usage
    state = node.status.value + (" (operator)" if node.operator_status is not None else "")
    up = " ".join(
        f'<span class="{"up" if ok else "down"}">{escape(m)} {"up" if ok else "down"}</span>'
        for m, ok in models
    )
    return (
        f'<div class="node"><h3>{escape(node.config.id)} <small>{escape(state)}</small></h3>'
        + _bar(
            "VRAM",
            node.vram_used_gb / node.vram_total_gb,
            f"{node.vram_used_gb:.0f} / {node.vram_total_gb:.0f} GB",
        )
        + _bar("GPU", node.compute_utilization, f"{node.compute_utilization:.0%}")
        + _bar("KV cache", kv, f"{kv:.0%}")
        + f"<div>jobs in flight: {node.in_flight}</div><div>{up}</div></div>"
    )


def _decisions(records: list[dict[str, Any]]) -> str:
    rows = "".join(
        "<tr>"
        + "".join(
            f"<td>{escape(str(v))}</td>"
            for v in (
                time.strftime("%H:%M:%S", time.localtime(r["at"])),
                r.get("entry_point") or "",
                r.get("task_type") or "",
                r.get("model") or "",
                r.get("node") or "",
                f"{r.get('latency_ms') or 0:.0f} ms",
                r["status"],
            )
        )
        + "</tr>"
        for r in records
    )
    head = "".join(
        f"<th>{h}</th>"
        for h in ("time", "entry point", "task type", "model", "node", "latency", "outcome")
    )
    return f"<table><tr>{head}</tr>{rows or '<tr><td colspan=7>none yet</td></tr>'}</table>"


@router.get("/status", response_class=HTMLResponse)
async def status_page(principal: User, service: Service) -> HTMLResponse:
    """The status page; the recent decisions are the viewer's tenant's alone."""
    endpoints = service.context.pool.endpoints()
    nodes = "".join(
        _node(
            node,
            [
                (e.model, service.health.is_up(e.node_id, e.model))
                for e in endpoints
                if e.node_id == node.config.id
            ],
        )
        for node in service.registry.all()
    )
    records: list[dict[str, Any]] = []
    if service.audit is not None:
        query = AuditQuery(filters={"tenant": principal.tenant}, limit=20)
        records = [r for r in await service.audit.query(query) if r["status"] != "accepted"]
    queue = service.context.scheduler.queue_depth
    return HTMLResponse(
        f"""<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_S}"><title>gb10-router status</title>
<style>{STYLE}</style></head><body>
<h1>gb10-router <small>signed in as {escape(principal.user)}
({escape(principal.tenant)})</small></h1>
<h2>Nodes</h2>{nodes}
<h2>Queue</h2><p>{queue} job(s) waiting for capacity</p>
<h2>Recent routing decisions <small>tenant {escape(principal.tenant)}</small></h2>
{_decisions(records)}
<p><small>refreshes every {REFRESH_S} s · <a href="/graph/playground/">playground</a> ·
<a href="/docs">API docs</a> · <a href="/metrics">metrics</a></small></p>
<form method="post" action="/signout"><button>Sign out</button></form></body></html>"""
    )
