"""The FastAPI application: `/api/llm`, LangServe at `/graph`, `/healthz` and the docs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from cluster.checkpoints import open_checkpointer
from cluster.runtime import RouterRuntime, build_runtime
from cluster.settings import Settings
from graph.builder import build_graph
from service.audit import open_audit_store
from service.auth import Authenticator, Principal, load_api_keys
from service.context import ServiceContext
from service.errors import install_error_handlers
from service.langserve_io import mount_graph
from service.ratelimit import Counters, MemoryCounters, RateLimiter, RedisCounters, load_limits
from service.routes import router as llm_router


def build_authenticator(settings: Settings) -> Authenticator:
    """From the JWT secret and the API keys file; ValueError when neither is configured."""
    keys: dict[str, Principal] = {}
    if settings.api_keys_file is not None:
        keys = load_api_keys(settings.api_keys_file)
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    return Authenticator(secret, keys)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def create_app(
    settings: Settings | None = None, *, runtime: RouterRuntime | None = None
) -> FastAPI:
    """Build the app; bad configuration raises ValueError naming the field."""
    runtime = runtime or build_runtime(settings)
    settings = runtime.settings
    counters: Counters = (
        RedisCounters(settings.redis_url) if settings.redis_url else MemoryCounters()
    )
    service = ServiceContext(
        runtime=runtime,
        graph=build_graph().compile(),
        authenticator=build_authenticator(settings),
        limiter=RateLimiter(load_limits(settings.limits_config), counters),
    )

    async def watch_policy() -> None:
        while True:
            await asyncio.sleep(settings.policy_reload_s)
            runtime.reload_policy()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            checkpointer = await stack.enter_async_context(open_checkpointer(settings))
            service.durable_graph = build_graph().compile(checkpointer=checkpointer)
            service.audit = await open_audit_store(settings.database_url, settings.state_dir)
            stack.push_async_callback(service.audit.close)
            stack.push_async_callback(counters.close)
            stack.push_async_callback(runtime.cache.close)
            stack.push_async_callback(runtime.pool.aclose)
            stack.push_async_callback(service.drain)
            if settings.health_interval_s > 0:
                prober = runtime.prober()
                await prober.start(settings.telemetry_max_age_s)
                stack.push_async_callback(prober.stop)
            if settings.policy_reload_s > 0:
                watcher = asyncio.create_task(watch_policy(), name="policy watcher")
                stack.push_async_callback(_cancel, watcher)
            yield

    app = FastAPI(
        title="gb10-router",
        version="0.1.0",
        description="Routes SOC LLM requests to specialised models on GB10 GPU nodes.",
        lifespan=lifespan,
    )
    app.state.service = service
    install_error_handlers(app)
    app.include_router(llm_router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, Any]:
        """Liveness, without authentication."""
        return {"status": "ok", "nodes_available": runtime.registry.available_count()}

    mount_graph(app, service)
    return app
