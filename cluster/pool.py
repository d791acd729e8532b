"""The LLM pool: one ChatOpenAI per model deployment, with health that follows call outcomes."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    convert_to_messages,
)
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from cluster.completion import CallResult, Completion
from cluster.config import ClusterConfig
from cluster.connections import node_limits
from cluster.health import HealthBoard
from policies.confidence import confidence_from_logprobs
from policies.errors import (
    BackendMisconfigured,
    BackendRejected,
    BackendTimeout,
    BackendUnavailable,
    InvalidRequest,
    RouterError,
    UnknownModel,
    UnknownNode,
)
from policies.item_confidence import TokenLogprob
from policies.usage import Usage

#: Generation parameters a request may set; others are refused rather than silently dropped.
ALLOWED_PARAMETERS = frozenset(
    {
        "temperature",
        "max_tokens",
        "top_p",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "top_logprobs",
        "n",
        # OpenAI's tool calling and structured output, which vLLM serves.
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
    }
)


@dataclass
class Endpoint:
    """One model on one node and the ChatOpenAI client bound to it."""

    node_id: str
    model: str
    served_name: str
    base_url: str
    llm: ChatOpenAI


@dataclass(frozen=True)
class PoolOptions:
    """How the pool's clients behave."""

    timeout_s: float = 60.0
    max_retries: int = 1
    request_logprobs: bool = True
    extra_client_kwargs: dict[str, Any] = field(default_factory=dict)


def _wire(params: dict[str, Any], grammar: str | None = None) -> dict[str, Any]:
    """Parameters as ChatOpenAI sends them untouched. Given `response_format`, it would switch
    to the SDK's client-side parsing (which refuses non-strict tools); the router passes the
    format through in the body instead, and vLLM enforces it, as it does a grammar (vLLM's
    structured outputs)."""
    wired = dict(params)
    if wired.get("top_logprobs"):
        # vLLM refuses top_logprobs without logprobs, which the pool may not ask for.
        wired["logprobs"] = True
    body: dict[str, Any] = {}
    if "response_format" in wired:
        body["response_format"] = wired.pop("response_format")
    if grammar is not None:
        body["structured_outputs"] = {"grammar": grammar}
    if body:
        wired["extra_body"] = body
    return wired


def check_parameters(parameters: dict[str, Any] | None) -> dict[str, Any]:
    """Validated generation parameters; InvalidRequest names any unknown one."""
    params = dict(parameters or {})
    unknown = sorted(set(params) - ALLOWED_PARAMETERS)
    if unknown:
        valid = ", ".join(sorted(ALLOWED_PARAMETERS))
        raise InvalidRequest(f"unknown parameter(s) {', '.join(unknown)}; valid: {valid}")
    return params


def _error_from(exc: Exception, endpoint: Endpoint) -> RouterError:
    where = f"{endpoint.model} on {endpoint.node_id} ({endpoint.base_url})"
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return BackendTimeout(f"{where} did not answer in time")
    if isinstance(exc, openai.APIConnectionError):
        return BackendUnavailable(f"{where} is unreachable: {exc}")
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500 or exc.status_code == 429:
            return BackendUnavailable(f"{where} answered {exc.status_code}: {exc.message}")
        if exc.status_code in (401, 403):
            return BackendMisconfigured(
                f"{where} refused the router's credentials ({exc.status_code}): "
                f"{exc.message}; check its api_key in the cluster config"
            )
        if exc.status_code == 404:
            return BackendMisconfigured(
                f"{where} does not serve that model ({exc.status_code}): {exc.message}; "
                "check its served_name in the cluster config"
            )
        # Any other 4xx is about this request (context too long, a bad parameter).
        return BackendRejected(f"{where} refused the request ({exc.status_code}): {exc.message}")
    return BackendUnavailable(f"{where} failed: {type(exc).__name__}: {exc}")


