"""The `/api/llm` endpoints."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from graph.records import new_job_id, reservation_key
from graph.state import RouterOutput
from routing.router import RoutingDecision
from service.audit import AuditQuery
from service.auth import GLOBAL_ADMIN
from service.context import Admin, Operator, Service, User
from service.pipeline import NO_MODEL, Pipe
from service.responses import (
    endpoint_json,
    node_json,
    response_json,
    routing_json,
    tenant_queue_json,
)
from service.schemas import ClassificationRequest, NodeStatusUpdate, ProcessRequest
from service.validation import check_request

router = APIRouter(prefix="/api/llm", tags=["llm"])


async def _unless_client_leaves(request: Request, work: Awaitable[RouterOutput]) -> Any:
    """Run `work`; if the client disconnects first, cancel it (dropping any queue place)."""
    task = asyncio.ensure_future(work)
    try:
        while not task.done():
            done, _ = await asyncio.wait({task}, timeout=0.25)
            if not done and await request.is_disconnected():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return Response(status_code=499)
    except asyncio.CancelledError:
        # The handler itself is being cancelled (shutdown): the work goes with it.
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        raise
    return task.result()


@router.post("/process", responses={202: {"description": "accepted; poll the job"}})
async def process(
    body: ProcessRequest, principal: User, service: Service, pipeline: Pipe, request: Request
) -> Any:
    """Route, schedule, call and merge; with `async: true`, answer 202 and run in the background.

    Every request, admitted or refused, leaves one audit record before its response.
    """
    graph_input = body.graph_input(
        user=principal.user, tenant=principal.tenant, job_id=body.job_id or new_job_id()
    )
    if body.run_async:
        jobs = service.job_runner()
        [ticket] = await pipeline.admit(principal, [graph_input], "process")
        # Recorded before the 202 leaves: from then on, some replica completes it.
        await jobs.submit(ticket, graph_input)
        return JSONResponse(
            {
                "job_id": ticket.job_id,
                "status": "queued",
                "status_url": f"/api/llm/jobs/{ticket.job_id}",
            },
            status_code=202,
            headers=ticket.headers,
        )
    async with pipeline.governed(principal, graph_input, "process") as run:
        out = await _unless_client_leaves(request, service.run(graph_input, on_usage=run.spent))
        if isinstance(out, Response):
            run.abandoned = True
            return out
        run.out = out
    return JSONResponse(response_json(out), headers=run.ticket.headers)


@router.get("/queue")
async def queue(principal: User, service: Service) -> dict[str, Any]:
    """How deep the queue is (across replicas), and the caller's tenant's jobs in it, in
    dispatch order."""
    scheduler = service.context.scheduler
    await scheduler.refresh()
    jobs = scheduler.queue_snapshot()
    return {
        "depth": len(jobs),
        "max_length": scheduler.max_queue,
        "aging_s": scheduler.aging_s,
        "longest_wait_s": max((j.waiting_s for j in jobs), default=0.0),
        "jobs": tenant_queue_json(jobs, principal.tenant),
    }


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, principal: User, service: Service) -> dict[str, Any]:
    """Status and result of an asynchronous job of the caller's tenant, whichever replica
    accepted or runs it."""
    record = await service.job_runner().get(job_id, principal.tenant)
    if record is None:
        raise HTTPException(404, f"no job {job_id}")
    return record.to_dict()


@router.get("/models")
async def list_models(principal: User, service: Service) -> dict[str, Any]:
    """Every model endpoint with its node and health."""
    endpoints = service.context.pool.endpoints()
    models = [endpoint_json(e, service.health) for e in endpoints]
    return {"models": models, "total": len(models)}


@router.get("/nodes")
async def list_nodes(principal: User, service: Service) -> dict[str, Any]:
    """Every GPU node's state, how many are available, and the queue."""
    registry, scheduler = service.registry, service.context.scheduler
    await scheduler.refresh()
    return {
        "nodes": [node_json(n, service.health) for n in registry.all()],
        "available_count": registry.available_count(),
        "queue": {
            "depth": scheduler.queue_depth,
            "jobs": tenant_queue_json(scheduler.queue_snapshot(), principal.tenant),
        },
    }


