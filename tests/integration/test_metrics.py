"""`GET /metrics`: requests, their stages and the nodes, as Prometheus sees them."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.auth import issue_token
from tests.conftest import FakeCluster
from tests.integration.conftest import SECRET


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_move_with_requests_from_every_entry_point(
    router: str, fake_cluster: FakeCluster
) -> None:
    headers = {"Authorization": f"Bearer {issue_token(SECRET, user='ann', tenant='soc')}"}
    triage = {"prompt": "Is this login malicious?", "task_type": "classification"}
    deterministic = {**triage, "parameters": {"temperature": 0}}
    with httpx.Client(base_url=router, headers=headers, timeout=30) as c:
        before = scrape(router)
        assert c.post("/api/llm/process", json=triage).status_code == 200
        assert c.post("/api/llm/process", json=deterministic).status_code == 200
        assert c.post("/api/llm/process", json=deterministic).status_code == 200  # cached
        assert (
            c.post("/api/llm/process", json={"prompt": "Write a YARA rule for x"}).status_code
            == 200
        )
        chat = {"model": "llama31", "messages": [{"role": "user", "content": "Summarize"}]}
        assert c.post("/v1/chat/completions", json=chat).status_code == 200
        assert c.post("/api/llm/process", json={"prompt": "x", "model": "gpt-9"}).status_code == 422
        fake_cluster.node2.behaviour.per_model_fail_status = {"granite-guardian": 503}
        assert c.post("/api/llm/process", json=triage).status_code == 200  # failed over
    after = scrape(router)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    triaged = dict(entry_point="process", task_type="classification", model="granite-guardian")
    assert moved("gb10_requests_total", **triaged, node="gb10-node-2", outcome="completed") == 3
    # The failed-over request counts under the model and node that answered it.
    failed_over = dict(entry_point="process", task_type="classification", model="deepseek")
    assert moved("gb10_requests_total", **failed_over, node="gb10-node-1", outcome="completed") == 1
    assert (
        moved(
            "gb10_requests_total",
            entry_point="openai/chat",
            task_type="general_reasoning",  # what the prompt asks; the caller chose the model
            model="llama31",
            node="gb10-node-2",
            outcome="completed",
        )
        == 1
    )
    assert moved("gb10_request_errors_total", entry_point="process", code="unknown_model") == 1
    assert moved("gb10_request_duration_seconds_count", entry_point="process") == 5
    assert moved("gb10_cache_hits_total") == 1
    assert (
        moved(
            "gb10_backend_errors_total",
            model="granite-guardian",
            node="gb10-node-2",
            code="backend_unavailable",
        )
        == 1
    )
    assert moved("gb10_model_call_duration_seconds_count", model="llama31", node="gb10-node-2") == 1
    assert moved("gb10_classification_duration_seconds_count") == 6
    assert moved("gb10_classifications_total", layer="override", task_type="classification") == 4
    assert moved("gb10_queue_wait_seconds_count") == 6
    assert value(after, "gb10_node_vram_total_gb", node="gb10-node-1") == 80
    assert value(after, "gb10_node_reservations", node="gb10-node-2") == 0
    assert value(after, "gb10_queue_depth") == 0
    # No label names a tenant or a user.
    assert not any(k == "tenant" or k == "user" for _, labels in after for k, _ in labels)


def test_the_grafana_dashboard_asks_only_for_metrics_the_router_serves(router: str) -> None:
    import json
    import re
    from pathlib import Path

    dashboard = json.loads(
        (Path(__file__).resolve().parents[2] / "deploy/grafana/gb10-router.json").read_text()
    )
    served = {
        s.name
        for family in text_string_to_metric_families(httpx.get(f"{router}/metrics").text)
        for s in family.samples
    } | {f.name for f in text_string_to_metric_families(httpx.get(f"{router}/metrics").text)}
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bgb10_[a-z_]+", target["expr"])
    }
    assert len(asked) >= 12
    # Histogram buckets and counter totals appear once a series exists; families always do.
    missing = {
        n for n in asked if n not in served and re.sub(r"_(bucket|total)$", "", n) not in served
    }
    assert not missing, missing