def call_result(
    message: AIMessage, endpoint: Endpoint, latency_ms: float, created: int
) -> CallResult:
    """An AIMessage as a call result: the completion, with latency, node and confidence."""
    meta = message.response_metadata
    usage = message.usage_metadata or {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
    tokens = [t for t in (meta.get("logprobs") or {}).get("content") or [] if "logprob" in t]
    confidence = confidence_from_logprobs([t["logprob"] for t in tokens])
    content = message.content if isinstance(message.content, str) else str(message.content)
    completion = Completion(
        tool_calls=openai_tool_calls(message),
        id=str(meta.get("id") or message.id),
        model=str(meta.get("model_name") or endpoint.served_name),
        content=content,
        finish_reason=meta.get("finish_reason"),
        usage=Usage(usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]),
        created=created,
    )
    return CallResult(
        completion=completion,
        model=endpoint.model,
        node_id=endpoint.node_id,
        endpoint=endpoint.base_url,
        latency_ms=round(latency_ms, 3),
        confidence=confidence,
        tokens=[
            TokenLogprob(
                t["token"],
                t["logprob"],
                {a["token"]: a["logprob"] for a in t.get("top_logprobs") or []},
            )
            for t in tokens
        ],
    )


def openai_tool_calls(message: AIMessage) -> list[dict[str, Any]]:
    """The message's tool calls as OpenAI sends them; unparsable arguments as written."""
    calls = [(c["id"], c["name"], json.dumps(c["args"])) for c in message.tool_calls] + [
        (c["id"], c["name"], c["args"]) for c in message.invalid_tool_calls
    ]
    return [
        {"id": id_, "type": "function", "function": {"name": name, "arguments": args or ""}}
        for id_, name, args in calls
    ]


#: The HTTP responses of the model call running in this task.
_responses: ContextVar[list[httpx.Response] | None] = ContextVar("pool_responses", default=None)


async def _remember_response(response: httpx.Response) -> None:
    held = _responses.get()
    if held is not None:
        held.append(response)


async def _close_responses(opened: Token[list[httpx.Response] | None]) -> None:
    """Close the call's streamed responses that are still open, so the server stops at once.

    A call cancelled between two chunks leaves LangChain's stream generator suspended, and
    its response would close only when that generator is collected: maybe seconds later,
    while vLLM kept generating for nobody.
    """
    for response in _responses.get() or []:
        if not response.is_closed:
            await response.aclose()
    _responses.reset(opened)


@dataclass
class _Call:
    latency_ms: float = 0.0


def _messages(prompt: str, system: str | None) -> list[BaseMessage]:
    messages: list[BaseMessage] = [HumanMessage(prompt)]
    if system:
        messages.insert(0, SystemMessage(system))
    return messages


