"""The merger agent: merge strategies, with the ensemble's aggregator call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from cluster.calls import ReservedCalls
from cluster.completion import CallResult
from policies.errors import RouterError
from policies.merge import Candidate, Expectation, MergeOutcome, local_strategy
from policies.merge.ensemble import (
    ENSEMBLE_SYSTEM,
    ensemble_fallback,
    ensemble_outcome,
    ensemble_prompt,
)
from policies.types import MergeStrategy
from policies.usage import Usage


def candidate(result: CallResult) -> Candidate:
    """A model call's answer as a merge candidate."""
    return Candidate(
        result.label,
        result.completion.content,
        result.model,
        result.confidence,
        result.completion.finish_reason,
    )


@dataclass(frozen=True)
class Merged:
    """A merge's outcome and the tokens it cost (the ensemble's aggregator call)."""

    outcome: MergeOutcome
    usage: Usage = field(default_factory=Usage)


class MergerAgent:
    """Merges several answers by a named strategy."""

    def __init__(self, calls: ReservedCalls, aggregator_model: str) -> None:
        self._calls = calls
        self.aggregator_model = aggregator_model

    async def amerge(
        self,
        candidates: list[Candidate],
        strategy: MergeStrategy,
        *,
        job_id: str,
        priority: int,
        question: str = "",
        expect: Expectation | None = None,
    ) -> Merged:
        """Merge candidates; the ensemble calls the aggregator (reserved under `job_id` at
        `priority`) and falls back to concatenation when it fails."""
        expectation = expect or Expectation()
        if strategy is not MergeStrategy.ENSEMBLE:
            merge = local_strategy(strategy)
            if strategy is MergeStrategy.BEST_QUALITY and expectation.code:
                # Compiling each candidate's rule takes milliseconds: off the event loop.
                return Merged(await asyncio.to_thread(merge, candidates, expectation))
            return Merged(merge(candidates, expectation))
        prompt = ensemble_prompt(question, candidates)
        try:
            result = await self._calls.call(
                job_id,
                self.aggregator_model,
                prompt,
                {"temperature": 0},
                system=ENSEMBLE_SYSTEM,
                priority=priority,
            )
        except RouterError as exc:
            fallback = ensemble_fallback(candidates, expectation, f"{exc.code}: {exc.message}")
            return Merged(fallback)
        outcome = ensemble_outcome(result.completion.content, candidates, self.aggregator_model)
        return Merged(outcome, result.completion.usage)
