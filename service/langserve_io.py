"""LangServe at `/graph`: the graph with the caller's identity and a Send-aware serializer."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Depends, FastAPI, Request
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langgraph.types import Send
from langserve import add_routes
from langserve.serialization import WellKnownLCSerializer
from langserve.serialization import default as langserve_default

from service.auth import AuthError
from service.context import ServiceContext, current_principal


def _default(obj: Any) -> Any:
    # Graph events carry Send objects, which LangServe's own fallback cannot encode.
    if isinstance(obj, Send):
        return {"send": {"node": obj.node, "arg": obj.arg}}
    return langserve_default(obj)


class GraphSerializer(WellKnownLCSerializer):
    """LangServe's serializer, able to encode LangGraph `Send` objects."""

    def dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=_default)


def _with_identity(graph_input: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
    metadata = config.get("metadata") or {}
    return {**graph_input, "user": metadata["router_user"], "tenant": metadata["router_tenant"]}


def mount_graph(app: FastAPI, service: ServiceContext) -> None:
    """Mount invoke, batch, stream, stream_events, schemas and the playground at `/graph`."""
    bound: Runnable[Any, Any] = service.graph.bind(context=service.runtime)
    runnable = RunnableLambda(_with_identity) | bound

    async def identity(config: dict[str, Any], request: Request) -> dict[str, Any]:
        # The principal comes from the verified token, never from the client's config.
        try:
            principal = service.authenticator.authenticate(request.headers.get("authorization"))
        except AuthError:
            return config
        metadata = dict(config.get("metadata") or {})
        metadata.update(router_user=principal.user, router_tenant=principal.tenant)
        return {**config, "metadata": metadata}

    add_routes(
        app,
        runnable,
        path="/graph",
        input_type=service.graph.get_input_schema(),
        output_type=service.graph.get_output_schema(),
        config_keys=("metadata", "tags"),
        per_req_config_modifier=identity,
        dependencies=[Depends(current_principal)],
        serializer=GraphSerializer(),
    )
