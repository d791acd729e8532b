"""The LLM pool against fake OpenAI backends over HTTP."""

from __future__ import annotations

import pytest

from app.api import Merger, Pool
from app.runtime import RouterRuntime, build_runtime
from policies.errors import (
    BackendRejected,
    BackendUnavailable,
    InvalidRequest,
    UnknownModel,
    UnknownNode,
)
from policies.types import MergeStrategy
from service.responses import call_json
from tests.conftest import FakeCluster


async def test_call_returns_openai_shape_with_confidence_from_logprobs(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node1.behaviour.logprob = -0.5
    result = await runtime.pool.call_model(
        "deepseek", "Explain DNS tunnelling", {"max_tokens": 64}, node_id="gb10-node-1"
    )
    out = call_json(result)
    assert out["object"] == "chat.completion"
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"]["completion_tokens"] == len(out["choices"][0]["message"]["content"].split())
    assert out["confidence"] == pytest.approx(0.606531, abs=1e-5)
    assert out["node_id"] == "gb10-node-1" and out["latency_ms"] > 0
    assert fake_cluster.node1.calls[0].body["max_completion_tokens"] == 64


async def test_no_logprobs_means_unknown_confidence(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.logprob = None
    out = await runtime.pool.call_model("phi4", "Parse this", node_id="gb10-node-2")
    assert out.confidence is None


async def test_unknown_model_and_parameter_are_clear_errors(runtime: RouterRuntime) -> None:
    with pytest.raises(UnknownModel, match="valid: deepseek"):
        await runtime.pool.call_model("gpt-9", "x", node_id="gb10-node-1")
    with pytest.raises(UnknownNode, match="it is on gb10-node-2"):
        await runtime.pool.call_model("phi4", "x", node_id="gb10-node-1")
    with pytest.raises(InvalidRequest, match="unknown parameter"):
        await runtime.pool.call_model("phi4", "x", {"temprature": 0}, node_id="gb10-node-2")


async def test_top_logprobs_ask_for_logprobs_when_the_pool_does_not(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch
) -> None:
    runtime = build_runtime(fake_cluster.settings(llm_request_logprobs=False))
    await runtime.pool.call_model("phi4", "x", node_id="gb10-node-2")
    await runtime.pool.call_model("phi4", "x", {"top_logprobs": 4}, node_id="gb10-node-2")
    plain, ranked = fake_cluster.node2.calls
    assert "logprobs" not in plain.body
    assert ranked.body["logprobs"] is True and ranked.body["top_logprobs"] == 4
    await runtime.aclose()


async def test_a_grammar_is_the_routers_argument_not_a_parameter(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    held = {"structured_outputs": {"grammar": 'root ::= "benign"'}}
    with pytest.raises(InvalidRequest, match="unknown parameter"):
        await runtime.pool.call_model("phi4", "x", held, node_id="gb10-node-2")
    await runtime.pool.call_model(
        "phi4",
        "x",
        {"response_format": {"type": "json_object"}},
        node_id="gb10-node-2",
        grammar='root ::= "benign"',
    )
    body = fake_cluster.node2.calls[-1].body
    assert body["structured_outputs"] == {"grammar": 'root ::= "benign"'}
    assert body["response_format"] == {"type": "json_object"}


async def test_health_follows_call_outcomes(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    where = ("gb10-node-2", "llama31")
    record = runtime.health.get(*where)
    fake_cluster.node2.behaviour.fail_status = 503
    with pytest.raises(BackendUnavailable):
        await runtime.pool.call_model("llama31", "x", node_id="gb10-node-2")
    assert runtime.health.is_up(*where) is False and "503" in (record.last_error or "")
    assert runtime.scheduler.try_acquire("j", ["llama31"]) is None
    fake_cluster.node2.behaviour.fail_status = 400
    with pytest.raises(BackendRejected):
        await runtime.pool.call_model("llama31", "x", node_id="gb10-node-2")
    fake_cluster.node2.behaviour.fail_status = None
    await runtime.pool.call_model("llama31", "x", node_id="gb10-node-2")
    assert runtime.health.is_up(*where) is True and record.last_error is None
    assert (record.calls, record.failures) == (3, 2)


async def test_unreachable_backend_is_unavailable(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    from cluster.health import HealthBoard
    from cluster.pool import LLMPool, PoolOptions

    cluster = runtime.cluster.with_node_urls({1: "http://127.0.0.1:9"})
    pool = LLMPool(cluster, PoolOptions(timeout_s=2, max_retries=0), HealthBoard(cluster))
    with pytest.raises(BackendUnavailable, match="unreachable"):
        await pool.call_model("deepseek", "x", node_id="gb10-node-1")
    await pool.aclose()


async def test_call_multiple_models_runs_concurrently_and_reports_failures(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node1.behaviour.delay_s = 0.3
    fake_cluster.node2.behaviour.delay_s = 0.3
    import time

    started = time.perf_counter()
    pool = Pool(runtime.calls, runtime.cluster)
    out = await pool.call_multiple_models(["llama31", "deepseek", "phi4"], "x")
    assert time.perf_counter() - started < 0.6
    assert [r["model_name"] for r in out] == ["llama31", "deepseek", "phi4"]
    fake_cluster.node1.behaviour.fail_status = 500
    out = await pool.call_multiple_models(["llama31", "deepseek"], "x")
    assert "choices" in out[0] and out[1]["error"]["code"] == "backend_unavailable"


async def test_ensemble_synthesises_through_the_aggregator(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node1.behaviour.reply = lambda model, msgs: "SYNTHESIS"
    results = [
        {"model": "llama31", "response": "C2 over DNS", "confidence": 0.9},
        {"model": "qwen72", "response": "DNS tunnelling", "confidence": 0.6},
    ]
    merger = Merger(runtime.merger)
    merged = await merger.amerge_results(results, MergeStrategy.ENSEMBLE, "What is it?")
    assert merged["merged_response"] == "SYNTHESIS"
    sent = str(fake_cluster.node1.calls[0].messages[-1]["content"])
    assert "C2 over DNS" in sent and "DNS tunnelling" in sent
    assert fake_cluster.node1.calls[0].path_model == "deepseek"


async def test_ensemble_falls_back_to_concatenate_when_aggregator_is_down(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node1.behaviour.fail_status = 502
    results = [{"model": "llama31", "response": "A"}, {"model": "phi4", "response": "B"}]
    merged = await Merger(runtime.merger).amerge_results(results, "ensemble")
    assert merged["merged_response"] == "### llama31\nA\n\n### phi4\nB"
    assert "fell back to concatenate" in merged["notes"][0]


async def test_streaming_yields_the_answer_in_pieces(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.reply = lambda model, msgs: "rule evil { condition: true }"
    stream = runtime.pool.stream_model("qwen-coder", "Write a YARA rule", node_id="gb10-node-2")
    pieces = [p async for p in stream]
    assert len(pieces) > 1
    assert "".join(pieces) == "rule evil { condition: true }"
    assert fake_cluster.node2.calls[0].body["stream"] is True


async def test_streaming_failure_is_a_router_error(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.fail_status = 500
    with pytest.raises(BackendUnavailable):
        async for _ in runtime.pool.stream_model("qwen-coder", "x", node_id="gb10-node-2"):
            pass