@router.post("/nodes/status")
async def update_node_status(
    body: NodeStatusUpdate, operator: Operator, service: Service
) -> dict[str, Any]:
    """Operator: set a node's VRAM use, utilisation or status (shared by every tenant)."""
    node = service.registry.update_status(
        body.node_id,
        vram_used_gb=body.vram_used_gb,
        compute_utilization=body.compute_utilization,
        status=body.status,
        extra=None if body.gpu is None else {"gpu": body.gpu.model_dump()},
        telemetry=body.gpu is not None,
    )
    reported = body.vram_used_gb is not None or body.compute_utilization is not None
    await service.node_sync.updated(
        node.config.id, status=body.status is not None, report=reported or body.gpu is not None
    )
    return {
        "updated": True,
        "node": node_json(node, service.health),
        "updated_by": operator.user,
    }


@router.get("/routing/rules")
async def routing_rules(principal: User, service: Service) -> dict[str, Any]:
    """The routing policy in force and the active classifier."""
    router = service.context.router
    policy = router.policy
    source = router.source
    return {
        "classifier": router.classifier.describe(),
        "policy_file": None
        if source is None
        else {
            "path": str(source.path),
            "loaded_at": source.loaded_at,
            "last_reload_error": source.last_error,
        },
        "judge": policy.judge.model_dump(),
        "default_task_type": policy.default_task_type.value,
        "task_types": {t.value: p.model_dump() for t, p in policy.task_types.items()},
        "hints": {k: v.value for k, v in policy.hints.items()},
        "hint_weight": policy.hint_weight,
        "rules": [r.model_dump(mode="json") for r in policy.rules],
        "operations": {k: v.value for k, v in policy.operations.items()},
    }


@router.post("/test-classification")
async def test_classification(
    body: ClassificationRequest, principal: User, service: Service, pipeline: Pipe
) -> dict[str, Any]:
    """Classify and pick a model without running anything. When the routing policy has an LLM
    judge, the request may call it, so it is admitted, limited and audited like any other."""
    router = service.context.router

    async def decide(job_id: str) -> RoutingDecision:
        return await router.adecide(
            body.prompt,
            body.task_hints,
            task_type=body.task_type,
            model=body.model,
            job_id=reservation_key(principal.tenant, job_id),
        )

    if not pipeline.judged():
        check_request(service.options, body.prompt, [])
        decision = await decide(new_job_id())
    else:
        graph_input = {
            **body.model_dump(exclude_none=True, mode="json"),
            "user": principal.user,
            "tenant": principal.tenant,
        }
        async with pipeline.governed(principal, graph_input, "test-classification") as run:
            try:
                decision = await decide(run.ticket.job_id)
            finally:
                service.context.scheduler.release_job(
                    reservation_key(principal.tenant, run.ticket.job_id)
                )
            run.out = {"routing": decision, "usage": decision.usage}
            run.model = router.policy.judge.model if decision.judged else NO_MODEL
    return {"prompt_chars": len(body.prompt), "routing": routing_json(decision)}


@router.get("/audit")
async def audit_log(
    admin: Admin,
    service: Service,
    tenant: str | None = None,
    user: str | None = None,
    job_id: str | None = None,
    status: str | None = None,
    model: str | None = None,
    error_code: str | None = None,
    entry_point: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    # SQLite and PostgreSQL take a 64-bit offset; past it there is nothing to skip to.
    offset: int = Query(default=0, ge=0, le=2**63 - 1),
) -> dict[str, Any]:
    """Admin: audit records, oldest first. Admins see their tenant; global admins any tenant."""
    if tenant is not None and tenant != admin.tenant and GLOBAL_ADMIN not in admin.roles:
        raise HTTPException(403, "only a global admin reads another tenant's audit trail")
    scope = (
        tenant if tenant is not None else (None if GLOBAL_ADMIN in admin.roles else admin.tenant)
    )
    filters = {
        k: v
        for k, v in {
            "tenant": scope,
            "user_id": user,
            "job_id": job_id,
            "status": status,
            "model": model,
            "error_code": error_code,
            "entry_point": entry_point,
        }.items()
        if v is not None
    }
    query = AuditQuery(filters, since, until, limit, offset)
    assert service.audit is not None
    return {
        "records": await service.audit.query(query),
        "total": await service.audit.count(query),
        "limit": limit,
        "offset": offset,
        "spooled": await service.audit.spooled(),
    }
