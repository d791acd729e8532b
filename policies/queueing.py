"""Queue order: most urgent first, with aging so that no job waits for ever."""

from __future__ import annotations


def effective_priority(priority: int, waited_s: float, aging_s: float) -> float:
    """Priority (1 most urgent) improved by one level for every `aging_s` seconds waited.

    A priority-5 job that has waited 4 × aging_s ranks with fresh priority-1 jobs, so the
    longest wait of low-priority work is bounded whatever the load of urgent work.
    """
    if aging_s <= 0:
        return float(priority)
    return priority - waited_s / aging_s


def queue_key(
    priority: int, enqueued_at: float, seq: int, now: float, aging_s: float
) -> tuple[float, float, int]:
    """Sort key: effective priority, then arrival (first come, first served), then sequence."""
    return (effective_priority(priority, now - enqueued_at, aging_s), enqueued_at, seq)
