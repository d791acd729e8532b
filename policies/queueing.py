"""Queue order: most urgent first, with aging so that no job waits for ever."""

from __future__ import annotations

#: Aging lifts a job at most to just behind fresh priority-1 work: urgent jobs keep their
#: place under overload, and everything else is served oldest-first once it has aged.
AGED_FLOOR = 1.5


def effective_priority(priority: int, waited_s: float, aging_s: float) -> float:
    """Priority (1 most urgent) improved by one level for every `aging_s` seconds waited.

    A priority-5 job that has waited 3.5 × aging_s ranks ahead of every fresh job but
    priority 1, so no job starves behind a stream of newer, more urgent ones.
    """
    if aging_s <= 0 or priority <= AGED_FLOOR:
        return float(priority)
    return max(AGED_FLOOR, priority - waited_s / aging_s)


def queue_key(
    priority: int, enqueued_at: float, seq: int, now: float, aging_s: float
) -> tuple[float, float, int]:
    """Sort key: effective priority, then arrival (first come, first served), then sequence."""
    return (effective_priority(priority, now - enqueued_at, aging_s), enqueued_at, seq)
