"""The OpenAI-compatible front door: `POST /v1/chat/completions` and `GET /v1/models`.

`model` is `auto` (the router classifies), a task type (`rule_generation`) or a model
(`qwen-coder`); placement still picks the node. The conversation goes to the model whole;
what the last user turn asks is what is classified. Every call goes through the request
pipeline like any other entry point. The routing shows in `x-gb10-*` headers and, when not
streaming, in a top-level `gb10` field.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any, Literal, cast

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from langchain_core.messages import AIMessageChunk
from pydantic import BaseModel, ConfigDict, Field

from graph.records import new_job_id, reservation_key
from graph.state import RouterOutput
from policies.errors import ModelNotFound, RouterError
from policies.types import ExecutionMode, TaskType
from service.context import Service, User
from service.langserve_io import absorb
from service.pipeline import Pipe, Pipeline, Ticket
from service.responses import completion_json, endpoint_json, error_json, usage_json
from service.schemas import ChatMessage

router = APIRouter(prefix="/v1", tags=["openai"])

AUTO = "auto"


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False
    """End the stream with a chunk that carries the usage."""


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat-completion request, as far as the router serves it."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    """`auto`, a task type or a model."""
    messages: list[ChatMessage] = Field(min_length=1, max_length=256)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    """OpenAI's newer name for `max_tokens`."""
    stop: str | list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    n: Literal[1] | None = None
    """One answer per request."""
    user: str | None = Field(default=None, max_length=256)
    """The caller's own end-user id; identity comes from the token all the same."""


def _parameters(body: ChatCompletionRequest) -> dict[str, Any]:
    params = body.model_dump(
        include={
            "temperature",
            "top_p",
            "max_tokens",
            "stop",
            "seed",
            "presence_penalty",
            "frequency_penalty",
        },
        exclude_none=True,
    )
    if body.max_completion_tokens is not None:
        params["max_tokens"] = body.max_completion_tokens
    return params


def _asked(messages: list[ChatMessage]) -> str:
    """What is classified: the last user turn's text."""
    for message in reversed(messages):
        if message.role == "user":
            return message.text()
    # No user turn (a system prompt alone): classify what there is.
    return "\n".join(m.text() for m in messages)


def _graph_input(
    body: ChatCompletionRequest, service: Any, user: str, tenant: str
) -> dict[str, Any]:
    """The graph input for a chat request; ModelNotFound for an unknown `model`. Content
    parts that cannot be served are refused where every request is validated."""
    graph_input: dict[str, Any] = {
        "prompt": _asked(body.messages),
        "messages": [m.model_dump(exclude_none=True) for m in body.messages],
        "parameters": _parameters(body),
        "job_id": new_job_id(),
        "user": user,
        "tenant": tenant,
    }
    task_types = [t.value for t in TaskType]
    models = list(service.context.router.models)
    if body.model in task_types:
        graph_input["task_type"] = body.model
    elif body.model in models:
        graph_input["model"] = body.model
    elif body.model != AUTO:
        valid = ", ".join([AUTO, *task_types, *models])
        raise ModelNotFound(f"model {body.model!r} does not exist; valid: {valid}")
    return graph_input


def _routing_headers(out: RouterOutput | dict[str, Any], job_id: str) -> dict[str, str]:
    routing = out.get("routing")
    scheduling = out.get("scheduling")
    headers = {"x-gb10-job-id": job_id}
    if routing is not None:
        headers.update(
            {
                "x-gb10-task-type": routing.task_type.value,
                "x-gb10-model": routing.model,
                "x-gb10-confidence": f"{routing.confidence:.3f}",
            }
        )
    if scheduling is not None:
        headers["x-gb10-model"] = scheduling.node.model
        headers["x-gb10-node"] = scheduling.node.node_id
    return headers


def _chunk(
    completion_id: str, model: str, created: int, delta: dict[str, Any], finish: str | None
) -> bytes:
    body = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


