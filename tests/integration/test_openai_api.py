"""The OpenAI-compatible front door, driven by the official `openai` SDK and by LangChain's
ChatOpenAI, against the fake nodes."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI

from service.auth import ADMIN, issue_token
from tests.conftest import FakeCluster
from tests.fakes.rules import YARA, first_then
from tests.integration.conftest import SECRET

ASK = [
    {"role": "system", "content": "You are a detection engineer."},
    {"role": "user", "content": "Write a YARA rule for this loader: MZ, UPX0, a mutex 'qq_lock'"},
]


def token(tenant: str) -> str:
    return issue_token(SECRET, user="ann", tenant=tenant)


def audit(url: str, tenant: str) -> list[dict[str, Any]]:
    admin = issue_token(SECRET, user="auditor", tenant=tenant, roles=[ADMIN])
    r = httpx.get(f"{url}/api/llm/audit", headers={"Authorization": f"Bearer {admin}"})
    records: list[dict[str, Any]] = r.json()["records"]
    return records


def test_the_openai_sdk_gets_a_routed_answer_with_the_routing_in_headers(
    router: str, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.reply = first_then("A loader packed with UPX.", YARA)
    tenant = f"o-{uuid.uuid4().hex[:8]}"
    client = openai.OpenAI(base_url=f"{router}/v1", api_key=token(tenant))
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=ASK)
    completion = raw.parse()
    assert raw.headers["x-gb10-task-type"] == "rule_generation"
    assert raw.headers["x-gb10-model"] == "qwen-coder"
    assert raw.headers["x-gb10-node"] == "gb10-node-2"
    assert float(raw.headers["x-gb10-confidence"]) > 0
    # Prose is no YARA rule: the model was asked once more, and its rule compiles.
    assert raw.headers["x-gb10-validation"] == "repaired"
    assert completion.choices[0].message.content == YARA
    assert completion.usage is not None and completion.usage.total_tokens > 0
    # The whole conversation reached the model, the system turn first.
    first, repair = fake_cluster.node2.calls
    assert [m["role"] for m in first.messages] == ["system", "user"]
    assert [m["role"] for m in repair.messages] == ["system", "user", "assistant", "user"]
    [record] = audit(router, tenant)
    assert (record["entry_point"], record["status"], record["model"]) == (
        "openai/chat",
        "completed",
        "qwen-coder",
    )


async def test_the_async_sdk_streams_chunks_and_usage_last(router: str) -> None:
    tenant = f"s-{uuid.uuid4().hex[:8]}"
    client = openai.AsyncOpenAI(base_url=f"{router}/v1", api_key=token(tenant))
    stream = await client.chat.completions.create(
        model="classification",
        messages=[{"role": "user", "content": "Is this login from a new country suspicious?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) > 2  # word by word, as the model streamed it
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert chunks[-1].choices == []
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    [record] = audit(router, tenant)
    assert (record["entry_point"], record["status"]) == ("openai/chat", "completed")
    assert record["completion_tokens"] > 0


def test_langchain_chat_openai_pointed_at_the_router(router: str) -> None:
    tenant = f"l-{uuid.uuid4().hex[:8]}"
    llm = ChatOpenAI(base_url=f"{router}/v1", api_key=token(tenant), model="qwen-coder")
    answer = llm.invoke("Write a detection rule for encoded PowerShell")
    assert isinstance(answer.content, str) and answer.content.startswith("qwen-coder:")
    assert answer.response_metadata["model_name"]
    pieces = [c.content for c in llm.stream("Write a detection rule for encoded PowerShell")]
    assert len([p for p in pieces if p]) > 2
    assert "".join(map(str, pieces)) == answer.content


def test_models_lists_auto_the_task_types_and_the_models(router: str) -> None:
    client = openai.OpenAI(base_url=f"{router}/v1", api_key=token("m"))
    ids = [m.id for m in client.models.list()]
    assert ids[0] == "auto"
    assert {"rule_generation", "classification", "qwen-coder", "llama31"} <= set(ids)


def test_bad_requests_get_openai_shaped_4xx(router: str) -> None:
    client = openai.OpenAI(base_url=f"{router}/v1", api_key=token("b"), max_retries=0)
    user = [{"role": "user", "content": "hi"}]
    cases: list[tuple[dict[str, Any], type[openai.APIStatusError], str]] = [
        ({"model": "auto", "messages": []}, openai.UnprocessableEntityError, "messages"),
        (
            {"model": "auto", "messages": [{"role": "wizard", "content": "hi"}]},
            openai.UnprocessableEntityError,
            "role",
        ),
        ({"model": "auto", "messages": user, "n": 2}, openai.UnprocessableEntityError, "n"),
        (
            {"model": "auto", "messages": [*user, {"role": "tool", "content": "42"}]},
            openai.UnprocessableEntityError,
            "tool_call_id",
        ),
        (
            {"model": "auto", "messages": [{"role": "user"}]},
            openai.UnprocessableEntityError,
            "needs content",
        ),
        ({"model": "gpt-9", "messages": user}, openai.NotFoundError, "valid: auto"),
        (
            {
                "model": "auto",
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "x"}}],
                    }
                ],
            },
            openai.BadRequestError,
            "image_url",
        ),
        (
            {"model": "auto", "messages": user, "temperature": 9},
            openai.UnprocessableEntityError,
            "temperature",
        ),
        (
            {"model": "auto", "messages": user, "tools": [{"type": "retrieval"}]},
            openai.UnprocessableEntityError,
            "tools",
        ),
        (
            {
                "model": "auto",
                "messages": user,
                "tools": [{**LOOKUP, "function": {"name": "f", "parameters": {"type": 5}}}],
            },
            openai.UnprocessableEntityError,
            "not a valid JSON Schema",
        ),
        (
            {
                "model": "auto",
                "messages": user,
                "tools": [LOOKUP],
                "tool_choice": {"type": "function", "function": {"name": "block_ip"}},
            },
            openai.UnprocessableEntityError,
            "not in tools",
        ),
        (
            {"model": "auto", "messages": user, "tool_choice": "required"},
            openai.UnprocessableEntityError,
            "tool_choice needs tools",
        ),
        (
            {"model": "auto", "messages": user, "response_format": {"type": "json_schema"}},
            openai.UnprocessableEntityError,
            "json_schema",
        ),
    ]
    for body, error, says in cases:
        with pytest.raises(error) as raised:
            client.chat.completions.create(**body)
        assert says in str(raised.value), body
        assert raised.value.body["type"] in ("invalid_request_error", "not_found_error")  # type: ignore[index]
    for field, value in (("temperature", 9), ("n", 2), ("max_tokens", 0)):
        with pytest.raises(openai.UnprocessableEntityError) as raised:
            client.chat.completions.create(model="auto", messages=user, **{field: value})  # type: ignore[call-overload]
        assert raised.value.param == field, raised.value.body
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{router}/v1", api_key="nope", max_retries=0).models.list()


def test_a_client_that_closes_the_stream_frees_the_reservation(
    router: str, fake_cluster: FakeCluster
) -> None:
    tenant = f"c-{uuid.uuid4().hex[:8]}"
    fake_cluster.node2.behaviour.delay_s = 3.0  # the model has not answered when it leaves
    headers = {"Authorization": f"Bearer {token(tenant)}"}
    body = {
        "model": "llama31",
        "messages": [{"role": "user", "content": "Summarize"}],
        "stream": True,
    }
    with httpx.Client(base_url=router, headers=headers, timeout=30) as c:
        with c.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            assert r.headers["x-gb10-node"] == "gb10-node-2"
            first = next(r.iter_lines())
            assert first.startswith("data:") and '"role": "assistant"' in first
        deadline = time.monotonic() + 10
        while True:
            nodes = c.get("/api/llm/nodes").json()["nodes"]
            held = sum(n["jobs_in_flight"] for n in nodes)
            records = audit(router, tenant)
            if held == 0 and records and records[0]["status"] != "accepted":
                break
            assert time.monotonic() < deadline, (held, records)
            time.sleep(0.05)
    assert (records[0]["status"], records[0]["error_code"]) == ("abandoned", "client_gone")


LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_ip",
        "description": "Reputation of an IP address from the threat-intel platform.",
        "parameters": {
            "type": "object",
            "properties": {"ip": {"type": "string"}},
            "required": ["ip"],
        },
    },
}
TRIAGE = [{"role": "user", "content": "Is 203.0.113.7, seen in our VPN logs, malicious?"}]


def call_lookup(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The fake model asks for the lookup until the tool has answered."""
    if body["messages"][-1]["role"] == "tool":
        return None
    return [{"id": "call_1", "name": "lookup_ip", "arguments": '{"ip": "203.0.113.7"}'}]


