"""The LLM pool against fake OpenAI backends over HTTP."""

from __future__ import annotations

import pytest

from cluster.errors import BackendRejected, BackendUnavailable, InvalidRequest, UnknownModel
from cluster.runtime import RouterRuntime
from policies.types import MergeStrategy
from tests.conftest import FakeCluster


async def test_call_returns_openai_shape_with_confidence_from_logprobs(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node1.behaviour.logprob = -0.5
    out = await runtime.pool.call_model("deepseek", "Explain DNS tunnelling", {"max_tokens": 64})
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
    out = await runtime.pool.call_model("phi4", "Parse this")
    assert out["confidence"] is None


async def test_unknown_model_and_parameter_are_clear_errors(runtime: RouterRuntime) -> None:
    with pytest.raises(UnknownModel, match="valid: deepseek"):
        await runtime.pool.call_model("gpt-9", "x")
    with pytest.raises(InvalidRequest, match="unknown parameter"):
        await runtime.pool.call_model("phi4", "x", {"temprature": 0})


async def test_health_follows_call_outcomes(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    endpoint = runtime.pool.endpoint("llama31")
    fake_cluster.node2.behaviour.fail_status = 503
    with pytest.raises(BackendUnavailable):
        await runtime.pool.call_model("llama31", "x")
    assert endpoint.healthy is False and "503" in (endpoint.last_error or "")
    fake_cluster.node2.behaviour.fail_status = 400
    with pytest.raises(BackendRejected):
        await runtime.pool.call_model("llama31", "x")
    fake_cluster.node2.behaviour.fail_status = None
    await runtime.pool.call_model("llama31", "x")
    assert endpoint.healthy is True and endpoint.last_error is None


async def test_unreachable_backend_is_unavailable(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    from cluster.pool import LLMPool, PoolOptions

    cluster = runtime.cluster.with_node_urls({1: "http://127.0.0.1:9"})
    pool = LLMPool(cluster, PoolOptions(timeout_s=2, max_retries=0))
    with pytest.raises(BackendUnavailable, match="unreachable"):
        await pool.call_model("deepseek", "x")
    await pool.aclose()


async def test_call_multiple_models_runs_concurrently_and_reports_failures(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node1.behaviour.delay_s = 0.3
    fake_cluster.node2.behaviour.delay_s = 0.3
    import time

    started = time.perf_counter()
    out = await runtime.pool.call_multiple_models(["llama31", "deepseek", "phi4"], "x")
    assert time.perf_counter() - started < 0.6
    assert [r["model_name"] for r in out] == ["llama31", "deepseek", "phi4"]
    fake_cluster.node1.behaviour.fail_status = 500
    out = await runtime.pool.call_multiple_models(["llama31", "deepseek"], "x")
    assert "choices" in out[0] and out[1]["error"]["code"] == "backend_unavailable"


async def test_ensemble_synthesises_through_the_aggregator(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node1.behaviour.reply = lambda model, msgs: "SYNTHESIS"
    results = [
        {"model": "llama31", "response": "C2 over DNS", "confidence": 0.9},
        {"model": "qwen72", "response": "DNS tunnelling", "confidence": 0.6},
    ]
    merged = await runtime.merger.amerge_results(results, MergeStrategy.ENSEMBLE, "What is it?")
    assert merged["merged_response"] == "SYNTHESIS"
    sent = str(fake_cluster.node1.calls[0].messages[-1]["content"])
    assert "C2 over DNS" in sent and "DNS tunnelling" in sent
    assert fake_cluster.node1.calls[0].path_model == "deepseek"


async def test_ensemble_falls_back_to_concatenate_when_aggregator_is_down(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node1.behaviour.fail_status = 502
    results = [{"model": "llama31", "response": "A"}, {"model": "phi4", "response": "B"}]
    merged = await runtime.merger.amerge_results(results, "ensemble")
    assert merged["merged_response"] == "### llama31\nA\n\n### phi4\nB"
    assert "fell back to concatenate" in merged["notes"][0]


async def test_streaming_yields_the_answer_in_pieces(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.reply = lambda model, msgs: "rule evil { condition: true }"
    pieces = [p async for p in runtime.pool.stream_model("qwen-coder", "Write a YARA rule")]
    assert len(pieces) > 1
    assert "".join(pieces) == "rule evil { condition: true }"
    assert fake_cluster.node2.calls[0].body["stream"] is True


async def test_streaming_failure_is_a_router_error(
    runtime: RouterRuntime, fake_cluster: FakeCluster
) -> None:
    fake_cluster.node2.behaviour.fail_status = 500
    with pytest.raises(BackendUnavailable):
        async for _ in runtime.pool.stream_model("qwen-coder", "x"):
            pass
