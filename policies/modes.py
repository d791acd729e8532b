"""Which execution mode a request runs in."""

from __future__ import annotations

from policies.types import ExecutionMode, TaskType


def choose_mode(
    *,
    requires_parallel: bool,
    requires_chaining: bool,
    operations: list[str],
    items: list[str],
    models: list[str],
    parallel_enabled: bool,
) -> ExecutionMode:
    """Chained when operations are asked for; parallel for batches and multi-model fan-out."""
    if requires_chaining or operations:
        return ExecutionMode.CHAINED
    wants_parallel = requires_parallel or len(items) > 1 or len(models) > 1
    if wants_parallel and parallel_enabled:
        return ExecutionMode.PARALLEL
    return ExecutionMode.SINGLE


def default_merge_strategy(task_type: TaskType, has_items: bool) -> str:
    """Merge used when the request names none: item batches keep every chunk in order."""
    if has_items:
        return "concatenate"
    if task_type is TaskType.CLASSIFICATION:
        return "consensus"
    return "best_quality"