class LLMPool:
    """Calls models through ChatOpenAI clients bound to their OpenAI-compatible endpoints."""

    def __init__(
        self,
        cluster: ClusterConfig,
        options: PoolOptions,
        health: HealthBoard,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._options = options
        self._health = health
        self._max_tokens = {name: m.max_tokens for name, m in cluster.models.items()}
        self._clock = clock
        self._endpoints: dict[tuple[str, str], Endpoint] = {}
        # The pool owns its connections: ChatOpenAI's shared default client outlives event loops.
        self._http = httpx.AsyncClient(
            timeout=options.timeout_s,
            limits=node_limits(max_connections=256, max_keepalive=64),
            event_hooks={"response": [_remember_response]},
        )
        for node in cluster.nodes:
            for model, dep in node.models.items():
                served = dep.served_name or model
                base_url = ClusterConfig.base_url(node, model, dep)
                llm = ChatOpenAI(
                    model=served,
                    base_url=base_url,
                    api_key=SecretStr(dep.api_key),
                    timeout=options.timeout_s,
                    max_retries=options.max_retries,
                    logprobs=options.request_logprobs or None,
                    # A call streamed to a client (`stream_mode="messages"`) still counts.
                    stream_usage=True,
                    # httpx's read timeout bounds each chunk already. LangChain's own bound
                    # waits through asyncio.wait_for, which on Python 3.11 can swallow the
                    # cancellation of a call whose client left, streaming on for nobody.
                    stream_chunk_timeout=None,
                    http_async_client=self._http,
                    **options.extra_client_kwargs,
                )
                self._endpoints[(node.id, model)] = Endpoint(node.id, model, served, base_url, llm)

    async def aclose(self) -> None:
        """Close the pool's connections."""
        await self._http.aclose()

    # -- lookup -------------------------------------------------------------------
    @property
    def models(self) -> list[str]:
        return sorted({model for _, model in self._endpoints})

    def endpoints(self) -> list[Endpoint]:
        return list(self._endpoints.values())

    def endpoint(self, model_name: str, node_id: str) -> Endpoint:
        """The endpoint of a model on a node; UnknownModel or UnknownNode naming what exists."""
        endpoint = self._endpoints.get((node_id, model_name))
        if endpoint is not None:
            return endpoint
        nodes = [n for (n, m) in self._endpoints if m == model_name]
        if not nodes:
            raise UnknownModel(f"unknown model {model_name!r}; valid: {', '.join(self.models)}")
        raise UnknownNode(f"{model_name} is not served on {node_id!r}; it is on {', '.join(nodes)}")

    # -- calls --------------------------------------------------------------------
    async def call_model(
        self,
        model_name: str,
        prompt: str,
        parameters: dict[str, Any] | None = None,
        *,
        node_id: str,
        system: str | None = None,
        messages: list[dict[str, Any]] | None = None,
        grammar: str | None = None,
    ) -> CallResult:
        """One chat completion, of `prompt` or of the OpenAI-shaped conversation `messages`,
        held to `grammar` when given; raises a RouterError subclass on failure."""
        endpoint = self.endpoint(model_name, node_id)
        params = self.checked(model_name, parameters)
        sent = convert_to_messages(messages) if messages else _messages(prompt, system)
        async with self._tracked(endpoint) as call:
            message = await endpoint.llm.ainvoke(sent, **_wire(params, grammar))
        assert isinstance(message, AIMessage)
        return call_result(message, endpoint, call.latency_ms, int(time.time()))

    async def stream_model(
        self,
        model_name: str,
        prompt: str,
        parameters: dict[str, Any] | None = None,
        *,
        node_id: str,
        system: str | None = None,
    ) -> AsyncIterator[str]:
        """The answer's text as the server streams it; RouterError subclasses on failure."""
        endpoint = self.endpoint(model_name, node_id)
        params = self.checked(model_name, parameters)
        async with self._tracked(endpoint):
            async for chunk in endpoint.llm.astream(_messages(prompt, system), **_wire(params)):
                if isinstance(chunk.content, str) and chunk.content:
                    yield chunk.content

    def checked(self, model: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
        """Known parameters only, and `max_tokens` within the model's limit."""
        params = check_parameters(parameters)
        limit = self._max_tokens[model]
        asked = params.get("max_tokens")
        if limit is not None and isinstance(asked, int) and asked > limit:
            raise InvalidRequest(
                f"parameters.max_tokens: {asked} is over {model}'s limit of {limit}"
            )
        return params

    @asynccontextmanager
    async def _tracked(self, endpoint: Endpoint) -> AsyncIterator[_Call]:
        """Count a call; its outcome goes on the health board; failures become RouterErrors."""
        call = _Call()
        where = (endpoint.node_id, endpoint.model)
        self._health.record_call(*where)
        started = self._clock()
        opened = _responses.set([])
        try:
            yield call
        except (openai.OpenAIError, TimeoutError, OSError) as exc:
            refused = isinstance(exc, openai.APIStatusError) and 400 <= exc.status_code < 500
            slow = isinstance(exc, openai.APITimeoutError | TimeoutError)
            self._health.record_failure(
                *where, f"{type(exc).__name__}: {exc}", server_side=not (refused or slow)
            )
            raise _error_from(exc, endpoint) from exc
        finally:
            await _close_responses(opened)
        call.latency_ms = (self._clock() - started) * 1000
        self._health.record_success(*where)
