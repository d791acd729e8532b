"""The specification's JSON shapes, made from the router's typed records in this one place.

`/api/llm/process`, the job API, LangServe's serializer, the command line and the Python API
all render through these functions.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from cluster.completion import CallResult, Completion
from cluster.health import HealthBoard
from cluster.pool import Endpoint
from cluster.registry import NodeState
from cluster.scheduler import NodeRef, QueueEntry
from graph.records import (
    BatchItem,
    BranchResult,
    ChainStep,
    JobResult,
    SchedulingReport,
    Validation,
    job_of,
)
from graph.state import RouterOutput
from policies.errors import ErrorInfo
from policies.merge import MergeReport
from policies.usage import Usage
from routing.router import RoutingDecision


def routing_json(d: RoutingDecision) -> dict[str, Any]:
    """Task type, model, priority, confidence, the runners-up and why."""
    out: dict[str, Any] = {
        "task_type": d.task_type.value,
        "model": d.model,
        "endpoint": d.model,
        "priority": d.priority,
        "candidates": list(d.candidates),
        "confidence": d.confidence,
        "layer": d.layer.value,
        "reasons": list(d.reasons),
        "alternates": [{"task_type": a.task_type.value, "score": a.score} for a in d.alternates],
        "override": None if d.override is None else d.override.value,
    }
    if d.operation is not None:
        out.update(operation=d.operation, step=d.step)
    return out


def node_ref_json(ref: NodeRef) -> dict[str, Any]:
    return {
        "node_id": ref.node_id,
        "model": ref.model,
        "endpoint": ref.endpoint,
        "vram_reserved_gb": ref.vram_reserved_gb,
    }


def scheduling_json(s: SchedulingReport) -> dict[str, Any]:
    """Execution mode, the node(s) reserved and why, and the wait for capacity."""
    return {
        "job_id": s.job_id,
        "execution_mode": s.execution_mode.value,
        "dispatched_as": s.dispatched_as.value,
        "node": {"node_id": s.node.node_id, "endpoint": s.node.endpoint},
        "nodes": [node_ref_json(ref) for ref in s.nodes],
        "reason": s.reason,
        "queued": s.queued,
        "queue_wait_s": round(s.queue_wait_s, 4),
    }


def usage_json(usage: Usage) -> dict[str, int]:
    return dataclasses.asdict(usage)


def message_json(c: Completion) -> dict[str, Any]:
    """The assistant turn: its text, or none beside the tools it called, as OpenAI sends it."""
    message: dict[str, Any] = {"role": "assistant", "content": c.content}
    if c.tool_calls:
        message["content"] = c.content or None
        message["tool_calls"] = list(c.tool_calls)
    return message


def completion_json(c: Completion) -> dict[str, Any]:
    """OpenAI's chat-completion shape."""
    out: dict[str, Any] = {"id": c.id, "object": "chat.completion"}
    if c.created is not None:
        out["created"] = c.created
    out.update(
        model=c.model,
        choices=[{"index": 0, "message": message_json(c), "finish_reason": c.finish_reason}],
        usage=usage_json(c.usage),
    )
    return out


def call_json(r: CallResult) -> dict[str, Any]:
    """A model call's completion, with who answered, how fast and how sure."""
    out = completion_json(r.completion)
    out.update(
        model_name=r.model,
        node_id=r.node_id,
        endpoint=r.endpoint,
        latency_ms=r.latency_ms,
        confidence=r.confidence,
    )
    if r.cache_hit:
        out["cache_hit"] = True
    if r.failed_over_from is not None:
        out["failed_over_from"] = dataclasses.asdict(r.failed_over_from)
    return out


def error_json(e: ErrorInfo) -> dict[str, Any]:
    out: dict[str, Any] = {"code": e.code, "message": e.message, "http_status": e.http_status}
    if e.retry_after_s is not None:
        out["retry_after_s"] = e.retry_after_s
    return out


def branch_json(b: BranchResult) -> dict[str, Any]:
    """One call of a step in full, as graph updates carry it."""
    return {
        "step": b.step,
        "branch": b.branch,
        "label": b.label,
        "model": b.model,
        "node_id": b.node_id,
        "first_item": b.first_item,
        "item_count": b.item_count,
        "result": None if b.call is None else call_json(b.call),
        "error": None if b.error is None else error_json(b.error),
    }


def branch_summary_json(b: BranchResult) -> dict[str, Any]:
    """One call of a merged step, in brief: who, which items (`[first, last]`, or each index
    when a retry asked about scattered ones), how fast, or why it failed."""
    out: dict[str, Any] = {"label": b.label, "model": b.model, "node_id": b.node_id}
    asked = b.items_asked
    if asked and asked != list(range(asked[0], asked[0] + len(asked))):
        out["items"] = list(asked)  # a retry's scattered items, each named
    elif b.item_count:
        first = b.first_item or 0
        out["items"] = [b.first_item, first + b.item_count - 1]
    if b.call is not None:
        out["latency_ms"] = b.call.latency_ms
        out["confidence"] = b.call.confidence
    else:
        out["error"] = None if b.error is None else error_json(b.error)
    return out


def merge_json(m: MergeReport) -> dict[str, Any]:
    return {
        "strategy": m.strategy.value,
        "merged_response": m.merged_response,
        "used": list(m.used),
        "used_indices": list(m.used_indices),
        "reason": m.reason,
        "notes": list(m.notes),
        "scores": dict(m.scores),
    }


