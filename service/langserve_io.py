"""LangServe at `/graph`: the graph with the caller's identity and a serializer for its records."""

from __future__ import annotations

import dataclasses
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
from service.responses import jsonable
from service.schemas import GraphOutput
from service.validation import check_request


def _default(obj: Any) -> Any:
    # Graph events carry Send objects, which LangServe's own fallback cannot encode.
    if isinstance(obj, Send):
        return {"send": {"node": obj.node, "arg": jsonable(obj.arg)}}
    rendered = jsonable(obj)
    if rendered is not obj:
        return rendered
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        # Any other dataclass field by field; records inside it come back here.
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return langserve_default(obj)


class GraphSerializer(WellKnownLCSerializer):
    """LangServe's serializer, rendering the graph's records and `Send`s as JSON."""

    def dumps(self, obj: Any) -> bytes:
        # Records are dataclasses, which orjson would otherwise encode field by field.
        return orjson.dumps(obj, default=_default, option=orjson.OPT_PASSTHROUGH_DATACLASS)


def mount_graph(app: FastAPI, service: ServiceContext) -> None:
    """Mount invoke, batch, stream, stream_events, schemas and the playground at `/graph`."""

    def admitted(graph_input: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        metadata = config.get("metadata") or {}
        check_request(
            service.options, str(graph_input.get("prompt", "")), graph_input.get("items") or []
        )
        return {**graph_input, "user": metadata["router_user"], "tenant": metadata["router_tenant"]}

    bound: Runnable[Any, Any] = service.graph.bind(context=service.context)
    runnable = RunnableLambda(admitted) | bound

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
        output_type=GraphOutput,
        config_keys=("metadata", "tags"),
        per_req_config_modifier=identity,
        dependencies=[Depends(current_principal)],
        serializer=GraphSerializer(),
    )
