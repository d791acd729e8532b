"""The OpenAI-compatible front door, driven by the official `openai` SDK and by LangChain's
ChatOpenAI, against the fake nodes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI

from server import create_app
from service.auth import ADMIN, issue_token
from tests.conftest import FakeCluster
from tests.fakes.net import ThreadedServer
from tests.integration.conftest import SECRET

ASK = [
    {"role": "system", "content": "You are a detection engineer."},
    {"role": "user", "content": "Write a YARA rule for this loader: MZ, UPX0, a mutex 'qq_lock'"},
]


@pytest.fixture
def router(fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch) -> Iterator[str]:
    settings = fake_cluster.settings(jwt_secret=SECRET, health_interval_s=0, policy_reload_s=0)
    server = ThreadedServer(create_app(settings))
    yield server.url
    server.stop()


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
    tenant = f"o-{uuid.uuid4().hex[:8]}"
    client = openai.OpenAI(base_url=f"{router}/v1", api_key=token(tenant))
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=ASK)
    completion = raw.parse()
    assert raw.headers["x-gb10-task-type"] == "rule_generation"
    assert raw.headers["x-gb10-model"] == "qwen-coder"
    assert raw.headers["x-gb10-node"] == "gb10-node-2"
    assert float(raw.headers["x-gb10-confidence"]) > 0
    assert completion.choices[0].message.content.startswith("qwen-coder:")
    assert completion.usage is not None and completion.usage.total_tokens > 0
    # The whole conversation reached the model, the system turn first.
    [call] = fake_cluster.node2.calls
    assert [m["role"] for m in call.messages] == ["system", "user"]
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
    answer = llm.invoke("Write a Sigma rule for encoded PowerShell")
    assert isinstance(answer.content, str) and answer.content.startswith("qwen-coder:")
    assert answer.response_metadata["model_name"]
    pieces = [c.content for c in llm.stream("Write a Sigma rule for encoded PowerShell")]
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
    ]
    for body, error, says in cases:
        with pytest.raises(error) as raised:
            client.chat.completions.create(**body)
        assert says in str(raised.value), body
        assert raised.value.body["type"] in ("invalid_request_error", "not_found_error")  # type: ignore[index]
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
