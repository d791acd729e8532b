"""The FastAPI application: `/api/llm`, LangServe at `/graph`, `/healthz` and the docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response

from app.runtime import RouterRuntime, build_runtime
from app.serving import build_service, serving
from app.settings import Settings
from service.errors import install_error_handlers
from service.langserve_io import mount_graph
from service.metrics import CONTENT_TYPE, exposition
from service.openai_api import router as openai_router
from service.pipeline import Pipeline
from service.routes import router as llm_router
from service.sessions import router as signin_router
from service.settle import SettleAdmissions
from service.status_page import router as status_router


def create_app(
    settings: Settings | None = None, *, runtime: RouterRuntime | None = None
) -> FastAPI:
    """Build the app; bad configuration raises ValueError naming the field."""
    runtime = runtime or build_runtime(settings)
    service = build_service(runtime)
    pipeline = Pipeline(service)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with serving(runtime, service, pipeline):
            yield

    app = FastAPI(
        title="gb10-router",
        version="0.1.0",
        description="Routes SOC LLM requests to specialised models on GB10 GPU nodes.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.pipeline = pipeline
    install_error_handlers(app)
    app.add_middleware(SettleAdmissions, pipeline=pipeline)
    app.include_router(llm_router)
    app.include_router(openai_router)
    app.include_router(signin_router)
    app.include_router(status_router)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, Any]:
        """Liveness, without authentication."""
        return {"status": "ok", "nodes_available": runtime.registry.available_count()}

    @app.get("/metrics", tags=["health"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus metrics, without authentication; no label names a tenant or user."""
        return Response(exposition(runtime.context.metrics.registry), media_type=CONTENT_TYPE)

    mount_graph(app, service, pipeline)
    return app


def app_from_environment() -> FastAPI:
    """The app built from the environment alone: what each `serve --workers` process runs."""
    return create_app(Settings())
