"""`/process` and every `/graph` route take the same request fields, checked by the same rules
with the same messages, and carried into the graph alike."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import FakeCluster
from tests.integration.conftest import RouterServer
from tests.integration.test_langserve import resolve_root

ASK = {"prompt": "classify", "items": ["a", "b"], "labels": ["benign", "malicious"]}


def _sent(c: httpx.Client, route: str, request: dict[str, Any]) -> httpx.Response:
    if route == "process":
        return c.post("/api/llm/process", json=request)
    if route == "batch":
        return c.post("/graph/batch", json={"inputs": [{"prompt": "fine"}, request]})
    return c.post(f"/graph/{route}", json={"input": request})


@pytest.mark.parametrize("route", ["process", "invoke", "batch", "stream"])
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"response_schema": {"type": "object", "properties": 5}}, "response_schema: "),
        ({"bogus": 1}, "bogus: Extra inputs are not permitted"),
        ({"items": [], "requires_parallel": True}, "items: List should have at least 1 item"),
        ({"labels": []}, "labels: List should have at least 2 items"),
        ({"labels": ["benign"]}, "labels: List should have at least 2 items"),
        ({"labels": ["benign", "benign"]}, "labels: Value error, 'benign' and 'benign' are"),
        ({"labels": ["benign", " Benign. "]}, "labels: Value error, 'benign' and 'Benign.' are"),
    ],
)
def test_a_request_that_makes_no_sense_is_refused_alike_everywhere(
    router_server: RouterServer,
    fake_cluster: FakeCluster,
    route: str,
    change: dict[str, Any],
    message: str,
) -> None:
    with router_server.client(router_server.analyst) as c:
        r = _sent(c, route, {**ASK, **change})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"].startswith(message), error["message"]
    field = message.split(":", 1)[0]
    assert error["details"][0]["loc"][-1] == field
    assert fake_cluster.node1.calls + fake_cluster.node2.calls == []


@pytest.mark.parametrize("route", ["process", "invoke"])
def test_the_response_schema_is_sent_to_the_model_and_checked(
    router_server: RouterServer, fake_cluster: FakeCluster, route: str
) -> None:
    schema = {"type": "object", "required": ["zzz"]}
    fake_cluster.node1.behaviour.reply = lambda model, messages: '{"user": "ann"}'
    fake_cluster.node2.behaviour.reply = fake_cluster.node1.behaviour.reply
    ask = {"prompt": "Extract IPs as JSON", "task_type": "structured_parsing"}
    with router_server.client(router_server.analyst) as c:
        r = _sent(c, route, {**ask, "response_schema": schema})
    assert r.status_code == 200, r.text
    out = r.json().get("output", r.json())
    validation = out["result"]["validation"]
    assert validation["kind"] == "json" and validation["status"] == "failed"
    assert "'zzz' is a required property" in validation["error"]
    sent = (fake_cluster.node1.calls + fake_cluster.node2.calls)[0].body["response_format"]
    assert sent == {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}


def test_graph_publishes_the_request_fields_of_process(router_server: RouterServer) -> None:
    with router_server.client(router_server.analyst) as c:
        schema = resolve_root(c.get("/graph/input_schema").json())
        docs = c.get("/openapi.json").json()["components"]["schemas"]["ProcessRequest"]
    assert set(docs["properties"]) | {"user", "tenant"} == set(schema["properties"])
    assert schema["properties"]["labels"]["minItems"] == 2
