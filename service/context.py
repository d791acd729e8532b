"""The service's parts, reached by handlers through FastAPI dependencies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException, Request

from cluster.errors import RouterError, UnknownNode
from cluster.runtime import RouterRuntime
from graph.state import RouterOutput
from service.audit import AuditRecord, AuditStore
from service.auth import Authenticator, AuthError, Principal
from service.jobs import JobRecord, MemoryJobStore
from service.ratelimit import RateLimiter

OUTPUT_KEYS = frozenset(RouterOutput.__annotations__)


class JobNotFound(UnknownNode):
    """No job of that id for this tenant (another tenant's job looks the same)."""

    code = "job_not_found"


def models_used(response: dict[str, Any]) -> list[str]:
    """Models that answered, in order of first use."""
    result = response.get("result") or {}
    if response.get("chain"):
        names = [step["model"] for step in response["chain"]]
    elif result.get("branches"):
        names = [b["model"] for b in result["branches"] if "error" not in b]
    else:
        names = [result.get("model_name") or response.get("routing", {}).get("model", "")]
    return list(dict.fromkeys(n for n in names if n))


@dataclass
class ServiceContext:
    """Runtime, compiled graph, authenticator and job store of one running service."""

    runtime: RouterRuntime
    graph: Any
    authenticator: Authenticator
    limiter: RateLimiter | None = None
    """Requests and tokens per minute, per user and tenant."""
    durable_graph: Any = None
    """The graph compiled with a checkpointer, for chains (set when the service starts)."""
    audit: AuditStore | None = None
    """The audit trail (opened when the service starts)."""
    jobs: MemoryJobStore = field(default_factory=MemoryJobStore)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self, graph_input: dict[str, Any]) -> dict[str, Any]:
        """Run one request through the graph; capacity it still holds is released after.

        Chains run on the checkpointed graph under their job_id: resubmitted after a restart,
        one resumes from its last finished step, and a finished one returns its result.
        """
        job_id = graph_input["job_id"]
        chained = bool(graph_input.get("requires_chaining") or graph_input.get("operations"))
        try:
            if chained and self.durable_graph is not None:
                out = await self._run_durable(graph_input)
            else:
                out = await self.graph.ainvoke(graph_input, context=self.runtime)
        finally:
            self.runtime.scheduler.release_job(job_id)
        out["models_used"] = models_used(out)
        if out.get("result", {}).get("merge"):
            out["strategy"] = out["result"]["merge"]["strategy"]
        return out

    async def _run_durable(self, graph_input: dict[str, Any]) -> dict[str, Any]:
        config = {"configurable": {"thread_id": graph_input["job_id"]}}
        snapshot = await self.durable_graph.aget_state(config)
        values: dict[str, Any] = dict(snapshot.values or {})
        if not values:
            out: dict[str, Any] = await self.durable_graph.ainvoke(
                graph_input, config, context=self.runtime
            )
            return out
        if values.get("tenant") != graph_input["tenant"]:
            raise JobNotFound(f"no job {graph_input['job_id']}")
        if snapshot.next:
            out = await self.durable_graph.ainvoke(None, config, context=self.runtime)
            return out
        return {k: v for k, v in values.items() if k in OUTPUT_KEYS}

    async def record(self, entry: AuditRecord) -> None:
        """Write an audit record; it must be durable before the response leaves."""
        if self.audit is None:
            raise RuntimeError("the audit store is not open: the service has not started")
        await self.audit.write(entry)

    def submit(
        self,
        record: JobRecord,
        graph_input: dict[str, Any],
        audit: Callable[[dict[str, Any] | None, int, str], AuditRecord],
    ) -> None:
        """Run a job in the background; its outcome goes on the record and the audit trail."""

        async def job() -> None:
            record.status = "running"
            try:
                record.response = await self.run(graph_input)
                record.status = "completed"
                await self.record(audit(record.response, 200, "completed"))
            except RouterError as exc:
                record.status = "failed"
                record.error = {
                    "code": exc.code,
                    "message": exc.message,
                    "http_status": exc.http_status,
                }
                await self.record(audit(None, exc.http_status, exc.code))
            finally:
                record.finished_at = time.time()

        self.jobs.add(record)
        task = asyncio.create_task(job(), name=f"job {record.job_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def drain(self) -> None:
        """Cancel background jobs (at shutdown)."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def get_service(request: Request) -> ServiceContext:
    service: ServiceContext = request.app.state.service
    return service


def current_principal(
    request: Request,
    service: Annotated[ServiceContext, Depends(get_service)],
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    """The authenticated caller; 401 otherwise."""
    try:
        principal = service.authenticator.authenticate(authorization)
    except AuthError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    request.state.principal = principal
    return principal


def require_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The caller, who must hold the admin or global-admin role; 403 otherwise."""
    if not principal.is_admin:
        raise HTTPException(403, "admin role required")
    return principal


Service = Annotated[ServiceContext, Depends(get_service)]
User = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(require_admin)]
