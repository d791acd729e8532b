"""Confidence of an answer from its token log-probabilities."""

from __future__ import annotations

import math
from collections.abc import Sequence


def confidence_from_logprobs(logprobs: Sequence[float]) -> float | None:
    """Geometric-mean token probability, exp(mean logprob), in 0-1; None for no tokens."""
    if not logprobs:
        return None
    mean = sum(logprobs) / len(logprobs)
    return round(math.exp(max(mean, -700.0)), 6)
