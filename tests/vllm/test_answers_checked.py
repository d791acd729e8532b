"""Batch items and checked answers against genuine vLLM servers (the tiny model writes noise,
so what is checked here is that every outcome is reported cleanly, never as a 5xx)."""

from __future__ import annotations

import json

import pytest

from tests.vllm.conftest import LiveRouter, process

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
    # vLLM's guided decoding holds even a random-weight model to the labels' JSON form.
    assert any(item["answer"] in ("benign", "malicious") for item in items)


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
            "prompt": "Write a YARA rule that detects evil.exe droppers.",
            "task_type": "rule_generation",
            "target": "splunk",
            "parameters": {"max_tokens": 48, "temperature": 0},
        },
        timeout_s=180,
    )
    validation = out["result"].get("validation")
    assert validation is None or validation["status"] in ("passed", "repaired", "failed")
