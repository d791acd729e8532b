"""Batch items and checked answers against genuine vLLM servers. The tiny model writes noise:
what is checked is that every outcome is reported cleanly, never as a 5xx, and that what vLLM
holds to a grammar or a schema comes back in form."""

from __future__ import annotations

import json

import httpx
import pytest

from policies.validators import CheckOptions, validator
from policies.validators.yara import GRAMMAR
from tests.vllm.conftest import LiveRouter, VllmCluster, process

pytestmark = pytest.mark.vllm


def test_a_labelled_batch_reports_every_item_and_guided_labels_come_back(
    live_router: LiveRouter,
) -> None:
    out = process(
        live_router,
        {
            "prompt": "Label each event.",
            "items": [f"event {i}" for i in range(10)],
            "labels": ["benign", "malicious"],
            "task_type": "classification",
            "parameters": {"max_tokens": 256, "temperature": 0},
        },
        timeout_s=180,
    )
    items = out["result"]["items"]
    assert [i["index"] for i in items] == list(range(10))
    for item in items:
        assert item["status"] in ("answered", "retried", "missing")
        assert (item["answer"] in ("benign", "malicious")) or item["problem"]
    # vLLM's guided decoding holds even a random-weight model to a label for every item.
    assert [item["status"] for item in items] == ["answered"] * 10, items
    # Each item's confidence is its own label's, read from the tokens' logprobs: items one
    # call answered differ.
    assert all(0 < item["confidence"] <= 1 for item in items)
    by_call: dict[tuple[str, str], set[float]] = {}
    for item in items:
        by_call.setdefault((item["model"], item["node_id"]), set()).add(item["confidence"])
    assert any(len(sure) > 1 for sure in by_call.values()), by_call


def test_a_schema_answer_from_guided_decoding_passes_its_check(live_router: LiveRouter) -> None:
    schema = {
        "type": "object",
        "properties": {"verdict": {"enum": ["benign", "malicious"]}},
        "required": ["verdict"],
        "additionalProperties": False,
    }
    out = process(
        live_router,
        {
            "prompt": "Extract the verdict as JSON: the analyst marked the alert benign.",
            "task_type": "structured_parsing",
            "response_schema": schema,
            "parameters": {"max_tokens": 32, "temperature": 0},
        },
        timeout_s=180,
    )
    validation = out["result"]["validation"]
    assert validation["kind"] == "json"
    content = out["result"]["choices"][0]["message"]["content"]
    if validation["status"] == "failed":  # cut short by max_tokens: reported, not raised
        assert validation["error"] and out["result"]["choices"][0]["finish_reason"] == "length"
    else:
        assert json.loads(content)["verdict"] in ("benign", "malicious")


def test_a_rule_request_answers_with_its_check_reported_when_there_is_one(
    live_router: LiveRouter,
) -> None:
    out = process(
        live_router,
        {
            "prompt": "Write a Sigma rule that detects evil.exe droppers.",
            "task_type": "rule_generation",
            "target": "splunk",
            "parameters": {"max_tokens": 48, "temperature": 0},
        },
        timeout_s=180,
    )
    # Noise holds no Sigma rule, and Sigma repairs have no grammar: failed, and said so.
    validation = out["result"]["validation"]
    assert validation["kind"] == "sigma" and validation["status"] == "failed"
    assert validation["error"] == "the answer holds no Sigma rule"
    assert validation["attempts"] == 2


def test_a_yara_repair_held_to_the_grammar_compiles_even_from_noise(
    live_router: LiveRouter,
) -> None:
    out = process(
        live_router,
        {
            "prompt": "Write a YARA rule that detects evil.exe droppers.",
            "task_type": "rule_generation",
            # The grammar's longest sentence is under 800 characters: it fits.
            "parameters": {"max_tokens": 1024, "temperature": 0},
        },
        timeout_s=180,
    )
    validation = out["result"]["validation"]
    assert validation["error"] == "the answer holds no YARA rule"
    assert validation["status"] == "repaired", out["result"]["choices"][0]["message"]
    rule = out["result"]["choices"][0]["message"]["content"]
    assert validator("yara").check(rule, CheckOptions()).ok


def test_every_sentence_vllm_samples_from_the_yara_grammar_compiles(
    vllm_cluster: VllmCluster,
) -> None:
    # A random-weight model at a high temperature walks the grammar at random.
    server = next(iter(vllm_cluster.servers.values()))
    finished = 0
    with httpx.Client(timeout=60) as client:
        for seed in range(24):
            body = {
                "model": server.served_names[0],
                "messages": [{"role": "user", "content": "A YARA rule, please."}],
                "max_tokens": 1024,
                "temperature": 1.8,
                "seed": seed,
                "structured_outputs": {"grammar": GRAMMAR},
            }
            r = client.post(f"{server.url}/v1/chat/completions", json=body)
            r.raise_for_status()
            choice = r.json()["choices"][0]
            if choice["finish_reason"] != "stop":
                continue
            finished += 1
            verdict = validator("yara").check(choice["message"]["content"], CheckOptions())
            assert verdict.ok, (verdict.error, choice["message"]["content"])
    assert finished == 24
