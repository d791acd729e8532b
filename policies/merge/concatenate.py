"""Concatenate: every answer, in input order, labelled by who produced it."""

from __future__ import annotations

from policies.merge.base import Candidate, Expectation, MergeOutcome, require_candidates
from policies.types import MergeStrategy


def concatenate(candidates: list[Candidate], expect: Expectation) -> MergeOutcome:
    """All answers joined under `### <label>` headings."""
    require_candidates(candidates)
    answer = "\n\n".join(f"### {c.label}\n{c.text.strip()}" for c in candidates)
    return MergeOutcome(
        strategy=MergeStrategy.CONCATENATE,
        answer=answer,
        used=list(range(len(candidates))),
        reason=f"all {len(candidates)} answers kept in input order",
    )
