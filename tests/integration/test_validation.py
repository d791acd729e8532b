"""Answers of a checkable form, checked in the graph: YARA, Sigma, JSON; one repair each."""

from __future__ import annotations

import json
from typing import Any

from app.runtime import RouterRuntime
from nodes.validate import HELD_TO_GRAMMAR
from policies.validators.yara import GRAMMAR
from tests.conftest import FakeCluster
from tests.fakes.rules import BROKEN_YARA, SIGMA, YARA, first_then
from tests.integration.conftest import run


async def test_a_yara_rule_that_does_not_compile_is_repaired_by_the_same_model(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.reply = first_then(
        f"```yara\n{BROKEN_YARA}\n```", f"```yara\n{YARA}\n```"
    )
    registry = runtime.context.metrics.registry
    labels = {"kind": "yara", "status": "repaired"}
    before = registry.get_sample_value("gb10_validations_total", labels) or 0.0
    out = await run(graph, runtime, prompt="Write a YARA rule for evil.exe droppers.")
    result = out["result"]
    assert registry.get_sample_value("gb10_validations_total", labels) == before + 1
    assert out["routing"]["task_type"] == "rule_generation"
    assert result["validation"]["status"] == "repaired"
    assert result["validation"]["kind"] == "yara" and result["validation"]["attempts"] == 2
    assert "line 6" in result["validation"]["error"]
    assert YARA in result["choices"][0]["message"]["content"]
    first, repair = fake_cluster.node2.calls
    assert repair.served_model == first.served_model
    assert repair.messages[1] == {"role": "assistant", "content": f"```yara\n{BROKEN_YARA}\n```"}
    assert "syntax error (line 6" in repair.messages[2]["content"]
    # The model's own rule, told its error, is free to keep what it said: no grammar.
    assert "structured_outputs" not in first.body and "structured_outputs" not in repair.body
    assert runtime.scheduler.leases() == []


async def test_an_answer_without_the_rule_asked_for_fails_and_is_asked_again(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    prose = "evil.dll is a loader; look for its XOR key."
    fake_cluster.node2.behaviour.reply = first_then(prose, YARA)
    out = await run(
        graph,
        runtime,
        prompt="Generate a YARA rule to detect evil.dll droppers.",
        parameters={"max_tokens": 64, "stop": ["}"], "temperature": 0.2},
    )
    validation = out["result"]["validation"]
    assert validation["status"] == "repaired" and validation["kind"] == "yara"
    assert validation["error"] == "the answer holds no YARA rule"
    assert HELD_TO_GRAMMAR in validation["warnings"]
    first, repair = fake_cluster.node2.calls
    assert repair.messages[-1]["content"] == (
        "The answer above holds no YARA rule. Reply with the YARA rule only."
    )
    # With no rule to keep, the last try is held to a grammar of rules that compile, within
    # the caller's budget still; a stop string would cut every rule short ("}" ends each).
    assert repair.body["structured_outputs"] == {"grammar": GRAMMAR}
    assert first.body["stop"] == ["}"] and "stop" not in repair.body
    for sent in (first, repair):
        assert sent.body["max_completion_tokens"] == 64 and sent.body["temperature"] == 0.2


async def test_a_repair_keeps_the_requests_own_constraint_and_adds_none(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.reply = first_then('{"note": "no rule"}', f"```yara\n{YARA}```")
    out = await run(
        graph,
        runtime,
        prompt="Write a YARA rule for evil.exe droppers.",
        parameters={"response_format": {"type": "json_object"}},
    )
    assert out["result"]["validation"]["status"] == "repaired"
    repair = fake_cluster.node2.calls[-1]
    assert "structured_outputs" not in repair.body
    assert repair.body["response_format"] == {"type": "json_object"}


async def test_a_tool_call_is_the_callers_and_is_not_checked(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    lookup = {"id": "call_1", "name": "lookup_hash", "arguments": '{"sha256": "ab12"}'}
    fake_cluster.node2.behaviour.tool_use = lambda body: [lookup]
    tool = {
        "type": "function",
        "function": {
            "name": "lookup_hash",
            "parameters": {"type": "object", "properties": {"sha256": {"type": "string"}}},
        },
    }
    out = await run(
        graph,
        runtime,
        prompt="Look up hash ab12, then write a YARA rule for the family.",
        task_type="rule_generation",
        parameters={"tools": [tool]},
    )
    message = out["result"]["choices"][0]["message"]
    assert message["tool_calls"][0]["function"]["name"] == "lookup_hash"
    assert "validation" not in out["result"]
    assert len(fake_cluster.node2.calls) == 1


async def test_a_sigma_answer_to_a_yara_request_does_not_pass_as_the_rule(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.reply = first_then(f"```yaml\n{SIGMA}```", f"```yaml\n{SIGMA}```")
    out = await run(graph, runtime, prompt="Write a YARA rule for encoded PowerShell droppers.")
    validation = out["result"]["validation"]
    assert validation["status"] == "failed" and validation["kind"] == "yara"
    assert validation["error"] == "the answer holds no YARA rule"


async def test_prose_asked_for_as_json_is_repaired_with_vllms_json_mode(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    for node in fake_cluster.by_node().values():
        node.behaviour.reply = first_then("The IP is 198.51.100.7.", '{"ips": ["198.51.100.7"]}')
    out = await run(
        graph, runtime, prompt="Extract the IP addresses as JSON: blocked 198.51.100.7 on 443."
    )
    assert out["routing"]["task_type"] == "structured_parsing"
    validation = out["result"]["validation"]
    assert validation["status"] == "repaired" and validation["error"] == "the answer holds no JSON"
    repair = max((c for n in fake_cluster.by_node().values() for c in n.calls), key=lambda c: c.at)
    assert repair.body["response_format"] == {"type": "json_object"}


async def test_a_rule_that_stays_broken_is_reported_failed_not_raised(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.reply = first_then(BROKEN_YARA, BROKEN_YARA)
    out = await run(graph, runtime, prompt="Write a YARA rule for evil.exe droppers.")
    validation = out["result"]["validation"]
    assert out["status"] == "completed"
    assert validation["status"] == "failed" and validation["attempts"] == 2
    assert len(fake_cluster.node2.calls) == 2


async def test_a_sigma_rule_comes_back_with_its_splunk_and_kusto_queries(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.reply = first_then(f"```yaml\n{SIGMA}```", "unused")
    queries = {}
    for target in ("splunk", "kusto"):
        out = await run(
            graph, runtime, prompt="Sigma rule for encoded PowerShell, please.", target=target
        )
        validation = out["result"]["validation"]
        assert validation["kind"] == "sigma" and validation["status"] == "passed"
        queries[target] = validation["conversions"][target]
    assert queries["splunk"].startswith('Image="*\\\\powershell.exe"')
    assert queries["kusto"].startswith("DeviceProcessEvents")


async def test_a_json_answer_is_checked_against_the_callers_schema(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    schema = {
        "type": "object",
        "required": ["ips"],
        "properties": {"ips": {"type": "array", "items": {"type": "string"}}},
    }
    fake_cluster.node1.behaviour.reply = first_then('{"ips": [7]}', '{"ips": ["198.51.100.7"]}')
    fake_cluster.node2.behaviour.reply = fake_cluster.node1.behaviour.reply
    response_format = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    out = await run(
        graph,
        runtime,
        prompt="Extract the IPs as JSON: failed logins from 198.51.100.7",
        task_type="structured_parsing",
        parameters={"response_format": response_format},
    )
    validation = out["result"]["validation"]
    assert validation["status"] == "repaired"
    assert validation["error"] == "$.ips[0]: 7 is not of type 'string'"
    content = out["result"]["choices"][0]["message"]["content"]
    assert json.loads(content) == {"ips": ["198.51.100.7"]}
    sent = [c.body for c in fake_cluster.node1.calls + fake_cluster.node2.calls]
    assert all(body["response_format"]["json_schema"]["schema"] == schema for body in sent)


async def test_answers_of_other_task_types_are_not_checked(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    out = await run(graph, runtime, prompt="Explain what a YARA rule is.")
    assert "validation" not in out["result"]


async def test_without_repair_a_failed_answer_is_checked_and_not_asked_again(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.reply = first_then(BROKEN_YARA, YARA)
    out = await run(graph, runtime, prompt="Write a YARA rule for droppers.", repair=False)
    assert out["result"]["validation"]["status"] == "failed"
    assert len(fake_cluster.node2.calls) == 1


async def test_across_models_the_rule_that_compiles_wins_best_quality(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    # qwen-coder's broken rule is the longer answer; deepseek's compiles.
    fake_cluster.node2.behaviour.reply = lambda model, messages: (
        f"Here is a thorough rule for the dropper family:\n```yara\n{BROKEN_YARA}\n```"
    )
    fake_cluster.node1.behaviour.reply = lambda model, messages: f"```yara\n{YARA}\n```"
    out = await run(
        graph,
        runtime,
        prompt="Write a YARA rule for evil.exe droppers.",
        models=["qwen-coder", "deepseek"],
        merge_strategy="best_quality",
    )
    merge = out["result"]["merge"]
    assert merge["strategy"] == "best_quality"
    assert out["result"]["choices"][0]["message"]["content"] == f"```yara\n{YARA}\n```"
    scores = merge["scores"]
    assert scores["deepseek@gb10-node-1"] > scores["qwen-coder@gb10-node-2"]


async def test_a_kql_query_that_does_not_parse_is_repaired(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    broken = "SigninLogs | where ResultType != | summarize count() by UserPrincipalName"
    fixed = "SigninLogs | where ResultType != 0 | summarize count() by UserPrincipalName"
    fake_cluster.node2.behaviour.reply = first_then(f"```kql\n{broken}\n```", fixed)
    out = await run(graph, runtime, prompt="Write a KQL query for failed sign-ins per user.")
    validation = out["result"]["validation"]
    assert (validation["kind"], validation["status"]) == ("kql", "repaired")
    assert validation["error"] == "mismatched input '|' (line 1, column 34)"
    assert out["result"]["choices"][0]["message"]["content"] == fixed
    # No grammar for KQL: the repair is free text, checked again.
    assert "structured_outputs" not in fake_cluster.node2.calls[-1].body
