"""LangServe at /graph: invoke, batch, stream, stream_events, schemas and playground."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import FakeCluster
from tests.integration.conftest import RouterServer

THREAT = {
    "prompt": "Analyze this suspicious PowerShell script for malicious intent",
    "task_hints": ["threat"],
}


def sse_events(text: str) -> list[tuple[str, str]]:
    events: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.startswith("event:"):
            events.append((line.split(":", 1)[1].strip(), ""))
        elif line.startswith("data:") and events:
            events[-1] = (events[-1][0], line.split(":", 1)[1].strip())
    return events


def resolve_root(schema: dict[str, Any]) -> dict[str, Any]:
    """The object schema behind a root `$ref`, as LangServe publishes typed inputs."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = schema["$defs"][ref.rsplit("/", 1)[-1]]
    return resolved


def test_invoke_runs_the_graph_as_the_token_holder(
    router_server: RouterServer, fake_cluster: FakeCluster
) -> None:
    with router_server.client(router_server.analyst) as c:
        r = c.post(
            "/graph/invoke",
            json={
                "input": {**THREAT, "tenant": "someone-else", "user": "mallory"},
                "config": {"metadata": {"router_tenant": "forged"}},
            },
        )
    assert r.status_code == 200, r.text
    out = r.json()["output"]
    assert set(out) == {
        "job_id",
        "status",
        "routing",
        "scheduling",
        "result",
        "execution_mode",
        "chain",
        "user",
        "tenant",
    }
    assert out["routing"]["model"] == "llama31"
    assert (out["user"], out["tenant"]) == ("bob", "acme")
    assert fake_cluster.node2.models_called() == ["llama31"]


def test_batch(router_server: RouterServer) -> None:
    with router_server.client(router_server.analyst) as c:
        r = c.post(
            "/graph/batch", json={"inputs": [THREAT, {"prompt": "Write a YARA rule for emotet"}]}
        )
    assert r.status_code == 200, r.text
    assert [o["routing"]["model"] for o in r.json()["output"]] == ["llama31", "qwen-coder"]


def test_stream_sends_each_node_update_then_end(router_server: RouterServer) -> None:
    with router_server.client(router_server.analyst) as c:
        r = c.post("/graph/stream", json={"input": THREAT})
    assert r.status_code == 200
    events = sse_events(r.text)
    assert events[-1][0] == "end"
    updates = [json.loads(d) for kind, d in events if kind == "data"]
    assert [next(iter(u)) for u in updates] == [
        "classify",
        "schedule",
        "call_model",
        "merge",
    ]
    assert updates[0]["classify"]["routing"]["model"] == "llama31"
    assert updates[-1]["merge"]["status"] == "completed"


def test_stream_events_survives_parallel_sends(router_server: RouterServer) -> None:
    with router_server.client(router_server.analyst) as c:
        r = c.post(
            "/graph/stream_events",
            json={
                "input": {
                    "prompt": "Classify each alert benign or malicious",
                    "items": ["a", "b", "c", "d"],
                }
            },
        )
    assert r.status_code == 200
    events = sse_events(r.text)
    kinds = [k for k, _ in events]
    assert "error" not in kinds, r.text[-2000:]
    assert kinds[-1] == "end"
    names = {json.loads(d).get("name") for k, d in events if k == "data"}
    assert {"classify", "schedule", "call_model", "merge"} <= names


def test_schemas_and_playground(router_server: RouterServer) -> None:
    with router_server.client(router_server.analyst) as c:
        schema = resolve_root(c.get("/graph/input_schema").json())
        assert "prompt" in schema["properties"] and schema["required"] == ["prompt"]
        out = resolve_root(c.get("/graph/output_schema").json())
        assert {"routing", "scheduling", "result", "execution_mode"} <= out["properties"].keys()
        page = c.get("/graph/playground/")
        assert page.status_code == 200 and "<html" in page.text.lower()


def test_graph_routes_need_a_token(router_server: RouterServer) -> None:
    with router_server.client() as c:
        assert c.post("/graph/invoke", json={"input": THREAT}).status_code == 401
        assert c.get("/graph/playground/").status_code == 401


def test_graph_caller_mistakes_are_4xx(router_server: RouterServer) -> None:
    with router_server.client(router_server.analyst) as c:
        r = c.post("/graph/invoke", json={"input": {"prompt": "hi", "model": "gpt-17"}})
        assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_model"
        r = c.post("/graph/invoke", json={"input": {"prompt": "x" * 100_001}})
        assert r.status_code == 422 and "over the limit" in r.json()["error"]["message"]
        r = c.post("/graph/invoke", json={"input": {"task_hints": ["x"]}})
        assert r.status_code == 422
        for route in ("invoke", "batch", "stream"):
            r = c.post(f"/graph/{route}", content=b"", headers={"content-type": "application/json"})
            assert r.status_code == 422, (route, r.text)
            assert r.json()["error"]["code"] == "validation_error"
