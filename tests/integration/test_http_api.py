"""Every `/api/llm` endpoint over real HTTP, against fake OpenAI-compatible nodes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from app.settings import Settings
from server import create_app
from service.auth import issue_token
from tests.conftest import FakeCluster
from tests.fakes.openai_backend import asked_items
from tests.fakes.rules import YARA, first_then
from tests.integration.conftest import SECRET, RouterServer

SPEC_RESPONSE_KEYS = {"job_id", "status", "routing", "scheduling", "result", "execution_mode"}


def test_spec_example_1_threat_analysis_reaches_llama31(
    router_server: RouterServer, fake_cluster: FakeCluster
) -> None:
    with router_server.client(router_server.analyst) as c:
        r = c.post(
            "/api/llm/process",
            json={
                "prompt": "Analyze this suspicious PowerShell script for malicious intent...",
                "task_hints": ["threat", "adversary", "malicious"],
                "parameters": {"temperature": 0.3},
            },
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.keys() >= SPEC_RESPONSE_KEYS
    assert body["status"] == "completed" and body["execution_mode"] == "single"
    assert {"task_type", "model", "endpoint", "priority"} <= body["routing"].keys()
    assert body["routing"]["model"] == "llama31"
    assert body["scheduling"]["job_id"] == body["job_id"]
    assert body["scheduling"]["execution_mode"] == "single"
    assert body["scheduling"]["node"]["node_id"] == "gb10-node-2"
    assert body["scheduling"]["node"]["endpoint"].endswith("/llama31/v1")
    assert body["result"]["choices"][0]["message"]["content"]
    assert body["models_used"] == ["llama31"]
    assert fake_cluster.node2.models_called() == ["llama31"]
    assert fake_cluster.node2.calls[0].body["temperature"] == 0.3


def test_spec_example_2_yara_rule_reaches_qwen_coder(
    router_server: RouterServer, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.reply = first_then("It drops evil.dll.", f"```yara\n{YARA}\n```")
    with router_server.client(router_server.analyst) as c:
        r = c.post(
            "/api/llm/process",
            json={
                "prompt": "Generate a YARA rule to detect this malware family...",
                "task_hints": ["code", "rule", "generate"],
                "parameters": {"temperature": 0.5},
            },
        )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["routing"]["model"] == "qwen-coder"
    # Prose is no rule: the same model is asked once more, and its rule compiles.
    assert fake_cluster.node2.models_called() == ["qwen-coder", "qwen-coder"]
    assert out["result"]["validation"]["status"] == "repaired"
    assert YARA in out["result"]["choices"][0]["message"]["content"]


def test_spec_example_3_parallel_batch_spreads_over_both_nodes(
    router_server: RouterServer, fake_cluster: FakeCluster
) -> None:
    with router_server.client(router_server.analyst) as c:
        r = c.post(
            "/api/llm/process",
            json={
                "prompt": "Analyze these 50 log entries for anomalies...",
                "task_hints": ["classify", "anomaly"],
                "requires_parallel": True,
                "batch_size": 50,
            },
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body.keys() >= SPEC_RESPONSE_KEYS
    assert body["execution_mode"] == "parallel"
    assert {n["node_id"] for n in body["scheduling"]["nodes"]} == {"gb10-node-1", "gb10-node-2"}
    assert fake_cluster.node1.calls and fake_cluster.node2.calls
    assert len(body["models_used"]) >= 2


def test_spec_example_4_chain_extract_classify_generate(
    router_server: RouterServer, fake_cluster: FakeCluster
) -> None:
    with router_server.client(router_server.analyst) as c:
        r = c.post(
            "/api/llm/process",
            json={
                "prompt": "First extract IOCs, then classify threats, finally generate response plan",
                "task_hints": ["parse", "classify", "generate"],
                "requires_chaining": True,
                "operations": ["extract", "classify", "generate"],
            },
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["execution_mode"] == "chained"
    assert body["models_used"] == ["phi4", "granite-guardian", "qwen-coder"]
    assert fake_cluster.node2.models_called() == ["phi4", "granite-guardian", "qwen-coder"]


def test_items_batch_comes_back_in_item_order(
    router_server: RouterServer, fake_cluster: FakeCluster
) -> None:
    with router_server.client(router_server.analyst) as c:
        r = c.post(
            "/api/llm/process",
            json={
                "prompt": "Label each entry benign or malicious.",
                "items": [f"entry {i}" for i in range(12)],
                "task_type": "classification",
            },
        )
    body = r.json()
    assert body["execution_mode"] == "parallel"
    starts = [b["items"][0] for b in body["result"]["branches"]]
    assert starts == sorted(starts) and starts[0] == 0


def test_batch_items_come_back_one_answer_each_from_the_label_set(
    router_server: RouterServer, fake_cluster: FakeCluster
) -> None:
    def label_all(model: str, messages: list[dict[str, Any]]) -> str:
        numbers = asked_items(str(messages[-1]["content"]))
        return "\n".join(f"{n}. Malicious - encoded command" for n in numbers)

    fake_cluster.node1.behaviour.reply = label_all
    fake_cluster.node2.behaviour.reply = label_all
    with router_server.client(router_server.analyst) as c:
        r = c.post(
            "/api/llm/process",
            json={
                "prompt": "Label each command line.",
                "items": [f"powershell -enc {i}" for i in range(8)],
                "labels": ["benign", "malicious"],
                "task_type": "classification",
            },
        )
        refused = c.post("/api/llm/process", json={"prompt": "x", "items": ["a"], "labels": [""]})
    assert r.status_code == 200, r.text
    items = r.json()["result"]["items"]
    assert [(i["index"], i["answer"], i["status"]) for i in items] == [
        (n, "malicious", "answered") for n in range(8)
    ]
    assert all(i["node_id"] in {"gb10-node-1", "gb10-node-2"} for i in items)
    assert refused.status_code == 422 and "labels" in refused.text


def test_a_json_answer_is_held_to_the_response_schema_given_over_http(
    router_server: RouterServer, fake_cluster: FakeCluster
) -> None:
    schema = {"type": "object", "required": ["user"], "properties": {"user": {"type": "string"}}}
    fake_cluster.node1.behaviour.reply = lambda model, messages: '{"user": "ann"}'
    fake_cluster.node2.behaviour.reply = fake_cluster.node1.behaviour.reply
    with router_server.client(router_server.analyst) as c:
        r = c.post(
            "/api/llm/process",
            json={
                "prompt": "Extract the user as JSON: sshd accepted password for ann",
                "task_type": "structured_parsing",
                "response_schema": schema,
            },
        )
        bad = c.post(
            "/api/llm/process",
            json={"prompt": "x", "response_schema": {"type": "strin"}},
        )
    assert r.status_code == 200, r.text
    assert r.json()["result"]["validation"]["status"] == "passed"
    sent = (fake_cluster.node1.calls + fake_cluster.node2.calls)[0].body["response_format"]
    assert sent["json_schema"]["schema"] == schema
    assert bad.status_code == 422


def test_async_job_is_accepted_then_polled_and_hidden_from_other_tenants(
    router_server: RouterServer,
) -> None:
    with router_server.client(router_server.analyst) as c:
        r = c.post("/api/llm/process", json={"prompt": "Summarize this incident", "async": True})
        assert r.status_code == 202
        job_id = r.json()["job_id"]
        for _ in range(100):
            job = c.get(f"/api/llm/jobs/{job_id}").json()
            if job["status"] in ("completed", "failed"):
                break
            time.sleep(0.05)
        assert job["status"] == "completed"
        assert job["routing"]["model"] == "deepseek"
        assert c.get("/api/llm/jobs/job_missing").status_code == 404
    with router_server.client(router_server.other_tenant) as other:
        r = other.get(f"/api/llm/jobs/{job_id}")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"


def test_models_nodes_rules_and_test_classification(router_server: RouterServer) -> None:
    with router_server.client(router_server.analyst) as c:
        models = c.get("/api/llm/models").json()
        assert models["total"] == 6
        assert {"model_name", "node_id", "endpoint_url", "is_available"} <= models["models"][
            0
        ].keys()
        nodes = c.get("/api/llm/nodes").json()
        assert nodes["available_count"] == 2
        first = nodes["nodes"][0]
        assert {
            "node_id",
            "hostname",
            "vram_total_gb",
            "vram_used_gb",
            "vram_available_gb",
            "compute_utilization",
            "status",
            "models_loaded",
        } <= first.keys()
        rules = c.get("/api/llm/routing/rules").json()
        assert rules["classifier"]["active"] == "learned"
        assert rules["task_types"]["classification"]["primary"] == "granite-guardian"
        r = c.post(
            "/api/llm/test-classification",
            json={"prompt": "Write a Sigma rule for mimikatz", "task_hints": ["rule"]},
        )
        assert r.json()["routing"]["model"] == "qwen-coder"


def test_node_status_update_is_operator_only_and_validated(router_server: RouterServer) -> None:
    update = {
        "node_id": "gb10-node-1",
        "vram_used_gb": 30,
        "compute_utilization": 0.45,
        "status": "available",
    }
    # A tenant's admin cannot change a node every tenant shares.
    for token in (router_server.analyst, router_server.admin):
        with router_server.client(token) as c:
            r = c.post("/api/llm/nodes/status", json=update)
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    with router_server.client(router_server.operator) as c:
        r = c.post("/api/llm/nodes/status", json=update)
        assert r.status_code == 200, r.text
        node = r.json()["node"]
        assert node["vram_used_gb"] == 30 and node["compute_utilization"] == 0.45
        cases = [
            ({**update, "node_id": "gb10-node-9"}, 404, "unknown_node"),
            ({**update, "vram_used_gb": 81}, 422, "invalid_request"),
            ({**update, "vram_used_gb": -1}, 422, "validation_error"),
            ({**update, "compute_utilization": 1.5}, 422, "validation_error"),
            ({**update, "status": "sleeping"}, 422, "validation_error"),
        ]
        for body, status, code in cases:
            r = c.post("/api/llm/nodes/status", json=body)
            assert (r.status_code, r.json()["error"]["code"]) == (status, code), body


@pytest.mark.parametrize("path", ["/api/llm/models", "/api/llm/nodes", "/graph/input_schema"])
def test_missing_invalid_and_expired_tokens_get_401(router_server: RouterServer, path: str) -> None:
    expired = issue_token(SECRET, user="x", tenant="t", ttl_s=1, now=time.time() - 10)
    wrong_key = issue_token("another-secret-0123456789abcdef012345", user="x", tenant="t")
    cases = {
        None: "missing Authorization header",
        "garbage": "invalid token: not a well-formed JWT",
        "__8_.e30.x": "invalid token: not a well-formed JWT",  # a header of 0xff bytes
        expired: "token expired",
        wrong_key: "invalid token: signature verification failed",
    }
    for token, message in cases.items():
        with router_server.client(token) as c:
            r = c.get(path)
        assert r.status_code == 401, (token, r.text)
        assert r.json()["error"]["code"] == "unauthenticated"
        assert r.json()["error"]["message"].startswith(message), r.text
        assert r.headers["www-authenticate"] == "Bearer"


def test_caller_mistakes_are_clear_4xx_never_500(router_server: RouterServer) -> None:
    with router_server.client(router_server.analyst) as c:
        r = c.post(
            "/api/llm/process",
            content=b'{"prompt": "x",',
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
        assert r.json()["error"]["message"].startswith("body: not valid JSON (")
        assert r.json()["error"]["param"] is None
        r = c.post("/api/llm/process", json={"prompt": "x", "parameters": {"temperature": 5}})
        assert r.status_code == 422
        assert r.json()["error"]["param"] == "parameters.temperature"
        r = c.post("/api/llm/process", json={"prompt": "x" * 100_001})
        assert r.status_code == 422 and "over the limit of 100000" in r.json()["error"]["message"]
        r = c.post("/api/llm/process", json={"prompt": "hi", "model": "gpt-17"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_model"
        r = c.post("/api/llm/process", json={"prompt": "hi", "models": ["phi4", "nope"]})
        assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_model"
        r = c.post("/api/llm/process", json={"prompt": "hi", "priority": 9})
        assert r.status_code == 422 and "priority" in r.json()["error"]["message"]
        r = c.post("/api/llm/process", json={"prompt": "hi", "requires_chaining": True})
        assert r.status_code == 422 and "operations" in r.json()["error"]["message"]
        r = c.post("/api/llm/process", json={"prompt": "hi", "operations": ["juggle"]})
        assert r.status_code == 422 and "unknown operation" in r.json()["error"]["message"]
        r = c.post("/api/llm/process", json={"prompt": "hi", "parameters": {"temprature": 1}})
        assert r.status_code == 422 and "parameters.temprature" in r.json()["error"]["message"]
        out_of_range = [
            ({"temperature": 50}, "parameters.temperature"),
            ({"temperature": -0.1}, "parameters.temperature"),
            ({"top_p": 0}, "parameters.top_p"),
            ({"max_tokens": -1}, "parameters.max_tokens"),
            ({"max_tokens": 0}, "parameters.max_tokens"),
            ({"stop": ["a", "b", "c", "d", "e"]}, "parameters.stop"),
            ({"n": 2}, "parameters.n"),
        ]
        for parameters, field in out_of_range:
            r = c.post("/api/llm/process", json={"prompt": "hi", "parameters": parameters})
            assert r.status_code == 422, parameters
            assert r.json()["error"]["message"].startswith(field), r.json()
        # Within the general range but over the routed model's own limit (llama31: 8192).
        r = c.post(
            "/api/llm/process",
            json={"prompt": "hi", "model": "llama31", "parameters": {"max_tokens": 9000}},
        )
        assert r.status_code == 422
        assert r.json()["error"]["message"].startswith("parameters.max_tokens: 9000 is over")
        # A fan-out is held to each named model's limit before it runs (phi4: 4096).
        r = c.post(
            "/api/llm/process",
            json={
                "prompt": "hi",
                "models": ["llama31", "phi4"],
                "parameters": {"max_tokens": 5000},
            },
        )
        assert r.status_code == 422
        assert "phi4's limit of 4096" in r.json()["error"]["message"]
        # One stop string may be any length; a list holds at most 4.
        r = c.post("/api/llm/process", json={"prompt": "hi", "parameters": {"stop": "END_RULE"}})
        assert r.status_code == 200, r.text
        r = c.post("/api/llm/process", json={"prompt": "hi", "surprise": 1})
        assert r.status_code == 422


def test_backend_down_is_503_with_code(
    router_server: RouterServer, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node1.behaviour.fail_status = 500
    with router_server.client(router_server.analyst) as c:
        r = c.post("/api/llm/process", json={"prompt": "Summarize the incident timeline"})
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "backend_unavailable"


def test_capacity_timeout_is_503_with_retry_after(router_server: RouterServer) -> None:
    with router_server.client(router_server.operator) as c:
        c.post("/api/llm/nodes/status", json={"node_id": "gb10-node-1", "vram_used_gb": 80})
        r = c.post(
            "/api/llm/process", json={"prompt": "Summarize", "model": "deepseek", "timeout_s": 0.2}
        )
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "capacity_timeout"
    assert int(r.headers["retry-after"]) >= 1


def test_healthz_and_docs_need_no_token(router_server: RouterServer) -> None:
    with router_server.client() as c:
        assert c.get("/healthz").json()["status"] == "ok"
        assert c.get("/docs").status_code == 200
        assert "/api/llm/process" in c.get("/openapi.json").json()["paths"]


def test_static_api_keys_are_accepted(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    keys = tmp_path / "keys.yaml"
    keys.write_text(
        "- {key: soc-platform-key-0123456789, user: platform, tenant: acme, roles: [admin]}\n"
    )
    app = create_app(fake_cluster.settings(api_keys_file=keys))
    with TestClient(app) as c:
        assert (
            c.get(
                "/api/llm/models", headers={"Authorization": "Bearer soc-platform-key-0123456789"}
            ).status_code
            == 200
        )
        assert (
            c.get(
                "/api/llm/models", headers={"Authorization": "Bearer soc-platform-key-wrong"}
            ).status_code
            == 401
        )


def test_no_secret_and_no_keys_refuses_to_start(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="ROUTER_JWT_SECRET"):
        create_app(Settings())


def test_a_client_that_leaves_loses_its_queue_place(router_server: RouterServer) -> None:
    import httpx

    with router_server.client(router_server.operator) as c:
        c.post("/api/llm/nodes/status", json={"node_id": "gb10-node-1", "vram_used_gb": 80})
        with pytest.raises(httpx.ReadTimeout):
            c.post(
                "/api/llm/process",
                json={"prompt": "Summarize", "model": "deepseek", "timeout_s": 30},
                timeout=0.5,
            )
        for _ in range(40):
            if c.get("/api/llm/queue").json()["depth"] == 0:
                break
            time.sleep(0.1)
        queue = c.get("/api/llm/queue").json()
        assert queue["depth"] == 0 and queue["max_length"] == 1000


def test_a_request_the_model_server_refuses_is_the_callers_400_with_its_message(
    router_server: RouterServer, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.fail_status = 400
    with router_server.client(router_server.analyst) as c:
        r = c.post("/api/llm/process", json={"prompt": "Parse this", "model": "phi4"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "backend_rejected" and "fake failure" in error["message"]
    fake_cluster.node2.behaviour.fail_status = 404
    with router_server.client(router_server.analyst) as c:
        r = c.post("/api/llm/process", json={"prompt": "Parse this", "model": "phi4"})
    assert r.status_code == 502 and r.json()["error"]["code"] == "backend_misconfigured"
