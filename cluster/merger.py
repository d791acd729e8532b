"""The merger agent: merge strategies, with the ensemble's aggregator call."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from cluster.errors import RouterError
from cluster.pool import LLMPool
from policies.merge import Candidate, Expectation, MergeOutcome, local_strategy
from policies.merge.ensemble import (
    ENSEMBLE_SYSTEM,
    ensemble_fallback,
    ensemble_outcome,
    ensemble_prompt,
)
from policies.types import MergeStrategy


def candidate_from_result(result: dict[str, Any], index: int) -> Candidate:
    """A merge candidate from a pool result or the specification's `{model, response}` dict."""
    if "choices" in result:
        choice = result["choices"][0]
        text = choice["message"]["content"] or ""
        finish = choice.get("finish_reason")
    else:
        text = str(result.get("response", ""))
        finish = result.get("finish_reason")
    model = str(result.get("model_name") or result.get("model") or f"answer {index + 1}")
    label = str(result.get("label") or model)
    if result.get("node_id") and "label" not in result:
        label = f"{model}@{result['node_id']}"
    conf = result.get("confidence")
    return Candidate(label, text, model, None if conf is None else float(conf), finish)


def outcome_dict(outcome: MergeOutcome, candidates: Sequence[Candidate]) -> dict[str, Any]:
    """A merge outcome as JSON: the answer, the inputs used and why."""
    return {
        "strategy": outcome.strategy.value,
        "merged_response": outcome.answer,
        "used": [candidates[i].label for i in outcome.used],
        "used_indices": outcome.used,
        "reason": outcome.reason,
        "notes": outcome.notes,
        "scores": {candidates[i].label: s for i, s in outcome.scores.items()},
    }


class MergerAgent:
    """Merges several answers by a named strategy."""

    def __init__(self, pool: LLMPool, aggregator_model: str) -> None:
        self._pool = pool
        self.aggregator_model = aggregator_model

    async def amerge(
        self,
        candidates: list[Candidate],
        strategy: MergeStrategy | str,
        *,
        question: str = "",
        expect: Expectation | None = None,
    ) -> MergeOutcome:
        """Merge candidates; the ensemble calls the aggregator model and falls back on failure."""
        parsed = MergeStrategy.parse(strategy) if isinstance(strategy, str) else strategy
        expectation = expect or Expectation()
        if parsed is not MergeStrategy.ENSEMBLE:
            return local_strategy(parsed)(candidates, expectation)
        prompt = ensemble_prompt(question, candidates)
        try:
            result = await self._pool.call_model(
                self.aggregator_model, prompt, {"temperature": 0}, system=ENSEMBLE_SYSTEM
            )
        except RouterError as exc:
            return ensemble_fallback(candidates, expectation, f"{exc.code}: {exc.message}")
        text = result["choices"][0]["message"]["content"]
        return ensemble_outcome(text, candidates, self.aggregator_model)

    async def amerge_results(
        self,
        results: list[dict[str, Any]],
        strategy: MergeStrategy | str = MergeStrategy.CONSENSUS,
        question: str = "",
    ) -> dict[str, Any]:
        """Merge result dicts (pool results or `{model, response, confidence}`)."""
        candidates = [candidate_from_result(r, i) for i, r in enumerate(results)]
        return outcome_dict(await self.amerge(candidates, strategy, question=question), candidates)

    def merge_results(
        self,
        results: list[dict[str, Any]],
        strategy: MergeStrategy | str = MergeStrategy.CONSENSUS,
        question: str = "",
    ) -> dict[str, Any]:
        """Synchronous merge, as the specification calls it; use `amerge_results` in async code."""
        parsed = MergeStrategy.parse(strategy) if isinstance(strategy, str) else strategy
        candidates = [candidate_from_result(r, i) for i, r in enumerate(results)]
        if parsed is not MergeStrategy.ENSEMBLE:
            return outcome_dict(local_strategy(parsed)(candidates, Expectation()), candidates)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.amerge_results(results, parsed, question))
        raise RuntimeError("merge_results with ensemble inside an event loop: await amerge_results")
