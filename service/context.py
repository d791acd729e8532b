"""The service's parts, reached by handlers through FastAPI dependencies."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import Depends, Header, HTTPException, Request
from langchain_core.runnables import RunnableConfig

from cluster.health import HealthBoard
from cluster.node_sync import NodeSync
from cluster.postgres import UNREACHABLE
from cluster.registry import NodeRegistry
from graph.context import RouterContext
from graph.records import reservation_key
from graph.state import RouterOutput, restored
from policies.errors import StoreUnavailable, UnknownNode
from policies.usage import Usage
from service.audit import AuditRecord, AuditStore
from service.auth import Authenticator, AuthError, Principal
from service.csrf import SESSION, CsrfError, check_csrf
from service.metrics import RequestMetrics
from service.ratelimit import RateLimiter

if TYPE_CHECKING:
    from service.job_runner import JobRunner

log = logging.getLogger(__name__)
OUTPUT_KEYS = frozenset(RouterOutput.__annotations__)
#: Prefix of a durable chain's thread, `v3:{tenant}/{job_id}`. v1 checkpoints hold dicts
#: this graph cannot read and v2 threads were keyed by job id alone (job ids are unique only
#: within a tenant), so chains from before start afresh.
CHECKPOINT_FORMAT = "v3"


class JobNotFound(UnknownNode):
    """No job of that id for this tenant (another tenant's job looks the same)."""

    code = "job_not_found"


@dataclass(frozen=True)
class ServiceOptions:
    """What the HTTP layer enforces on requests and keeps in the audit trail."""

    max_prompt_chars: int
    """Longest prompt accepted."""
    max_items: int
    """Most batch items one request may carry."""
    audit_prompt_text: bool
    """Keep the prompt text in the audit trail (its SHA-256 and length are always kept)."""


@dataclass
class ServiceContext:
    """The graph's context and compiled graphs, the node state, and the governance stores."""

    context: RouterContext
    """The parts every graph run receives."""
    registry: NodeRegistry
    """Live node state."""
    health: HealthBoard
    """Whether each model server is up."""
    node_sync: NodeSync
    """Saves node state changed here (for restarts and the other replicas)."""
    graph: Any
    """The graph compiled without a checkpointer."""
    authenticator: Authenticator
    options: ServiceOptions
    limiter: RateLimiter
    """Requests and tokens per minute, per user and tenant."""
    durable_graph: Any = None
    """The graph compiled with a checkpointer, for chains (set when the service starts)."""
    request_metrics: RequestMetrics | None = None
    """Counts each request from its audit record (`GET /metrics`)."""
    audit: AuditStore | None = None
    """The audit trail (opened when the service starts)."""
    jobs: JobRunner | None = None
    """Asynchronous jobs, shared by the replicas (started when the service starts)."""
    replica_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """This replica, among those that share the stores: the owner of the jobs it runs."""

    async def run(
        self,
        graph_input: dict[str, Any],
        config: RunnableConfig | None = None,
        *,
        on_usage: Callable[[Usage], None] | None = None,
    ) -> RouterOutput:
        """Run one request through the graph; capacity it still holds is released after.
        `on_usage` hears the tokens of each step as it finishes, so a run that fails midway
        still accounts for what it spent.

        Chains run on the checkpointed graph under their job_id: resubmitted after a restart,
        one resumes from its last finished step, and a finished one returns its result (with
        no tokens spent by this request).
        """
        reservations = reservation_key(graph_input["tenant"], graph_input["job_id"])
        chained = bool(graph_input.get("requires_chaining") or graph_input.get("operations"))
        try:
            if chained and self.durable_graph is not None:
                try:
                    return await self._run_durable(graph_input, config, on_usage)
                except UNREACHABLE as exc:
                    raise StoreUnavailable(
                        f"the chain checkpoint store is unreachable: {exc}",
                        retry_after_s=5,
                    ) from exc
            return await self._stream(self.graph, graph_input, config, on_usage)
        finally:
            self.context.scheduler.release_job(reservations)

    async def _stream(
        self,
        graph: Any,
        graph_input: dict[str, Any] | None,
        config: RunnableConfig | None,
        on_usage: Callable[[Usage], None] | None,
    ) -> RouterOutput:
        """`graph.ainvoke`, told each step's tokens as they are spent."""
        if on_usage is None:
            out: RouterOutput = await graph.ainvoke(graph_input, config, context=self.context)
            return out
        final: dict[str, Any] = {}
        async for mode, chunk in graph.astream(
            graph_input, config, context=self.context, stream_mode=["updates", "values"]
        ):
            if mode == "values":
                final = chunk
                continue
            for update in chunk.values():
                if isinstance(update, dict) and isinstance(update.get("usage"), Usage):
                    on_usage(update["usage"])
        return cast(RouterOutput, final)

    async def _run_durable(
        self,
        graph_input: dict[str, Any],
        caller: RunnableConfig | None,
        on_usage: Callable[[Usage], None] | None,
    ) -> RouterOutput:
        thread = (
            f"{CHECKPOINT_FORMAT}:{reservation_key(graph_input['tenant'], graph_input['job_id'])}"
        )
        config: RunnableConfig = {**(caller or {}), "configurable": {"thread_id": thread}}
        snapshot = await self.durable_graph.aget_state(config)
        values: dict[str, Any] = dict(snapshot.values or {})
        if not values:
            return await self._stream(self.durable_graph, graph_input, config, on_usage)
        if values.get("tenant") != graph_input["tenant"]:
            raise JobNotFound(f"no job {graph_input['job_id']}")
        if snapshot.next:
            return await self._stream(self.durable_graph, None, config, on_usage)
        finished = restored({k: v for k, v in values.items() if k in OUTPUT_KEYS})
        finished["usage"] = Usage()
        return cast(RouterOutput, finished)

    async def record(self, entry: AuditRecord) -> None:
        """Write an audit record; it must be durable before the response leaves."""
        if self.audit is None:
            raise RuntimeError("the audit store is not open: the service has not started")
        await self.audit.write(entry)
        if self.request_metrics is not None:
            self.request_metrics.observe(entry)

    def job_runner(self) -> JobRunner:
        """The asynchronous jobs; RuntimeError before the service starts."""
        if self.jobs is None:
            raise RuntimeError("the job store is not open: the service has not started")
        return self.jobs

    async def drain(self) -> None:
        """At shutdown: hand the asynchronous jobs running here over to another replica (or
        this router's next start), neither failed nor audited."""
        if self.jobs is not None:
            await self.jobs.stop()


# The dependencies are coroutines because FastAPI runs a plain `def` dependency in its
# thread pool: a thread hop per dependency per request, for work that never blocks.
async def get_service(request: Request) -> ServiceContext:
    service: ServiceContext = request.app.state.service
    return service


async def current_principal(
    request: Request,
    service: Annotated[ServiceContext, Depends(get_service)],
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    """The authenticated caller, by bearer header or else by session cookie; 401 otherwise,
    403 for a cookie-authenticated request that changes state from another site."""
    session = request.cookies.get(SESSION)
    if authorization is None and session:
        try:
            check_csrf(request)
        except CsrfError as exc:
            raise HTTPException(403, str(exc)) from None
        authorization = f"Bearer {session}"
    try:
        principal = service.authenticator.authenticate(authorization)
    except AuthError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    request.state.principal = principal
    return principal


async def require_admin(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    """The caller, who must hold the admin or global-admin role; 403 otherwise."""
    if not principal.is_admin:
        raise HTTPException(403, "admin role required")
    return principal


async def require_operator(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    """The caller, who must hold the operator or global-admin role; 403 otherwise."""
    if not principal.is_operator:
        raise HTTPException(403, "operator role required: node state is shared by every tenant")
    return principal


Service = Annotated[ServiceContext, Depends(get_service)]
User = Annotated[Principal, Depends(current_principal)]
Admin = Annotated[Principal, Depends(require_admin)]
Operator = Annotated[Principal, Depends(require_operator)]
