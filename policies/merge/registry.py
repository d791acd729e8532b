"""Name -> merge strategy. Ensemble is not here: it needs a model call (see cluster.merger)."""

from __future__ import annotations

from policies.merge.base import MergeFn
from policies.merge.best_quality import best_quality
from policies.merge.concatenate import concatenate
from policies.merge.consensus import consensus
from policies.merge.weighted import weighted
from policies.types import MergeStrategy

LOCAL_STRATEGIES: dict[MergeStrategy, MergeFn] = {
    MergeStrategy.CONSENSUS: consensus,
    MergeStrategy.WEIGHTED: weighted,
    MergeStrategy.CONCATENATE: concatenate,
    MergeStrategy.BEST_QUALITY: best_quality,
}


def local_strategy(strategy: MergeStrategy | str) -> MergeFn:
    """The strategy function; an unknown name or ensemble raises, listing the valid names."""
    parsed = MergeStrategy.parse(strategy) if isinstance(strategy, str) else strategy
    try:
        return LOCAL_STRATEGIES[parsed]
    except KeyError:
        valid = ", ".join(s.value for s in LOCAL_STRATEGIES)
        raise ValueError(f"{parsed.value} needs a model call; local strategies: {valid}") from None