@router.get("/models")
async def list_models(principal: User, service: Service) -> dict[str, Any]:
    """`auto`, the task types and the models (with their nodes and health)."""
    created = int(time.time())
    data: list[dict[str, Any]] = [
        {"id": AUTO, "object": "model", "created": created, "owned_by": "gb10-router"}
    ]
    data += [
        {"id": t.value, "object": "model", "created": created, "owned_by": "gb10-router"}
        for t in TaskType
    ]
    endpoints = service.context.pool.endpoints()
    for name in service.context.router.models:
        data.append(
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "gb10-router",
                "endpoints": [
                    endpoint_json(e, service.health) for e in endpoints if e.model == name
                ],
            }
        )
    return {"object": "list", "data": data}


@router.post("/chat/completions")
async def chat_completions(
    body: ChatCompletionRequest, principal: User, service: Service, pipeline: Pipe
) -> Any:
    """OpenAI's chat completions, routed: `model` may be `auto`, a task type or a model."""
    graph_input = _graph_input(body, service, principal.user, principal.tenant)
    if body.stream:
        [ticket] = await pipeline.admit(principal, [graph_input], "openai/chat")
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = _stream(service, pipeline, ticket, graph_input, include_usage)
        # Run until the routing is known (or fails, as a plain error response): its headers
        # go out with the first byte.
        headers = json.loads(await anext(events))
        return StreamingResponse(_rest(events), media_type="text/event-stream", headers=headers)
    async with pipeline.governed(principal, graph_input, "openai/chat") as run:
        run.out = await service.run(graph_input, on_usage=run.spent)
    out = run.out
    result = out["result"]
    assert result is not None
    response = completion_json(result.completion)
    headers = _routing_headers(out, run.ticket.job_id)
    response["gb10"] = {k.removeprefix("x-gb10-"): v for k, v in headers.items()}
    return JSONResponse(response, headers=headers)


async def _rest(events: AsyncIterator[str | bytes]) -> AsyncIterator[bytes]:
    async for event in events:
        yield event if isinstance(event, bytes) else event.encode()


async def _stream(
    service: Any,
    pipeline: Pipeline,
    ticket: Ticket,
    graph_input: dict[str, Any],
    include_usage: bool,
) -> AsyncIterator[str | bytes]:
    """First the routing headers (as JSON), then the answer as OpenAI's streamed chunks: the
    model's tokens as they come when one model answers; a merged answer whole at the end."""
    created = int(time.time())
    completion_id = f"chatcmpl-{ticket.job_id}"
    announced = False
    streamed = False
    single = True
    model = ""
    try:
        async with pipeline.outcome(ticket) as run:
            out: dict[str, Any] = {}
            try:
                async for mode, chunk in service.graph.astream(
                    graph_input,
                    context=service.context,
                    stream_mode=["updates", "messages"],
                ):
                    if mode == "updates":
                        planned = (chunk.get("classify") or {}).get("planned_mode")
                        if planned is not None:
                            single = ExecutionMode.parse(planned) is ExecutionMode.SINGLE
                        absorb(out, chunk)
                        run.out = cast(RouterOutput, out)
                        if not announced and out.get("scheduling") is not None:
                            announced = True
                            headers = _routing_headers(out, ticket.job_id)
                            model = headers.get("x-gb10-model", "")
                            yield json.dumps(headers)
                            yield _chunk(completion_id, model, created, {"role": "assistant"}, None)
                        continue
                    message, meta = chunk
                    if (
                        single
                        and meta.get("langgraph_node") == "call_model"
                        and isinstance(message, AIMessageChunk)
                        and isinstance(message.content, str)
                        and message.content
                    ):
                        streamed = True
                        yield _chunk(
                            completion_id, model, created, {"content": message.content}, None
                        )
            except RouterError as exc:
                if not announced:
                    raise  # before the first byte: an ordinary error response
                run.failure = exc
                yield f"data: {json.dumps({'error': error_json(exc.info())})}\n\n"
                yield "data: [DONE]\n\n"
                return
            result = out.get("result")
            completion = None if result is None else result.completion
            if completion is not None and not streamed:
                yield _chunk(completion_id, model, created, {"content": completion.content}, None)
            finish = None if completion is None else completion.finish_reason
            yield _chunk(completion_id, model, created, {}, finish or "stop")
            if include_usage and out.get("usage") is not None:
                usage = {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage_json(out["usage"]),
                }
                yield f"data: {json.dumps(usage)}\n\n"
            yield "data: [DONE]\n\n"
    finally:
        service.context.scheduler.release_job(
            reservation_key(ticket.principal.tenant, ticket.job_id)
        )
