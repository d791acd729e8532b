"""A local server that speaks the OpenAI chat-completions API, as a vLLM node would.

Paths: `/{model}/v1/...` (a path-routing proxy, the cluster's default layout) and `/v1/...`.
Every request is recorded, so tests can check which model on which node each call reached.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.net import free_port

Reply = Callable[[str, list[dict[str, Any]]], str]
ToolUse = Callable[[dict[str, Any]], list[dict[str, Any]] | None]
"""Given a request body, the tool calls to answer with (`id`, `name`, `arguments`), or None."""


def echo_reply(model: str, messages: list[dict[str, Any]]) -> str:
    """`<model>: <first 40 chars of the last message>`."""
    return f"{model}: {str(messages[-1]['content'])[:40]}"


def asked_items(text: str) -> list[int]:
    """The item numbers a batch prompt (or a retry's) lists, one `7. item` line each."""
    return [int(line.split(".")[0]) for line in text.splitlines() if line[:1].isdigit()]


FUNCTION = ("name", "arguments")


@dataclass
class Behaviour:
    """How the fake answers; tests change it between requests."""

    reply: Reply = echo_reply
    tool_use: ToolUse | None = None
    delay_s: float = 0.0
    fail_status: int | None = None
    logprob: float | None = -0.1
    alternatives: Callable[[str], dict[str, float]] | None = None
    """The top logprobs at a token, by the token (its own logprob among them, if listed)."""
    finish_reason: str = "stop"
    per_model_logprob: dict[str, float] = field(default_factory=dict)
    per_model_delay_s: dict[str, float] = field(default_factory=dict)
    per_model_fail_status: dict[str, int] = field(default_factory=dict)
    healthy: bool = True
    served: list[str] | None = None
    """Names `/v1/models` lists; every name is accepted when None."""
    answers_as: str | None = None
    """The model an answer names; the one asked for when None. A vLLM server that serves one
    model under several names (`--served-model-name`) may answer with another of them."""
    waiting: float = 0.0
    kv_cache_usage: float = 0.0
    stream_gap_s: float = 0.0
    """Pause between streamed words, as a model generating them would."""
    die_after_words: int | None = None
    """Drop the connection after streaming this many words, as a crashing server would."""


@dataclass
class Call:
    """One request the fake received."""

    node: str
    path_model: str | None
    served_model: str
    messages: list[dict[str, Any]]
    body: dict[str, Any]
    at: float
    streamed_at: float | None = None
    """When a streamed answer's last word went out."""


class FakeOpenAIBackend:
    """One fake node: an OpenAI-compatible server on a loopback port, run in a thread."""

    def __init__(self, node: str, behaviour: Behaviour | None = None) -> None:
        self.node = node
        self.behaviour = behaviour or Behaviour()
        self.calls: list[Call] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._ids = itertools.count(1)
        self.port = free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Starlette:
        async def chat(request: Request) -> Response:
            body = await request.json()
            path_model = request.path_params.get("model")
            served = str(body.get("model"))
            b = self.behaviour
            call = Call(self.node, path_model, served, body["messages"], body, time.time())
            self.calls.append(call)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                delay = b.per_model_delay_s.get(path_model or served, b.delay_s)
                if delay:
                    await asyncio.sleep(delay)
            finally:
                self.in_flight -= 1
            fail_status = b.per_model_fail_status.get(path_model or served, b.fail_status)
            if fail_status is not None:
                return JSONResponse(
                    {"error": {"message": "fake failure", "type": "server_error"}},
                    status_code=fail_status,
                )
            calls = None if b.tool_use is None or not body.get("tools") else b.tool_use(body)
            text = "" if calls else b.reply(path_model or served, body["messages"])
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": b.finish_reason,
            }
            if calls:
                choice["message"]["content"] = None
                choice["message"]["tool_calls"] = [
                    {"id": c["id"], "type": "function", "function": {k: c[k] for k in FUNCTION}}
                    for c in calls
                ]
                choice["finish_reason"] = "tool_calls"
            logprob = b.per_model_logprob.get(path_model or served, b.logprob)
            if body.get("logprobs") and logprob is not None:
                # Words and the runs between them: tokens that spell the answer, as vLLM's do.
                tokens = re.findall(r"\w+|\W+", text) or [""]
                choice["logprobs"] = {"content": [_token(t, logprob, body, b) for t in tokens]}
            prompt_tokens = sum(len(str(m["content"]).split()) for m in body["messages"])
            completion_tokens = len(text.split())
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
            response_id = f"chatcmpl-{self.node}-{next(self._ids)}"
            named = b.answers_as or served
            if body.get("stream"):
                return StreamingResponse(
                    _sse_chunks(response_id, named, choice, usage, body, call, b),
                    media_type="text/event-stream",
                )
            return JSONResponse(
                {
                    "id": response_id,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": named,
                    "choices": [choice],
                    "usage": usage,
                }
            )

        async def health(request: Request) -> Response:
            return Response(status_code=200 if self.behaviour.healthy else 503)

        async def models(request: Request) -> JSONResponse:
            names = self.behaviour.served
            if names is None:
                path_model = request.path_params.get("model")
                names = [path_model] if path_model else []
            return JSONResponse(
                {"object": "list", "data": [{"id": n, "object": "model"} for n in names]}
            )

        async def metrics(request: Request) -> Response:
            b = self.behaviour
            text = (
                "# TYPE vllm:num_requests_running gauge\n"
                f'vllm:num_requests_running{{model_name="fake"}} {self.in_flight}\n'
                f'vllm:num_requests_waiting{{model_name="fake"}} {b.waiting}\n'
                f'vllm:kv_cache_usage_perc{{model_name="fake"}} {b.kv_cache_usage}\n'
            )
            return Response(text, media_type="text/plain")

        return Starlette(
            routes=[
                Route("/{model}/v1/chat/completions", chat, methods=["POST"]),
                Route("/v1/chat/completions", chat, methods=["POST"]),
                Route("/health", health),
                Route("/{model}/health", health),
                Route("/v1/models", models),
                Route("/{model}/v1/models", models),
                Route("/metrics", metrics),
                Route("/{model}/metrics", metrics),
            ]
        )

    def start(self) -> FakeOpenAIBackend:
        config = uvicorn.Config(
            self.app(), host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError(f"fake backend {self.node} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def models_called(self) -> list[str]:
        return [c.path_model or c.served_model for c in self.calls]


def _token(token: str, logprob: float, body: dict[str, Any], b: Behaviour) -> dict[str, Any]:
    top = b.alternatives(token) if b.alternatives and body.get("top_logprobs") else {}
    return {
        "token": token,
        "logprob": top.get(token, logprob),
        "bytes": None,
        "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in top.items()],
    }


async def _sse_chunks(
    response_id: str,
    served: str,
    choice: dict[str, Any],
    usage: dict[str, int],
    body: dict[str, Any],
    call: Call,
    behaviour: Behaviour,
) -> Any:
    """The answer as OpenAI streaming chunks, one word each, as vLLM streams them."""
    import json

    words = str(choice["message"]["content"] or "").split(" ")
    logprobs = (choice.get("logprobs") or {}).get("content") or []
    base = {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": served,
    }
    for i, word in enumerate(words):
        delta: dict[str, Any] = {"content": word if i == 0 else f" {word}"}
        if i == 0:
            delta["role"] = "assistant"
        chunk_choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": None}
        if i < len(logprobs):
            chunk_choice["logprobs"] = {"content": [logprobs[i]]}
        if i and behaviour.stream_gap_s:
            await asyncio.sleep(behaviour.stream_gap_s)
        if i == behaviour.die_after_words:
            raise ConnectionAbortedError(f"{call.node} died mid-answer")
        yield f"data: {json.dumps({**base, 'choices': [chunk_choice]})}\n\n"
    call.streamed_at = time.time()
    for index, call in enumerate(choice["message"].get("tool_calls") or []):
        function = call["function"]
        half = len(function["arguments"]) // 2
        pieces = [
            {"id": call["id"], "type": "function", "function": {"name": function["name"]}},
            {"function": {"arguments": function["arguments"][:half]}},
            {"function": {"arguments": function["arguments"][half:]}},
        ]
        for piece in pieces:
            delta = {"tool_calls": [{"index": index, **piece}]}
            chunk_choice = {"index": 0, "delta": delta, "finish_reason": None}
            yield f"data: {json.dumps({**base, 'choices': [chunk_choice]})}\n\n"
    final = {"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}
    yield f"data: {json.dumps({**base, 'choices': [final]})}\n\n"
    if (body.get("stream_options") or {}).get("include_usage"):
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n"
    yield "data: [DONE]\n\n"


def main() -> None:
    """Serve one fake node in this process: `python -m tests.fakes.openai_backend PORT [NAME]`."""
    import sys

    port = int(sys.argv[1])
    fake = FakeOpenAIBackend(sys.argv[2] if len(sys.argv) > 2 else "fake")
    fake.port = port
    uvicorn.run(fake.app(), host="127.0.0.1", port=port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
