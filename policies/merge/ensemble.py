"""Ensemble: an aggregator model synthesises the answers; concatenate when it cannot."""

from __future__ import annotations

from policies.merge.base import Candidate, Expectation, MergeOutcome, require_candidates
from policies.merge.concatenate import concatenate
from policies.types import MergeStrategy

ENSEMBLE_SYSTEM = (
    "You merge answers from several security-analysis models into one. Keep every correct, "
    "specific finding, resolve contradictions by the weight of evidence, drop repetition, and "
    "keep the format the question asked for. Answer with the merged answer only."
)


def ensemble_prompt(question: str, candidates: list[Candidate]) -> str:
    """The aggregator's user message: the question and every labelled answer."""
    require_candidates(candidates)
    answers = "\n\n".join(
        f'<answer source="{c.label}" confidence="{c.weight:.2f}">\n{c.text.strip()}\n</answer>'
        for c in candidates
    )
    return f"Question:\n{question}\n\nAnswers:\n{answers}"


def ensemble_outcome(synthesis: str, candidates: list[Candidate], aggregator: str) -> MergeOutcome:
    """The outcome when the aggregator answered."""
    return MergeOutcome(
        strategy=MergeStrategy.ENSEMBLE,
        answer=synthesis,
        used=list(range(len(candidates))),
        reason=f"{aggregator} synthesised {len(candidates)} answers",
    )


def ensemble_fallback(candidates: list[Candidate], expect: Expectation, error: str) -> MergeOutcome:
    """Concatenation, noted as the ensemble's fallback, when the aggregator failed."""
    joined = concatenate(candidates, expect)
    return MergeOutcome(
        strategy=MergeStrategy.ENSEMBLE,
        answer=joined.answer,
        used=joined.used,
        reason="aggregator unreachable: fell back to concatenate",
        notes=[f"ensemble fell back to concatenate: {error}"],
    )
