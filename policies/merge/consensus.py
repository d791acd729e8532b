"""Consensus: majority vote over normalised answers (over the labels they give, when the
request has a label set), ties broken by confidence."""

from __future__ import annotations

from policies.merge.base import (
    Candidate,
    Expectation,
    MergeOutcome,
    group_by_answer,
    require_candidates,
)
from policies.types import MergeStrategy


def consensus(candidates: list[Candidate], expect: Expectation) -> MergeOutcome:
    """The answer most candidates agree on; among equal counts, the most confident group."""
    require_candidates(candidates)
    groups = group_by_answer(candidates, expect.labels)

    def key(members: list[int]) -> tuple[int, float]:
        return len(members), max(candidates[i].weight for i in members)

    winner = max(groups.values(), key=key)
    best = max(winner, key=lambda i: candidates[i].weight)
    tied = [g for g in groups.values() if len(g) == len(winner) and g is not winner]
    reason = f"{len(winner)} of {len(candidates)} answers agree"
    if tied:
        reason += f"; tie with {len(tied)} other answer(s) broken by confidence"
    return MergeOutcome(
        strategy=MergeStrategy.CONSENSUS,
        answer=candidates[best].text,
        used=sorted(winner),
        reason=reason,
        scores={i: float(len(members)) for members in groups.values() for i in members},
    )
