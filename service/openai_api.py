"""The OpenAI-compatible front door: `POST /v1/chat/completions` and `GET /v1/models`.

`model` is `auto` (the router classifies), a task type (`rule_generation`) or a model
(`qwen-coder`); placement still picks the node. The conversation goes to the model whole;
what the last user turn asks is what is classified. Every call goes through the request
pipeline like any other entry point. The routing shows in `x-gb10-*` headers and, when not
streaming, in a top-level `gb10` field.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from graph.records import new_job_id
from policies.errors import ModelNotFound, RouterError
from policies.types import TaskType
from service.context import Service, User
from service.openai_headers import routing_headers
from service.openai_schemas import ChatCompletionRequest
from service.openai_stream import ChatStream
from service.pipeline import Pipe
from service.responses import completion_json, endpoint_json, validation_json
from service.schemas import ChatMessage

router = APIRouter(prefix="/v1", tags=["openai"])

AUTO = "auto"
PARAMETERS = "parameters."


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
        "parameters": body.parameters(),
        "job_id": new_job_id(),
        "user": user,
        "tenant": tenant,
        # A streamed answer is on its way to the client as it is written: checked, not
        # asked for again (a second answer would follow the first).
        "repair": not body.stream,
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


def _as_sent(body: ChatCompletionRequest) -> Callable[[RouterError], RouterError]:
    """The request's errors naming its fields as the caller sent them: the router checks
    `parameters.max_tokens`, which a chat request sends as `max_tokens` or
    `max_completion_tokens`, top-level like every generation parameter."""
    sent = "max_tokens" if body.max_completion_tokens is None else "max_completion_tokens"

    def named(error: RouterError) -> RouterError:
        field, colon, rest = error.message.partition(":")
        if not (colon and field.startswith(PARAMETERS)):
            return error
        name = field.removeprefix(PARAMETERS)
        message = f"{sent if name == 'max_tokens' else name}{colon}{rest}"
        return type(error)(message, retry_after_s=error.retry_after_s, headers=error.headers)

    return named


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
    named = _as_sent(body)
    try:
        if body.stream:
            [ticket] = await pipeline.admit(principal, [graph_input], "openai/chat")
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            stream = ChatStream(service, pipeline, ticket, graph_input, include_usage, named)
            # The routing headers go out with the first byte; a failure before them is an
            # ordinary error response.
            headers = await stream.headers()
            return StreamingResponse(
                stream.events(), media_type="text/event-stream", headers=headers
            )
        async with pipeline.governed(principal, graph_input, "openai/chat") as run:
            run.out = await service.run(graph_input, on_usage=run.spent)
    except RouterError as exc:
        raise named(exc) from None
    out = run.out
    result = out["result"]
    assert result is not None
    response = completion_json(result.completion)
    headers = routing_headers(out, run.ticket.job_id)
    # The router's name of the model, as the headers and a streamed answer give it: the
    # server's own may be an alias it shares with other models (vLLM's served-model-name).
    response["model"] = headers["x-gb10-model"]
    response["gb10"] = {k.removeprefix("x-gb10-"): v for k, v in headers.items()}
    if result.validation is not None:
        response["gb10"]["validation"] = validation_json(result.validation)
    return JSONResponse(response, headers=headers)
