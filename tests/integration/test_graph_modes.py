"""The graph end to end in all four modes, against fake OpenAI backends over real HTTP."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Collection
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from app.runtime import RouterRuntime
from policies.errors import BackendUnavailable, CapacityTimeout, InvalidRequest
from tests.conftest import FakeCluster
from tests.fakes.openai_backend import asked_items
from tests.integration.conftest import run


async def test_single_threat_analysis_reaches_llama31_on_node2(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    out = await run(
        graph,
        runtime,
        prompt="Analyze this suspicious PowerShell script for malicious intent: IEX(New-Object Net.WebClient)",
        task_hints=["threat", "adversary", "malicious"],
        parameters={"temperature": 0.3},
    )
    assert out["status"] == "completed"
    assert out["execution_mode"] == "single"
    assert out["routing"]["task_type"] == "adversarial_reasoning"
    assert out["routing"]["model"] == "llama31"
    assert out["scheduling"]["node"]["node_id"] == "gb10-node-2"
    assert out["scheduling"]["node"]["endpoint"] == f"{fake_cluster.node2.url}/llama31/v1"
    assert fake_cluster.node2.models_called() == ["llama31"]
    assert fake_cluster.node1.calls == []
    call = fake_cluster.node2.calls[0]
    assert call.served_model == "llama31"
    assert call.body["temperature"] == 0.3
    assert call.body["logprobs"] is True
    choice = out["result"]["choices"][0]
    assert choice["message"]["content"].startswith("llama31: Analyze this")
    assert out["result"]["confidence"] == pytest.approx(0.904837, abs=1e-5)
    assert out["result"]["usage"]["total_tokens"] > 0
    assert runtime.scheduler.leases() == []


async def test_yara_rule_goes_to_qwen_coder(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    out = await run(
        graph,
        runtime,
        prompt="Generate a YARA rule to detect this malware family: strings 'evil.dll' and 'x0r'",
        task_hints=["code", "rule", "generate"],
    )
    assert out["routing"]["model"] == "qwen-coder"
    # The echo holds no rule: it is asked once more, of the same model.
    assert fake_cluster.node2.models_called() == ["qwen-coder", "qwen-coder"]
    assert out["result"]["validation"]["error"] == "the answer holds no YARA rule"


async def test_parallel_batch_spreads_over_both_nodes_and_keeps_item_order(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    items = [f"log line {i}" for i in range(50)]

    def reply(model: str, messages: list[dict[str, Any]]) -> str:
        return "\n".join(f"{n}: benign" for n in asked_items(str(messages[-1]["content"])))

    fake_cluster.node1.behaviour.reply = reply
    fake_cluster.node2.behaviour.reply = reply
    out = await run(
        graph,
        runtime,
        prompt="Classify each log entry as benign or malicious.",
        task_hints=["classify", "anomaly"],
        requires_parallel=True,
        items=items,
    )
    assert out["execution_mode"] == "parallel"
    nodes = {n["node_id"] for n in out["scheduling"]["nodes"]}
    assert nodes == {"gb10-node-1", "gb10-node-2"}
    assert fake_cluster.node1.calls and fake_cluster.node2.calls
    answer = out["result"]["choices"][0]["message"]["content"]
    numbers = [int(line.split(":")[0]) for line in answer.splitlines() if line[:1].isdigit()]
    assert numbers == list(range(1, 51))
    assert out["result"]["merge"]["strategy"] == "concatenate"
    covered = sorted(tuple(b["items"]) for b in out["result"]["branches"])
    assert covered[0][0] == 0 and covered[-1][1] == 49
    assert runtime.scheduler.leases() == []


async def test_parallel_without_items_fans_out_models_and_merges(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node1.behaviour.reply = lambda m, msgs: "malicious"
    fake_cluster.node2.behaviour.reply = lambda m, msgs: "Malicious."
    out = await run(
        graph,
        runtime,
        prompt="Analyze these 50 log entries for anomalies: is this batch benign or malicious?",
        task_hints=["classify", "anomaly"],
        requires_parallel=True,
        batch_size=50,
    )
    assert out["execution_mode"] == "parallel"
    called = {(c.node, c.path_model) for n in fake_cluster.by_node().values() for c in n.calls}
    assert ("gb10-node-2", "granite-guardian") in called
    assert any(node == "gb10-node-1" for node, _ in called)
    merge = out["result"]["merge"]
    assert merge["strategy"] == "consensus"
    assert len(merge["used"]) == len(called)


async def test_chain_extract_classify_generate_routes_each_step(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    out = await run(
        graph,
        runtime,
        prompt="First extract IOCs, then classify threats, finally generate response plan",
        task_hints=["parse", "classify", "generate"],
        requires_chaining=True,
        operations=["extract", "classify", "generate"],
    )
    assert out["execution_mode"] == "chained"
    steps = out["chain"]
    assert [s["operation"] for s in steps] == ["extract", "classify", "generate"]
    assert [s["model"] for s in steps] == ["phi4", "granite-guardian", "qwen-coder"]
    assert fake_cluster.node2.models_called() == ["phi4", "granite-guardian", "qwen-coder"]
    # Each step sees the outputs of the earlier ones.
    third = str(fake_cluster.node2.calls[2].messages[-1]["content"])
    assert steps[0]["output"] in third and steps[1]["output"] in third
    assert out["result"]["choices"][0]["message"]["content"] == steps[2]["output"]


async def test_queued_job_runs_when_capacity_frees(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    runtime.registry.update_status("gb10-node-2", vram_used_gb=79.5)
    task = asyncio.create_task(
        run(
            graph,
            runtime,
            prompt="Label this alert: true positive or false positive?",
            task_type="classification",
            model="granite-guardian",
        )
    )
    await asyncio.sleep(0.2)
    assert not task.done()
    assert runtime.scheduler.queue_depth == 1
    runtime.registry.update_status("gb10-node-2", vram_used_gb=10)
    out = await asyncio.wait_for(task, 5)
    assert out["execution_mode"] == "queued"
    assert out["scheduling"]["dispatched_as"] == "single"
    assert out["scheduling"]["queue_wait_s"] >= 0.15
    assert fake_cluster.node2.models_called() == ["granite-guardian"]


async def test_queued_job_times_out_with_capacity_error(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    runtime.registry.update_status("gb10-node-2", vram_used_gb=80)
    with pytest.raises(CapacityTimeout) as err:
        await run(graph, runtime, prompt="x", model="granite-guardian", timeout_s=0.2)
    assert err.value.http_status == 503
    assert "granite-guardian" in err.value.message
    assert runtime.scheduler.queue_depth == 0
    assert fake_cluster.node2.calls == []


async def test_backend_failure_is_a_clear_503(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node1.behaviour.fail_status = 500
    fake_cluster.node2.behaviour.fail_status = 500
    with pytest.raises(BackendUnavailable) as err:
        await run(graph, runtime, prompt="Generate a Sigma rule for rundll32 spawning cmd")
    assert err.value.http_status == 503
    assert runtime.scheduler.leases() == []


async def test_unknown_model_is_refused(graph: Any, runtime: RouterRuntime) -> None:
    with pytest.raises(InvalidRequest, match="valid: deepseek"):
        await run(graph, runtime, prompt="hello", model="gpt-17")


async def test_failed_server_fails_over_to_another_capable_node(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.fail_status = 503
    out = await run(
        graph,
        runtime,
        prompt="Classify this alert: benign or malicious?",
        task_type="classification",
    )
    assert out["status"] == "completed"
    assert out["result"]["failed_over_from"]["node_id"] == "gb10-node-2"
    assert out["result"]["node_id"] == "gb10-node-1"
    assert fake_cluster.node1.models_called() == ["deepseek"]
    assert runtime.scheduler.leases() == []


async def test_fan_out_branches_run_at_the_same_time(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node1.behaviour.delay_s = 0.6
    fake_cluster.node2.behaviour.delay_s = 0.6
    out = await run(
        graph,
        runtime,
        prompt="Is this beacon malicious?",
        models=["deepseek", "llama31", "phi4", "granite-guardian"],
        merge_strategy="concatenate",
    )
    assert len(out["result"]["branches"]) == 4
    # Node 2's three models were answering at once, not one after another (counted by the
    # node itself, so a busy machine cannot make this pass or fail).
    assert fake_cluster.node2.max_in_flight == 3
    assert fake_cluster.node1.max_in_flight == 1


async def label_batch(graph: Any, runtime: RouterRuntime, prompt: str, items: list[str]) -> Any:
    """A parallel classification batch of `items`, each to be labelled benign or malicious."""
    return await run(
        graph,
        runtime,
        prompt=prompt,
        task_type="classification",
        requires_parallel=True,
        items=items,
        labels=["benign", "malicious"],
    )


def answer_each(
    skip: Collection[int] = (), garble: Collection[int] = ()
) -> Callable[[str, list[dict[str, Any]]], str]:
    """A reply that labels every numbered item `benign`, leaving out the numbers in `skip` and
    answering those in `garble` with something that is no label."""

    def reply(model: str, messages: list[dict[str, Any]]) -> str:
        numbers = asked_items(str(messages[-1]["content"]))
        return "\n".join(
            f"{n}. {'no idea, sorry' if n in garble else 'benign'}"
            for n in numbers
            if n not in skip
        )

    return reply


async def test_a_batch_answers_item_by_item_and_retries_what_a_branch_skipped_elsewhere(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    items = [f"log line {i}" for i in range(50)]
    node1_calls = 0

    def node1_reply(model: str, messages: list[dict[str, Any]]) -> str:
        # Its chunk's 1st and 2nd items skipped and its 3rd garbled, on its first call only.
        nonlocal node1_calls
        node1_calls += 1
        numbers = asked_items(str(messages[-1]["content"]))
        if node1_calls > 1:
            return answer_each()(model, messages)
        return answer_each(skip=set(numbers[:2]), garble={numbers[2]})(model, messages)

    fake_cluster.node1.behaviour.reply = node1_reply
    fake_cluster.node2.behaviour.reply = answer_each()
    out = await label_batch(graph, runtime, "Label each log entry.", items)
    result = out["result"]
    assert [i["index"] for i in result["items"]] == list(range(50))
    assert all(i["answer"] == "benign" for i in result["items"])
    retried = [i for i in result["items"] if i["status"] == "retried"]
    assert len(retried) == 3
    skipped, garbled = retried[:2], retried[2]
    assert all(i["problem"].startswith("skipped") for i in skipped)
    assert "not one of benign, malicious" in garbled["problem"]
    # Retried on the other node, which had answered its own chunk in full the first time.
    assert {i["node_id"] for i in retried} == {"gb10-node-2"}
    first = fake_cluster.node1.calls[0]
    assert '"label": <one of: benign, malicious>' in first.messages[-1]["content"]
    # Servers with guided decoding are held to one label for each item asked, in order.
    schema = Draft202012Validator(first.body["response_format"]["json_schema"]["schema"])
    asked = [int(ln.split(".")[0]) for ln in first.messages[-1]["content"].splitlines()[4:]]
    full = [{"item": n, "label": "benign"} for n in asked]
    assert schema.is_valid({"answers": full})
    assert not schema.is_valid({"answers": full[1:]})
    assert not schema.is_valid({"answers": [full[1], full[0], *full[2:]]})
    assert not schema.is_valid({"answers": [*full[:-1], {"item": asked[-1], "label": "odd"}]})
    retry = fake_cluster.node2.calls[-1].messages[-1]["content"]
    asked_again = asked_items(retry)
    assert asked_again == [i["index"] + 1 for i in retried]
    assert sum(i["status"] == "answered" for i in result["items"]) == 47
    retried_total = runtime.context.metrics.registry.get_sample_value(
        "gb10_batch_items_total", {"status": "retried"}
    )
    assert retried_total is not None and retried_total >= 3
    assert runtime.scheduler.leases() == []


async def test_answers_before_a_token_limit_cut_are_kept_and_the_rest_retried(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    def cut_off(model: str, messages: list[dict[str, Any]]) -> str:
        numbers = asked_items(str(messages[-1]["content"]))
        whole = [{"item": n, "label": "malicious"} for n in numbers[:5]]
        return json.dumps({"answers": whole})[:-2] + ', {"item": ' + str(numbers[5]) + ', "lab'

    fake_cluster.node1.behaviour.reply = cut_off
    fake_cluster.node1.behaviour.finish_reason = "length"
    fake_cluster.node2.behaviour.reply = answer_each()
    out = await label_batch(
        graph, runtime, "Label each log entry.", [f"log line {i}" for i in range(30)]
    )
    items = out["result"]["items"]
    on_node1 = [i for i in items if i["node_id"] == "gb10-node-1"]
    assert [i["answer"] for i in on_node1] == ["malicious"] * 5
    retried = [i for i in items if i["status"] == "retried"]
    assert retried and all(i["problem"].startswith("cut short") for i in retried)
    assert {i["node_id"] for i in retried} == {"gb10-node-2"}
    assert all(i["answer"] is not None for i in items)
    assert out["result"]["choices"][0]["finish_reason"] == "length"


async def test_an_item_that_fails_its_retry_too_is_missing_with_both_reasons(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node1.behaviour.reply = answer_each(skip={2})
    fake_cluster.node2.behaviour.reply = answer_each(skip={2})
    out = await run(
        graph,
        runtime,
        prompt="Label each entry.",
        task_type="classification",
        items=["a", "b", "c"],
    )
    items = out["result"]["items"]
    assert [i["status"] for i in items] == ["answered", "missing", "answered"]
    assert items[1]["answer"] is None
    assert items[1]["problem"].count("skipped") == 2 and "on the retry" in items[1]["problem"]


async def test_a_retry_of_scattered_items_names_each_of_them(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    def reply(model: str, messages: list[dict[str, Any]]) -> str:
        # Items 1 and 3 are skipped wherever they are first asked; their retry (which asks
        # about them alone, without item 2) is answered.
        first_ask = "2. b" in str(messages[-1]["content"])
        return answer_each(skip={1, 3} if first_ask else ())(model, messages)

    fake_cluster.node1.behaviour.reply = reply
    fake_cluster.node2.behaviour.reply = reply
    out = await run(
        graph,
        runtime,
        prompt="Label each.",
        task_type="classification",
        model="llama31",
        items=["a", "b", "c"],
    )
    retry = out["result"]["branches"][-1]
    assert out["result"]["items"][0]["status"] == "retried"
    assert out["result"]["items"][2]["status"] == "retried"
    assert retry["items"] == [0, 2]


def answer_json(label_of: Callable[[int], str]) -> Callable[[str, list[dict[str, Any]]], str]:
    """A reply that answers every numbered item as JSON, `label_of(number)` each."""

    def reply(model: str, messages: list[dict[str, Any]]) -> str:
        numbers = asked_items(str(messages[-1]["content"]))
        answers = [{"item": n, "label": label_of(n)} for n in numbers]
        return json.dumps({"answers": answers}, separators=(",", ":"))

    return reply


async def test_each_labelled_item_gets_its_own_confidence_from_its_labels_tokens(
    graph: Any, runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    sure = {"benign": math.log(0.8), "malicious": math.log(0.3)}
    for node in (fake_cluster.node1, fake_cluster.node2):
        node.behaviour.reply = answer_json(lambda n: "malicious" if n % 5 == 0 else "benign")
        # At a label, the model's own choice and the other label are the alternatives.
        node.behaviour.alternatives = lambda token: (
            {
                token: sure[token],
                **{other: math.log(1 - math.exp(sure[token])) for other in sure if other != token},
            }
            if token in sure
            else {}
        )
    out = await label_batch(graph, runtime, "Label each alert.", [f"alert {i}" for i in range(20)])
    items = out["result"]["items"]
    assert [i["status"] for i in items] == ["answered"] * 20
    for item in items:
        expected = 0.3 if (item["index"] + 1) % 5 == 0 else 0.8
        assert item["confidence"] == pytest.approx(expected), item
    sent = fake_cluster.node1.calls[0].body
    assert sent["logprobs"] is True and sent["top_logprobs"] == 5