def test_tools_pass_through_and_tool_calls_come_back(
    router: str, fake_cluster: FakeCluster
) -> None:
    for node in (fake_cluster.node1, fake_cluster.node2):
        node.behaviour.tool_use = call_lookup
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    client = openai.OpenAI(base_url=f"{router}/v1", api_key=token(tenant))
    first = client.chat.completions.create(
        model="auto", messages=TRIAGE, tools=[LOOKUP], tool_choice="auto", temperature=0
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function" and call.id == "call_1"
    assert (call.function.name, call.function.arguments) == ("lookup_ip", '{"ip": "203.0.113.7"}')
    [sent] = [c for n in (fake_cluster.node1, fake_cluster.node2) for c in n.calls]
    assert sent.body["tools"] == [LOOKUP] and sent.body["tool_choice"] == "auto"

    answer = client.chat.completions.create(
        model="auto",
        messages=[
            *TRIAGE,
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": "call_1", "content": "known C2, score 97"},
        ],
        tools=[LOOKUP],
        temperature=0,
    )
    assert answer.choices[0].finish_reason == "stop"
    assert "known C2" in (answer.choices[0].message.content or "")
    last = [c for n in (fake_cluster.node1, fake_cluster.node2) for c in n.calls][-1]
    assert [m["role"] for m in last.messages] == ["user", "assistant", "tool"]
    assert last.messages[1]["tool_calls"][0]["function"]["name"] == "lookup_ip"
    assert last.messages[2]["tool_call_id"] == "call_1"
    records = audit(router, tenant)
    assert [r["status"] for r in records] == ["completed", "completed"]


def test_streamed_tool_calls_arrive_in_pieces_the_sdk_puts_together(
    router: str, fake_cluster: FakeCluster
) -> None:
    for node in (fake_cluster.node1, fake_cluster.node2):
        node.behaviour.tool_use = call_lookup
    client = openai.OpenAI(base_url=f"{router}/v1", api_key=token("ts"))
    chunks = list(
        client.chat.completions.create(model="auto", messages=TRIAGE, tools=[LOOKUP], stream=True)
    )
    pieces = [call for c in chunks if c.choices for call in (c.choices[0].delta.tool_calls or [])]
    assert len(pieces) >= 2  # the arguments came in several deltas
    assert pieces[0].id == "call_1" and pieces[0].function and pieces[0].function.name
    arguments = "".join((p.function.arguments or "") for p in pieces if p.function)
    assert arguments == '{"ip": "203.0.113.7"}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


#: A JSON-schema response format asking for one verdict of two.
VERDICT_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "verdict",
        "schema": {
            "type": "object",
            "properties": {"verdict": {"enum": ["benign", "malicious"]}},
            "required": ["verdict"],
        },
    },
}


