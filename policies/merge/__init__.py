"""Merge strategies, one per module."""

from policies.merge.base import (
    Candidate,
    Expectation,
    MergeOutcome,
    MergeReport,
    expectation_for,
)
from policies.merge.registry import local_strategy

__all__ = [
    "Candidate",
    "Expectation",
    "MergeOutcome",
    "MergeReport",
    "expectation_for",
    "local_strategy",
]
