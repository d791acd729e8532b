"""The HTTP service's parts over a runtime, and what runs while it serves."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from threadpoolctl import threadpool_limits

from app.backends import checkpointer, open_audit_store, open_job_store, rate_counters
from app.runtime import RouterRuntime
from app.settings import Settings
from cluster.supervise import supervise
from graph.builder import build_graph
from service.audit_spool import SpooledAuditStore
from service.auth import Authenticator, Principal, load_api_keys
from service.context import ServiceContext, ServiceOptions
from service.job_runner import JobRunner
from service.metrics import LiveState, RequestMetrics
from service.pipeline import Pipeline
from service.ratelimit import RateLimiter, load_limits


def build_authenticator(settings: Settings) -> Authenticator:
    """From the JWT secret and the API keys file; ValueError when neither is configured."""
    keys: dict[str, Principal] = {}
    if settings.api_keys_file is not None:
        keys = load_api_keys(settings.api_keys_file)
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    return Authenticator(secret, keys)


def build_service(runtime: RouterRuntime) -> ServiceContext:
    """The service over `runtime`; its stores open when it starts serving (`serving`)."""
    settings = runtime.settings
    metrics = runtime.context.metrics.registry
    metrics.register(LiveState(runtime.registry, runtime.context.scheduler))
    return ServiceContext(
        context=runtime.context,
        registry=runtime.registry,
        node_sync=runtime.node_sync,
        replica_id=runtime.replica,
        health=runtime.health,
        graph=build_graph().compile(),
        authenticator=build_authenticator(settings),
        options=ServiceOptions(
            max_prompt_chars=settings.max_prompt_chars,
            max_items=settings.max_items,
            audit_prompt_text=settings.audit_prompt_text,
        ),
        limiter=RateLimiter(load_limits(settings.limits_config), rate_counters(settings)),
        request_metrics=RequestMetrics(metrics),
    )


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@asynccontextmanager
async def serving(
    runtime: RouterRuntime, service: ServiceContext, pipeline: Pipeline
) -> AsyncIterator[None]:
    """Open the stores; start the health prober, the policy watcher and the sweep of
    admitted requests whose run never started; undo it all after."""
    settings = runtime.settings

    async def reload_policy() -> None:
        runtime.reload_policy()

    async with AsyncExitStack() as stack:
        saver = await stack.enter_async_context(checkpointer(settings))
        service.durable_graph = build_graph().compile(checkpointer=saver)
        service.audit = audit = await open_audit_store(settings.database_url, settings.state_dir)
        stack.push_async_callback(audit.close)
        if isinstance(audit, SpooledAuditStore):
            drainer = asyncio.create_task(
                supervise("audit spool drain", audit.drain, 2.0), name="audit spool drain"
            )
            stack.push_async_callback(_cancel, drainer)
        stack.push_async_callback(service.limiter.close)
        await runtime.node_sync.start()
        stack.push_async_callback(runtime.aclose)
        if runtime.tracing is not None:
            stack.callback(runtime.tracing.shutdown)
        service.jobs = jobs = JobRunner(
            service,
            pipeline,
            await open_job_store(settings),
            lease_s=settings.job_lease_s,
            max_attempts=settings.job_max_attempts,
            retention_s=settings.job_retention_s,
        )
        stack.push_async_callback(jobs.close)
        stack.push_async_callback(pipeline.shutdown)
        stack.push_async_callback(service.drain)
        # Stopped before the drain hands the jobs running here over. A heartbeat retries at
        # its own pace: one late past the lease costs the job to another replica.
        for name, step, interval, backoff in (
            ("job heartbeat", jobs.heartbeat, settings.job_heartbeat_s, settings.job_heartbeat_s),
            ("job takeover", jobs.take_over, settings.job_heartbeat_s, settings.job_lease_s),
            ("job prune", jobs.prune, 600.0, 600.0),
        ):
            loop = asyncio.create_task(
                supervise(name, step, interval, max_backoff_s=backoff), name=name
            )
            stack.push_async_callback(_cancel, loop)
        if settings.health_interval_s > 0:
            prober = runtime.prober()
            await prober.start(settings.telemetry_max_age_s)
            stack.push_async_callback(prober.stop)
        sweeper = asyncio.create_task(
            supervise("unclaimed-request sweep", pipeline.close_unclaimed, 10.0),
            name="unclaimed-request sweep",
        )
        stack.push_async_callback(_cancel, sweeper)
        if settings.policy_reload_s > 0:
            watcher = asyncio.create_task(
                supervise("policy watcher", reload_policy, settings.policy_reload_s),
                name="policy watcher",
            )
            stack.push_async_callback(_cancel, watcher)
        # numpy's products here are small (the classifier's), and idle BLAS threads spin on
        # the cores the event loop and the encoder need: one thread, for the whole process.
        threadpool_limits(limits=1, user_api="blas")
        # What exists now (the encoder, the compiled graphs, the clients) lives as long as
        # the process: frozen out of the collector's generations, a full collection under
        # load no longer walks it.
        gc.collect()
        gc.freeze()
        yield