def test_response_format_reaches_the_model_as_sent(router: str, fake_cluster: FakeCluster) -> None:
    for node in (fake_cluster.node1, fake_cluster.node2):
        node.behaviour.reply = lambda model, messages: '{"verdict": "benign"}'
    client = openai.OpenAI(base_url=f"{router}/v1", api_key=token("rf"))
    answer = client.chat.completions.create(
        model="classification",
        messages=TRIAGE,
        response_format=VERDICT_FORMAT,  # type: ignore[arg-type]
    )
    client.chat.completions.create(
        model="classification", messages=TRIAGE, response_format={"type": "json_object"}
    )
    sent = [c.body for n in (fake_cluster.node1, fake_cluster.node2) for c in n.calls]
    assert [b["response_format"] for b in sent] == [VERDICT_FORMAT, {"type": "json_object"}]
    assert answer.choices[0].message.content == '{"verdict": "benign"}'


def test_an_answer_that_misses_its_schema_is_asked_for_once_more(
    router: str, fake_cluster: FakeCluster
) -> None:
    replies = iter(['{"verdict": "fine"}', '{"verdict": "benign"}'])
    for node in (fake_cluster.node1, fake_cluster.node2):
        node.behaviour.reply = lambda model, messages: next(replies)
    client = openai.OpenAI(base_url=f"{router}/v1", api_key=token("rf2"))
    raw = client.chat.completions.with_raw_response.create(
        model="classification",
        messages=TRIAGE,
        response_format=VERDICT_FORMAT,  # type: ignore[arg-type]
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == '{"verdict": "benign"}'
    assert raw.headers["x-gb10-validation"] == "repaired"
    gb10 = answer.model_extra["gb10"] if answer.model_extra else {}
    assert gb10["validation"]["kind"] == "json" and gb10["validation"]["attempts"] == 2
    calls = fake_cluster.node1.calls + fake_cluster.node2.calls
    assert len(calls) == 2 and "fails its check" in calls[1].messages[-1]["content"]


def test_a_langgraph_react_agent_runs_with_the_router_as_its_model(
    router: str, fake_cluster: FakeCluster
) -> None:
    from langchain_core.tools import tool
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode, tools_condition

    looked_up: list[str] = []

    @tool
    def lookup_ip(ip: str) -> str:
        """Reputation of an IP address from the threat-intel platform."""
        looked_up.append(ip)
        return f"{ip}: known C2, score 97"

    def use_the_tool_once(body: dict[str, Any]) -> list[dict[str, Any]] | None:
        assert [t["function"]["name"] for t in body["tools"]] == ["lookup_ip"]
        return call_lookup(body)

    for node in (fake_cluster.node1, fake_cluster.node2):
        node.behaviour.tool_use = use_the_tool_once
    tenant = f"a-{uuid.uuid4().hex[:8]}"
    llm = ChatOpenAI(base_url=f"{router}/v1", api_key=token(tenant), model="auto")
    model = llm.bind_tools([lookup_ip])

    def think(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    # The ReAct loop: the model asks for tools until it answers.
    builder = StateGraph(MessagesState)
    builder.add_node("agent", think)
    builder.add_node("tools", ToolNode([lookup_ip]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    agent = builder.compile()
    state = agent.invoke({"messages": [("user", TRIAGE[0]["content"])]})
    kinds = [m.type for m in state["messages"]]
    assert kinds == ["human", "ai", "tool", "ai"]
    assert looked_up == ["203.0.113.7"]
    assert "known C2" in state["messages"][-1].content
    records = audit(router, tenant)
    assert [(r["entry_point"], r["status"]) for r in records] == [("openai/chat", "completed")] * 2


def test_chunks_arrive_while_the_model_is_still_writing(
    router: str, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.stream_gap_s = 0.15
    client = openai.OpenAI(base_url=f"{router}/v1", api_key=token("timed"))
    stream = client.chat.completions.create(
        model="llama31",
        messages=[{"role": "user", "content": "Summarize the incident timeline in ten words"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    first_text_at: float | None = None
    chunks = []
    for chunk in stream:
        if first_text_at is None and chunk.choices and chunk.choices[0].delta.content:
            first_text_at = time.time()
        chunks.append(chunk)
    [call] = fake_cluster.node2.calls
    assert call.streamed_at is not None and first_text_at is not None
    # The client had the first words before the model had written its last one.
    assert first_text_at < call.streamed_at
    assert chunks[-1].usage is not None and chunks[-1].choices == []


def stream_events(router: str, tenant: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every `data:` event of a streamed chat completion, `[DONE]` as {"done": True}."""
    headers = {"Authorization": f"Bearer {token(tenant)}"}
    events: list[dict[str, Any]] = []
    with httpx.stream(
        "POST", f"{router}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: "):
                data = line.removeprefix("data: ")
                events.append({"done": True} if data == "[DONE]" else json.loads(data))
    return events


def streamed_text(events: list[dict[str, Any]]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices")
    )


def test_a_node_failing_before_the_first_token_fails_over_unseen(
    router: str, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.fail_status = 503
    tenant = f"f-{uuid.uuid4().hex[:8]}"
    body = {"model": "classification", "messages": TRIAGE, "stream": True}
    events = stream_events(router, tenant, body)
    assert streamed_text(events).startswith("deepseek:")  # node 1 took the call
    assert not any("error" in e for e in events) and events[-1] == {"done": True}
    [record] = audit(router, tenant)
    assert record["status"] == "completed"


def test_a_node_failing_mid_answer_ends_the_stream_with_an_error_and_no_second_answer(
    router: str, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.die_after_words = 2
    tenant = f"m-{uuid.uuid4().hex[:8]}"
    body = {"model": "classification", "messages": TRIAGE, "stream": True}
    events = stream_events(router, tenant, body)
    text = streamed_text(events)
    assert text.startswith("granite-guardian:") and "deepseek" not in text
    assert events[-2]["error"]["code"] == "backend_unavailable"
    assert "mid-answer" in events[-2]["error"]["message"]
    assert events[-1] == {"done": True}
    [record] = audit(router, tenant)
    assert (record["status"], record["error_code"]) == ("failed", "backend_unavailable")
    nodes = httpx.get(
        f"{router}/api/llm/nodes", headers={"Authorization": f"Bearer {token(tenant)}"}
    ).json()["nodes"]
    assert sum(n["jobs_in_flight"] for n in nodes) == 0


def test_a_client_that_leaves_mid_answer_stops_the_model_writing(
    router: str, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.stream_gap_s = 0.3  # about 3 s for the whole answer
    headers = {"Authorization": f"Bearer {token('gone')}"}
    body = {"model": "llama31", "messages": TRIAGE, "stream": True}
    with httpx.stream(
        "POST", f"{router}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as r:
        lines = r.iter_lines()
        while '"content"' not in next(lines):
            pass
    [call] = fake_cluster.node2.calls
    time.sleep(4)
    assert call.streamed_at is None  # the router hung up on the model when its client left


def test_a_streamed_answer_that_misses_its_schema_is_not_followed_by_a_second(
    router: str, fake_cluster: FakeCluster
) -> None:
    for node in (fake_cluster.node1, fake_cluster.node2):
        node.behaviour.reply = lambda model, messages: '{"verdict": "fine"}'
    client = openai.OpenAI(base_url=f"{router}/v1", api_key=token("rf3"))
    chunks = list(
        client.chat.completions.create(
            model="classification",
            messages=TRIAGE,
            response_format=VERDICT_FORMAT,  # type: ignore[arg-type]
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == '{"verdict": "fine"}'
    assert len(fake_cluster.node1.calls + fake_cluster.node2.calls) == 1


def test_the_answer_names_the_routed_model_not_the_servers_alias(
    router: str, fake_cluster: FakeCluster
) -> None:
    # One vLLM server answers for several of the router's models, under another's name.
    fake_cluster.node2.behaviour.answers_as = "phi4"
    tenant = f"a-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {token(tenant)}"}
    body = {"model": "rule_generation", "messages": TRIAGE}
    r = httpx.post(f"{router}/v1/chat/completions", json=body, headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert r.headers["x-gb10-model"] == answer["gb10"]["model"] == "qwen-coder"
    assert answer["model"] == "qwen-coder"
    events = stream_events(router, tenant, {**body, "stream": True})
    assert {e["model"] for e in events if "choices" in e} == {"qwen-coder"}


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_too_many_tokens_for_the_routed_model_is_refused_naming_the_field_sent(
    router: str, field: str
) -> None:
    """`auto` picks the model in the run, after admission: refused all the same."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {token(tenant)}"}
    body = {"model": "auto", "messages": TRIAGE, field: 10_000_000}
    r = httpx.post(f"{router}/v1/chat/completions", json=body, headers=headers, timeout=30)
    assert r.status_code == 422, r.text
    says = f"{field}: 10000000 is over"
    assert r.json()["error"]["message"].startswith(says)
    # Streamed, the headers are out before the model is called: the error is an event.
    events = stream_events(router, tenant, {**body, "stream": True})
    [error] = [e["error"] for e in events if "error" in e]
    assert error["message"].startswith(says)
    records = audit(router, tenant)
    assert [(r["status"], r["http_status"]) for r in records] == [("refused", 422)] * 2
