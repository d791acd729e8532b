"""The HTTP service's parts over a runtime, and what runs while it serves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from app.backends import checkpointer, job_store, open_audit_store, rate_counters
from app.runtime import RouterRuntime
from app.settings import Settings
from cluster.supervise import supervise
from graph.builder import build_graph
from service.audit_spool import SpooledAuditStore
from service.auth import Authenticator, Principal, load_api_keys
from service.context import ServiceContext, ServiceOptions
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
    return ServiceContext(
        context=runtime.context,
        registry=runtime.registry,
        health=runtime.health,
        graph=build_graph().compile(),
        authenticator=build_authenticator(settings),
        options=ServiceOptions(
            max_prompt_chars=settings.max_prompt_chars,
            max_items=settings.max_items,
            audit_prompt_text=settings.audit_prompt_text,
        ),
        limiter=RateLimiter(load_limits(settings.limits_config), rate_counters(settings)),
        jobs=job_store(),
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
        stack.push_async_callback(runtime.aclose)
        stack.push_async_callback(pipeline.shutdown)
        stack.push_async_callback(service.drain)
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
        yield
