"""The OpenAI-compatible front door against genuine vLLM servers: the official SDK (sync and
async, streamed and not), LangChain's ChatOpenAI, tools and JSON output through to vLLM, and a
LangGraph agent whose model is the router.

The tiny model has random weights: its text is noise, so these tests check shapes, routing and
what vLLM's guided decoding guarantees (a named tool's arguments, a JSON schema), not meaning.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import httpx
import jsonschema
import openai
import pytest
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from prometheus_client.parser import text_string_to_metric_families

from tests.vllm.conftest import LiveRouter, VllmCluster

pytestmark = pytest.mark.vllm

ASK = [{"role": "user", "content": "Write a Sigma rule for encoded PowerShell command lines"}]
VERDICT = {
    "type": "object",
    "properties": {"verdict": {"enum": ["benign", "suspicious", "malicious"]}},
    "required": ["verdict"],
    "additionalProperties": False,
}
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_ip",
        "description": "Reputation of an IP address.",
        "parameters": VERDICT,
    },
}
NAMED = {"type": "function", "function": {"name": "lookup_ip"}}


def client(router: LiveRouter) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{router.url}/v1", api_key=router.token, max_retries=0)


def test_the_sdk_gets_a_routed_answer_from_vllm(live_router: LiveRouter) -> None:
    raw = client(live_router).chat.completions.with_raw_response.create(
        model="auto", messages=ASK, max_tokens=8, temperature=0
    )
    completion = raw.parse()
    assert raw.headers["x-gb10-task-type"] == "rule_generation"
    assert raw.headers["x-gb10-model"] == "qwen-coder"
    assert raw.headers["x-gb10-node"] in ("gb10-node-1", "gb10-node-2")
    # vLLM names the first of the names a server serves; the header names the router's model.
    assert completion.model
    assert completion.usage is not None and completion.usage.completion_tokens == 8
    assert completion.choices[0].finish_reason == "length"
    assert isinstance(completion.choices[0].message.content, str)


async def test_the_async_sdk_streams_vllm_tokens_with_usage_last(live_router: LiveRouter) -> None:
    sdk = openai.AsyncOpenAI(base_url=f"{live_router.url}/v1", api_key=live_router.token)
    stream = await sdk.chat.completions.create(
        model="llama31",
        messages=ASK,
        max_tokens=6,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) >= 2  # token by token, not one buffered answer
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6


def test_langchain_chat_openai_pointed_at_the_router(live_router: LiveRouter) -> None:
    llm = ChatOpenAI(
        base_url=f"{live_router.url}/v1",
        api_key=live_router.token,  # type: ignore[arg-type]
        model="llama31",
        max_tokens=6,
    )
    answer = llm.invoke(ASK[0]["content"])
    assert answer.response_metadata["model_name"]
    assert answer.usage_metadata is not None and answer.usage_metadata["output_tokens"] == 6
    pieces = list(llm.stream(ASK[0]["content"]))
    assert len([p for p in pieces if p.content]) >= 2


def test_a_named_tool_comes_back_as_a_tool_call_with_arguments_that_fit(
    live_router: LiveRouter,
) -> None:
    sdk = client(live_router)
    asked = [{"role": "user", "content": "Is 203.0.113.7 from our VPN logs malicious?"}]
    first = sdk.chat.completions.create(
        model="auto", messages=asked, tools=[LOOKUP], tool_choice=NAMED, max_tokens=32
    )
    [call] = first.choices[0].message.tool_calls or []
    assert call.function.name == "lookup_ip"
    jsonschema.validate(json.loads(call.function.arguments), VERDICT)
    # The tool's answer goes back; the model answers in text.
    second = sdk.chat.completions.create(
        model="auto",
        messages=[
            *asked,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "known C2, score 97"},
        ],
        tools=[LOOKUP],
        tool_choice="none",
        max_tokens=6,
    )
    assert not second.choices[0].message.tool_calls
    assert second.usage is not None and second.usage.completion_tokens > 0


def test_streamed_tool_call_pieces_add_up_to_arguments_that_fit(live_router: LiveRouter) -> None:
    chunks = list(
        client(live_router).chat.completions.create(
            model="llama31",
            messages=[{"role": "user", "content": "Check 198.51.100.4"}],
            tools=[LOOKUP],
            tool_choice=NAMED,
            max_tokens=32,
            stream=True,
        )
    )
    pieces = [p for c in chunks if c.choices for p in (c.choices[0].delta.tool_calls or [])]
    assert pieces[0].function is not None and pieces[0].function.name == "lookup_ip"
    arguments = "".join((p.function.arguments or "") for p in pieces if p.function)
    jsonschema.validate(json.loads(arguments), VERDICT)


def test_a_json_schema_answer_fits_the_schema(live_router: LiveRouter) -> None:
    completion = client(live_router).chat.completions.create(
        model="classification",
        messages=[{"role": "user", "content": "Verdict on: powershell -enc SQBFAFgA"}],
        response_format={  # type: ignore[arg-type]
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": VERDICT},
        },
        max_tokens=32,
    )
    jsonschema.validate(json.loads(completion.choices[0].message.content or ""), VERDICT)


def test_a_langgraph_agent_runs_with_the_router_as_its_model(live_router: LiveRouter) -> None:
    looked_up: list[str] = []

    @tool
    def lookup_ip(verdict: Literal["benign", "suspicious", "malicious"]) -> str:
        """Reputation of an IP address."""
        looked_up.append(verdict)
        return "known C2, score 97"

    llm = ChatOpenAI(
        base_url=f"{live_router.url}/v1",
        api_key=live_router.token,  # type: ignore[arg-type]
        model="auto",
        max_tokens=32,
    )
    # The tiny model cannot decide to call a tool, so the agent asks for it by name until the
    # tool has answered, then lets the model write.
    must_look = llm.bind_tools([lookup_ip], tool_choice="lookup_ip")
    may_answer = llm.bind_tools([lookup_ip], tool_choice="none")

    def think(state: MessagesState) -> dict[str, Any]:
        looked = any(isinstance(m, ToolMessage) for m in state["messages"])
        return {"messages": [(may_answer if looked else must_look).invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", think)
    builder.add_node("tools", ToolNode([lookup_ip]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    state = builder.compile().invoke({"messages": [("user", "Is 203.0.113.7 malicious?")]})
    assert [m.type for m in state["messages"]] == ["human", "ai", "tool", "ai"]
    assert looked_up and looked_up[0] in ("benign", "suspicious", "malicious")


def test_vllm_refusing_a_request_is_an_openai_shaped_400(live_router: LiveRouter) -> None:
    # Longer than the test servers' context (2,048 tokens): vLLM refuses it, the router says so.
    long = " ".join(["token"] * 3000)
    r = httpx.post(
        f"{live_router.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {live_router.token}"},
        json={"model": "llama31", "messages": [{"role": "user", "content": long}]},
        timeout=60,
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "backend_rejected" and error["type"] == "invalid_request_error"


def counters(node_url: str) -> dict[str, float]:
    """vLLM's requests running, requests finished (stop or length) and tokens generated."""
    out = {"running": 0.0, "finished": 0.0, "generated": 0.0}
    text = httpx.get(f"{node_url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "vllm:num_requests_running":
                out["running"] += sample.value
            elif sample.name == "vllm:request_success_total" and sample.labels.get(
                "finished_reason"
            ) in ("stop", "length"):
                out["finished"] += sample.value
            elif sample.name == "vllm:generation_tokens_total":
                out["generated"] += sample.value
    return out


def test_a_client_that_leaves_mid_stream_aborts_the_request_on_vllm(
    live_router: LiveRouter, vllm_cluster: VllmCluster
) -> None:
    node = vllm_cluster.servers["gb10-node-2"]
    # vLLM's first request with logprobs (the router asks for them) is slow; not this one.
    client(live_router).chat.completions.create(model="llama31", messages=ASK, max_tokens=2)
    before = counters(node.url)
    body = {
        "model": "llama31",
        "messages": ASK,
        "max_tokens": 900,  # seconds of work on the CPU, if it were let run
        "temperature": 0,  # greedy, the tiny model writes all 900 without stopping
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {live_router.token}"}
    with httpx.stream(
        "POST", f"{live_router.url}/v1/chat/completions", json=body, headers=headers, timeout=60
    ) as r:
        assert r.headers["x-gb10-node"] == "gb10-node-2"
        lines = r.iter_lines()
        while '"content"' not in next(lines):
            pass  # leave once the model is writing
    deadline = time.monotonic() + 20
    while (now := counters(node.url))["running"] > 0 or now["generated"] == before["generated"]:
        assert time.monotonic() < deadline, "vLLM kept generating for a client that left"
        time.sleep(0.2)
    # The request ended without finishing (no stop, no length), short of its 900 tokens.
    assert now["finished"] == before["finished"], (before, now)
    assert now["generated"] - before["generated"] < 900
    nodes = httpx.get(f"{live_router.url}/api/llm/nodes", headers=headers).json()["nodes"]
    assert sum(n["jobs_in_flight"] for n in nodes) == 0
