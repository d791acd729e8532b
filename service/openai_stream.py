"""A chat completion streamed as OpenAI's server-sent events.

The routing headers are known once the job is scheduled; then the model's tokens go out as
they arrive, usage (when asked for) last. A server that fails before its first token is
failed over unseen; one that fails after it ends the stream with an error event, since a
second model's answer cannot continue the first's.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

from langchain_core.messages import AIMessageChunk

from policies.errors import BackendUnavailable, RouterError
from policies.types import ExecutionMode
from service.context import ServiceContext
from service.graph_stream import StreamFailed, governed_stream
from service.openai_headers import routing_headers
from service.pipeline import Pipeline, Ticket
from service.responses import error_json, message_json, usage_json

DONE = b"data: [DONE]\n\n"


def delta_of(message: AIMessageChunk) -> dict[str, Any]:
    """A streamed piece of the answer as OpenAI's delta: text, or pieces of tool calls."""
    delta: dict[str, Any] = {}
    if isinstance(message.content, str) and message.content:
        delta["content"] = message.content
    calls = []
    for piece in message.tool_call_chunks:
        call: dict[str, Any] = {"index": piece["index"] or 0}
        if piece["id"]:
            call.update(id=piece["id"], type="function")
        function: dict[str, str] = {}
        if piece["name"] is not None:
            function["name"] = piece["name"]
        if piece["args"] is not None:
            function["arguments"] = piece["args"]
        call["function"] = function
        calls.append(call)
    if calls:
        delta["tool_calls"] = calls
    return delta


def event(body: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(body)}\n\n".encode()


class ChatStream:
    """One streamed chat completion: `headers()` first, then `events()`."""

    def __init__(
        self,
        service: ServiceContext,
        pipeline: Pipeline,
        ticket: Ticket,
        graph_input: dict[str, Any],
        include_usage: bool,
        named: Callable[[RouterError], RouterError],
    ) -> None:
        self._out: dict[str, Any] = {}
        self._items = governed_stream(
            service,
            pipeline,
            ticket,
            graph_input,
            stream_mode=["updates", "messages"],
            out=self._out,
            watch=self._watch,
        )
        self._job_id = ticket.job_id
        self._include_usage = include_usage
        self._named = named
        """The request's error as its caller should read it."""
        self._base = {
            "id": f"chatcmpl-{ticket.job_id}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": "",
        }
        self._single = True
        self._source: str | None = None
        """The id of the model call whose tokens the client has."""

    async def headers(self) -> dict[str, str]:
        """Run until the job is scheduled: the routing headers. A failure before then is
        raised, to be answered as an ordinary error response."""
        async for item in self._items:
            if isinstance(item, StreamFailed):
                async for _ in self._items:
                    pass  # the run's close (its audit record) comes after its last item
                raise item.error
            if self._out.get("scheduling") is not None:
                headers = routing_headers(self._out, self._job_id)
                self._base["model"] = headers.get("x-gb10-model", "")
                return headers
        raise AssertionError("the graph ended without scheduling or failing")

    async def events(self) -> AsyncIterator[bytes]:
        """The answer as OpenAI's chunks, then `[DONE]`."""
        yield self._chunk({"role": "assistant"})
        failed: StreamFailed | None = None
        # Closed here if the client leaves: the run stops and is audited as abandoned.
        async with aclosing(self._items):
            async for item in self._items:
                if isinstance(item, StreamFailed):
                    failed = item  # the last item: the loop ends once the run is closed
                    continue
                mode, chunk = item
                if mode == "messages" and (delta := self._streamed(*chunk)):
                    yield self._chunk(delta)
        if failed is not None:
            yield event({"error": error_json(self._named(failed.error).info())})
            yield DONE
            return
        result = self._out.get("result")
        completion = None if result is None else result.completion
        if completion is not None and self._source is None:
            # Nothing was streamed (a merged or cached answer): it goes out whole.
            whole = message_json(completion)
            del whole["role"]
            for index, call in enumerate(whole.get("tool_calls", [])):
                call["index"] = index
            yield self._chunk(whole)
        finish = None if completion is None else completion.finish_reason
        yield self._chunk({}, finish or "stop")
        if self._include_usage and self._out.get("usage") is not None:
            yield event({**self._base, "choices": [], "usage": usage_json(self._out["usage"])})
        yield DONE

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return event({**self._base, "choices": [choice]})

    def _streamed(self, message: Any, meta: dict[str, Any]) -> dict[str, Any]:
        """The delta to send for a token of the answering model's call, else {}."""
        if not (
            self._single
            and meta.get("langgraph_node") == "call_model"
            and isinstance(message, AIMessageChunk)
        ):
            return {}
        delta = delta_of(message)
        if delta and self._source is None:
            self._source = message.id
        return delta

    def _watch(self, item: tuple[str, Any]) -> None:
        mode, chunk = item
        if mode == "updates":
            planned = (chunk.get("classify") or {}).get("planned_mode")
            if planned is not None:
                self._single = ExecutionMode.parse(planned) is ExecutionMode.SINGLE
            return
        message, meta = chunk
        if (
            self._source is not None
            and meta.get("langgraph_node") == "call_model"
            and isinstance(message, AIMessageChunk)
            and message.id != self._source
        ):
            raise BackendUnavailable(
                "the model's server failed mid-answer; the answer above is incomplete and "
                "another model cannot continue it: send the request again"
            )
