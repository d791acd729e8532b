"""Placement and batch splitting policies."""

from __future__ import annotations

import pytest

from policies.batching import chunk_items, numbered_prompt, proportional_counts
from policies.modes import choose_mode
from policies.placement import Limits, NodeView, Weights, place, place_first_fit, why_unplaceable
from policies.queueing import effective_priority, queue_key
from policies.types import ExecutionMode, NodeStatus


def node(
    node_id: str,
    util: float,
    free: float,
    status: NodeStatus = NodeStatus.AVAILABLE,
    models: tuple[str, ...] = ("m",),
    in_flight: int = 0,
    max_jobs: int | None = None,
) -> NodeView:
    return NodeView(node_id, status, 80, free, util, frozenset(models), in_flight, max_jobs)


def test_least_loaded_node_with_room_wins() -> None:
    nodes = [node("a", 0.7, 50), node("b", 0.2, 50), node("c", 0.1, 1)]
    chosen = place(nodes, "m", 4)
    assert chosen is not None and chosen.node_id == "b"
    assert "lowest load score" in chosen.reason and "others: a" in chosen.reason


def test_score_weighs_queue_cache_and_in_flight() -> None:
    busy_queue = NodeView("q", NodeStatus.AVAILABLE, 80, 60, 0.1, frozenset({"m"}), 0, None, 6, 0.1)
    busy_router = NodeView(
        "r", NodeStatus.AVAILABLE, 80, 60, 0.1, frozenset({"m"}), 3, None, 0, 0.1
    )
    idle = NodeView("i", NodeStatus.AVAILABLE, 80, 60, 0.3, frozenset({"m"}), 0, None, 0, 0.1)
    chosen = place([busy_queue, busy_router, idle], "m", 2)
    assert chosen is not None and chosen.node_id == "i"
    only_util = Weights(utilization=1, queue=0, kv_cache=0, in_flight=0, vram=0)
    chosen = place([busy_queue, busy_router, idle], "m", 2, weights=only_util)
    assert chosen is not None and chosen.node_id in {"q", "r"}


def test_aging_lets_old_low_priority_work_overtake_fresh_urgent_work() -> None:
    assert effective_priority(5, 0, 30) == 5
    assert effective_priority(5, 60, 30) == 3
    assert effective_priority(5, 1000, 30) == 1.5  # never ahead of fresh priority-1 work
    old_low = queue_key(5, enqueued_at=0, seq=0, now=150, aging_s=30)
    new_mid = queue_key(2, enqueued_at=149, seq=1, now=150, aging_s=30)
    new_high = queue_key(1, enqueued_at=149, seq=2, now=150, aging_s=30)
    assert new_high < old_low < new_mid
    assert queue_key(1, 10, 0, 11, 0) < queue_key(2, 0, 1, 11, 0)


def test_busy_offline_and_full_nodes_are_skipped() -> None:
    nodes = [
        node("a", 0.0, 50, NodeStatus.BUSY),
        node("b", 0.0, 50, NodeStatus.OFFLINE),
        node("c", 0.0, 50, in_flight=2, max_jobs=2),
        node("d", 0.9, 3),
    ]
    assert place(nodes, "m", 4) is None
    assert "a is busy" in why_unplaceable(nodes, "m", 4)
    assert place(nodes, "other", 1) is None
    assert why_unplaceable(nodes, "other", 1) == "no node serves other"


def test_spill_over_takes_a_fallback_only_where_the_primary_has_no_room() -> None:
    vram = {"big": 10.0, "small": 2.0}.__getitem__
    full = node("full", 0.9, 5, models=("big",))
    idle = node("idle", 0.2, 60, models=("small",))
    busy = node("busy", 0.7, 60, models=("small",))
    chosen = place_first_fit([full, idle, busy], ["big", "small"], vram)
    assert chosen is not None and (chosen.node_id, chosen.model) == ("idle", "small")
    assert chosen.reason.startswith("spill-over from big")
    # A fallback never goes to a node at or over the spill-over utilisation.
    assert place_first_fit([full, busy], ["big", "small"], vram) is None
    assert place_first_fit([full, busy], ["big", "small"], vram, Limits(spill_max_utilization=0.8))
    # The primary, where it fits, wins whatever its load.
    roomy = node("roomy", 0.95, 60, models=("big",))
    chosen = place_first_fit([roomy, idle], ["big", "small"], vram)
    assert chosen is not None and chosen.node_id == "roomy" and "spill" not in chosen.reason


def test_urgent_work_may_exceed_the_job_cap_by_the_urgent_slots() -> None:
    capped = node("n", 0.5, 60, in_flight=4, max_jobs=4)
    limits = Limits(urgent_slots=2)
    assert place([capped], "m", 1, limits, priority=2) is None
    assert "runs 4 jobs, its cap for priority 2 is 4" in why_unplaceable(
        [capped], "m", 1, limits, priority=2
    )
    assert place([capped], "m", 1, limits, priority=1) is not None
    over = node("n", 0.5, 60, in_flight=6, max_jobs=4)
    assert place([over], "m", 1, limits, priority=1) is None
    assert place([capped], "m", 1, Limits(urgent_slots=0), priority=1) is None
    # VRAM is never part of the bargain.
    tight = node("n", 0.5, 0.5, in_flight=1, max_jobs=4)
    assert place([tight], "m", 1, limits, priority=1) is None


def test_proportional_counts_sum_and_follow_weights() -> None:
    assert proportional_counts(50, [55, 20]) == [37, 13]
    assert sum(proportional_counts(7, [1, 1, 1])) == 7
    assert proportional_counts(3, [0, 0]) == [2, 1]
    with pytest.raises(ValueError):
        proportional_counts(3, [])


def test_chunks_are_contiguous_and_cover_every_item_once() -> None:
    items = [str(i) for i in range(10)]
    chunks = chunk_items(items, [3, 1, 0])
    assert [start for start, _ in chunks] == [0, 8]
    assert [x for _, chunk in chunks for x in chunk] == items
    assert numbered_prompt("P", ["x", "y"], 8).endswith("9. x\n10. y")


@pytest.mark.parametrize(
    ("kwargs", "mode"),
    [
        ({}, ExecutionMode.SINGLE),
        ({"requires_parallel": True}, ExecutionMode.PARALLEL),
        ({"items": ["a", "b"]}, ExecutionMode.PARALLEL),
        ({"models": ["a", "b"]}, ExecutionMode.PARALLEL),
        ({"requires_parallel": True, "parallel_enabled": False}, ExecutionMode.SINGLE),
        ({"operations": ["extract"]}, ExecutionMode.CHAINED),
    ],
)
def test_mode_choice(kwargs: dict[str, object], mode: ExecutionMode) -> None:
    args: dict[str, object] = {
        "requires_parallel": False,
        "requires_chaining": False,
        "operations": [],
        "items": [],
        "models": [],
        "parallel_enabled": True,
    }
    args.update(kwargs)
    assert choose_mode(**args) is mode  # type: ignore[arg-type]
