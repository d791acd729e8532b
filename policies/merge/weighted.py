"""Weighted: each answer's vote counts its confidence."""

from __future__ import annotations

from policies.merge.base import (
    Candidate,
    Expectation,
    MergeOutcome,
    group_by_answer,
    require_candidates,
)
from policies.types import MergeStrategy


def weighted(candidates: list[Candidate], expect: Expectation) -> MergeOutcome:
    """The answer with the largest summed confidence over the candidates that gave it."""
    require_candidates(candidates)
    groups = group_by_answer(candidates)
    mass = {key: sum(candidates[i].weight for i in members) for key, members in groups.items()}
    total = sum(mass.values()) or 1.0
    winner_key = max(mass, key=lambda k: mass[k])
    members = groups[winner_key]
    best = max(members, key=lambda i: candidates[i].weight)
    return MergeOutcome(
        strategy=MergeStrategy.WEIGHTED,
        answer=candidates[best].text,
        used=sorted(members),
        reason=f"confidence mass {mass[winner_key]:.2f} of {total:.2f}",
        scores={i: round(mass[k], 4) for k, group in groups.items() for i in group},
    )
