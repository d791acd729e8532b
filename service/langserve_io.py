"""LangServe at `/graph`: each input a request of the caller's, through the request pipeline.

LangServe calls `admit` (its per-request config modifier) before it answers, so a refusal is
a plain 401/422/429 even on the streaming routes; the admitted tickets ride in the run's
config to `GovernedGraph`, which runs each and closes it (tokens spent, outcome audited).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import get_config_list
from langgraph.types import Send
from langserve import add_routes
from langserve.serialization import WellKnownLCSerializer
from langserve.serialization import default as langserve_default
from pydantic import BaseModel, RootModel, ValidationError, create_model

from graph.state import RouterOutput
from service.context import ServiceContext, current_principal
from service.graph_stream import StreamFailed, governed_stream
from service.pipeline import Pipeline, Ticket
from service.responses import error_json, jsonable
from service.schemas import GraphInput, GraphOutput

#: Config metadata key that carries the admitted tickets' audit record ids, in input order.
TICKETS = "router_tickets"


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
        try:
            return orjson.dumps(obj, default=_default, option=orjson.OPT_PASSTHROUGH_DATACLASS)
        except orjson.JSONEncodeError:
            # orjson stops at 64-bit integers, which a caller's config metadata may exceed.
            return json.dumps(obj, default=_default).encode()


def _drop_null(schema: Any) -> Any:
    if isinstance(schema, dict):
        options = schema.get("anyOf")
        if isinstance(options, list):
            kept = [o for o in options if o != {"type": "null"}]
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            if len(kept) == 1 and len(kept) < len(options):
                return _drop_null({**rest, **kept[0]})
            if 1 < len(kept) < len(options):
                return _drop_null({**rest, "anyOf": kept})
        # A null default would start the playground's form off invalid.
        return {k: _drop_null(v) for k, v in schema.items() if (k, v) != ("default", None)}
    if isinstance(schema, list):
        return [_drop_null(v) for v in schema]
    return schema


def _null_free(cls: type[BaseModel]) -> type[BaseModel]:
    """`cls` with a JSON schema stripped of null branches."""
    base_schema = cls.model_json_schema

    def model_json_schema(*args: Any, **kwargs: Any) -> dict[str, Any]:
        schema: dict[str, Any] = _drop_null(base_schema(*args, **kwargs))
        return schema

    cls.model_json_schema = model_json_schema  # type: ignore[method-assign]
    return cls


def without_null_branches(model: type[BaseModel]) -> type[BaseModel]:
    """A model that validates as `model` does but whose JSON schema has no `{"type": "null"}`
    branches: the playground's form renderer fails on them ("Unknown type") and shows a
    blank page."""
    if model.__pydantic_root_model__:
        root: Any = RootModel[model.model_fields["root"].annotation]  # type: ignore[misc]
        return _null_free(create_model(model.__name__, __base__=root))
    return _null_free(create_model(model.__name__, __doc__=model.__doc__, __base__=model))


class GovernedGraph(Runnable[dict[str, Any], Any]):
    """The routing graph as LangServe serves it: every input runs under its admitted ticket,
    with the caller's identity, and is closed through the pipeline whatever happens."""

    def __init__(self, service: ServiceContext, pipeline: Pipeline) -> None:
        self._service = service
        self._pipeline = pipeline

    def get_input_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        return GraphInput

    def get_output_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        return GraphOutput

    def invoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> Any:
        raise NotImplementedError("the routing graph runs asynchronously: use ainvoke")

    def _tickets(self, config: RunnableConfig | None, count: int) -> list[Ticket]:
        ids = list(((config or {}).get("metadata") or {}).get(TICKETS) or [])
        if len(ids) != count:
            raise RuntimeError("a /graph run without its admission tickets")
        return [self._pipeline.claim(record_id) for record_id in ids]

    @staticmethod
    def _input(input: dict[str, Any], ticket: Ticket) -> dict[str, Any]:
        # LangServe hands the validated input over field by field: read it back as the
        # request it was, to build the graph's input as /process does. Identity and job come
        # from the admitted ticket, never from what the body says.
        principal = ticket.principal
        return GraphInput.model_validate(input).graph_input(
            user=principal.user, tenant=principal.tenant, job_id=ticket.job_id
        )

    async def _run(
        self, graph_input: dict[str, Any], ticket: Ticket, config: RunnableConfig | None
    ) -> RouterOutput:
        async with self._pipeline.outcome(ticket) as run:
            run.out = await self._service.run(
                self._input(graph_input, ticket), config, on_usage=run.spent
            )
            return run.out

    async def ainvoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> RouterOutput:
        [ticket] = self._tickets(config, 1)
        return await self._run(input, ticket, config)

    async def abatch(
        self,
        inputs: list[dict[str, Any]],
        config: RunnableConfig | Sequence[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        configs = get_config_list(config, len(inputs))
        tickets = self._tickets(configs[0] if configs else None, len(inputs))
        outcomes = await asyncio.gather(
            *(
                self._run(graph_input, ticket, cfg)
                for graph_input, ticket, cfg in zip(inputs, tickets, configs, strict=True)
            ),
            return_exceptions=True,
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures and not return_exceptions:
            raise failures[0]
        return list(outcomes)

    async def astream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        [ticket] = self._tickets(config, 1)
        graph_input = self._input(input, ticket)
        async for item in governed_stream(
            self._service, self._pipeline, ticket, graph_input, config=config
        ):
            # A failure raised here would cut the connection after LangServe's opaque error
            # event: the stream ends with the error itself instead.
            yield (
                {"error": error_json(item.error.info())} if isinstance(item, StreamFailed) else item
            )


def mount_graph(app: FastAPI, service: ServiceContext, pipeline: Pipeline) -> None:
    """Mount invoke, batch, stream, stream_log, stream_events, schemas and the playground at
    `/graph`, every input admitted through `pipeline`."""

    def validated(raw: list[Any], body: Any) -> list[dict[str, Any]]:
        try:
            parsed = [GraphInput.model_validate(item) for item in raw]
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(), body=body) from None
        return [item.graph_fields() for item in parsed]

    async def admit(config: dict[str, Any], request: Request) -> dict[str, Any]:
        # Batch requests with one config per input come here once per config: admit once.
        tickets: list[Ticket] | None = getattr(request.state, "router_tickets", None)
        if tickets is None:
            principal = request.state.principal
            body = await request.json()
            endpoint = request.url.path.rstrip("/").rsplit("/", 1)[-1]
            raw = (
                (body.get("inputs") if endpoint == "batch" else [body.get("input")])
                if isinstance(body, dict)
                else None
            )
            if not isinstance(raw, list):
                error = {"loc": ("body", "inputs"), "msg": "must be a list", "type": "list_type"}
                raise RequestValidationError([error], body=body)
            inputs = validated(raw, body)
            tickets = await pipeline.admit(principal, inputs, f"graph/{endpoint}")
            request.state.router_tickets = tickets
        metadata = dict(config.get("metadata") or {})
        principal = tickets[0].principal if tickets else request.state.principal
        metadata.update(
            router_user=principal.user,
            router_tenant=principal.tenant,
            **{TICKETS: [t.record_id for t in tickets]},
        )
        return {**config, "metadata": metadata}

    add_routes(
        app,
        GovernedGraph(service, pipeline),
        path="/graph",
        input_type=without_null_branches(GraphInput),
        output_type=without_null_branches(GraphOutput),
        config_keys=("metadata", "tags"),
        per_req_config_modifier=admit,
        dependencies=[Depends(current_principal)],
        serializer=GraphSerializer(),
    )