def chain_step_json(s: ChainStep) -> dict[str, Any]:
    return {
        "step": s.step,
        "operation": s.operation,
        "task_type": s.task_type.value,
        "model": s.model,
        "node_id": s.node_id,
        "output": s.output,
        "latency_ms": s.latency_ms,
        "scheduling": None if s.scheduling is None else scheduling_json(s.scheduling),
    }


def result_json(r: JobResult) -> dict[str, Any]:
    """The answer in OpenAI's shape, with merge details or the chain's steps."""
    out = call_json(r.call) if r.call is not None else completion_json(r.completion)
    if r.merge is not None:
        out["merge"] = merge_json(r.merge)
        out["branches"] = [branch_summary_json(b) for b in r.branches]
    if r.chain:
        out["chain"] = [chain_step_json(s) for s in r.chain]
    if r.items:
        out["items"] = [batch_item_json(i) for i in r.items]
    if r.validation is not None:
        out["validation"] = validation_json(r.validation)
    return out


def validation_json(v: Validation) -> dict[str, Any]:
    """The answer's check: its kind, passed/repaired/failed, why, and any conversions."""
    return {
        "kind": v.kind,
        "status": v.status.value,
        "error": v.error,
        "attempts": v.attempts,
        "warnings": list(v.warnings),
        "conversions": dict(v.conversions),
    }


def batch_item_json(i: BatchItem) -> dict[str, Any]:
    """One batch item's answer, who gave it, and why it was retried or is missing."""
    return {
        "index": i.index,
        "status": i.status.value,
        "answer": i.answer,
        "model": i.model,
        "node_id": i.node_id,
        "confidence": i.confidence,
        "problem": i.problem,
    }


def models_used(out: RouterOutput) -> list[str]:
    """Models that answered, in order of first use."""
    result = out.get("result")
    if out.get("chain"):
        names = [step.model for step in out["chain"]]
    elif result is not None and result.branches:
        names = [b.model for b in result.branches if b.call is not None]
    elif result is not None and result.call is not None:
        names = [result.call.model]
    else:
        routing = out.get("routing")
        names = [routing.model] if routing is not None else []
    return list(dict.fromkeys(n for n in names if n))


def response_json(out: RouterOutput) -> dict[str, Any]:
    """A finished run as `/api/llm/process` answers it: JSON-ready (dicts, lists, strings,
    numbers, booleans and None alone)."""
    body: dict[str, Any] = {k: jsonable(v) for k, v in out.items()}
    body["models_used"] = models_used(out)
    result = out.get("result")
    if result is not None and result.merge is not None:
        body["strategy"] = result.merge.strategy.value
    body["cache_hit"] = result is not None and result.cache_hit
    return body


def node_json(node: NodeState, health: HealthBoard) -> dict[str, Any]:
    """The specification's node shape, plus the router's reservations and vLLM's load."""
    load = node.load
    return {
        "node_id": node.config.id,
        "hostname": node.config.hostname,
        "url": node.config.url,
        "vram_total_gb": node.vram_total_gb,
        "vram_used_gb": round(node.vram_used_gb, 3),
        "vram_available_gb": round(node.vram_available_gb, 3),
        "vram_reserved_gb": round(node.reserved_gb, 3),
        "compute_utilization": round(node.compute_utilization, 4),
        "status": node.status.value,
        "models_loaded": list(node.config.models),
        "jobs_in_flight": node.in_flight,
        "updated_at": node.updated_at,
        "models_down": sorted(health.down_models(node.config.id)),
        "vllm": None
        if load is None
        else {
            "num_requests_running": load.running,
            "num_requests_waiting": load.waiting,
            "kv_cache_usage_perc": load.kv_cache_usage,
        },
        "telemetry_at": node.telemetry_at,
        **node.extra,
    }


def endpoint_json(endpoint: Endpoint, health: HealthBoard) -> dict[str, Any]:
    """A model endpoint, its node, and what the health board says of it."""
    record = health.get(endpoint.node_id, endpoint.model)
    return {
        "model_name": endpoint.model,
        "node_id": endpoint.node_id,
        "endpoint_url": endpoint.base_url,
        "served_name": endpoint.served_name,
        "is_available": health.is_up(endpoint.node_id, endpoint.model),
        "last_error": record.last_error,
        "calls": record.calls,
        "failures": record.failures,
    }


def queue_entry_json(entry: QueueEntry) -> dict[str, Any]:
    return dataclasses.asdict(entry)


def tenant_queue_json(entries: list[QueueEntry], tenant: str) -> list[dict[str, Any]]:
    """`tenant`'s entries among the queue's, under the job ids the tenant knows them by, with
    their place in the whole queue; other tenants' jobs are not shown."""
    mine = []
    for position, entry in enumerate(entries):
        job_id = job_of(entry.job_id, tenant)
        if job_id is not None:
            shown = queue_entry_json(dataclasses.replace(entry, job_id=job_id))
            mine.append({**shown, "position": position})
    return mine


_RENDERERS: dict[type, Any] = {
    RoutingDecision: routing_json,
    SchedulingReport: scheduling_json,
    JobResult: result_json,
    ChainStep: chain_step_json,
    BranchResult: branch_json,
    BatchItem: batch_item_json,
    Validation: validation_json,
    CallResult: call_json,
    Completion: completion_json,
    MergeReport: merge_json,
    NodeRef: node_ref_json,
    ErrorInfo: error_json,
    Usage: usage_json,
    QueueEntry: queue_entry_json,
}


def jsonable(value: Any) -> Any:
    """`value` with every typed record in it rendered as its JSON shape, enums as their values."""
    render = _RENDERERS.get(type(value))
    if render is not None:
        return render(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    return value
