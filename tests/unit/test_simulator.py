"""The scheduling simulator keeps its own books straight for every scheduler."""

from __future__ import annotations

import pytest

from bench.common import percentile
from sim.model import (
    capacity,
    replicated_cluster,
    simulate,
    spec_cluster,
    summarise,
    uneven_cluster,
    workload,
)


@pytest.mark.parametrize("policy", ["gb10", "round_robin", "random"])
@pytest.mark.parametrize("make", [spec_cluster, replicated_cluster, uneven_cluster])
def test_no_over_commit_and_no_lost_job_even_overloaded(policy: str, make: object) -> None:
    nodes = make()  # type: ignore[operator]
    jobs = workload(capacity(nodes) * 1.2, 400, seed=3)
    outcome = simulate(nodes, jobs, policy, deadline_s=60)
    assert outcome.overcommits == 0 and outcome.lost == 0
    assert all(j.end is not None or j.expired for j in jobs)
    assert all(n.running == 0 and abs(n.reserved_gb) < 1e-9 for n in nodes)


def test_high_priority_work_keeps_moving_under_overload() -> None:
    nodes = replicated_cluster()
    jobs = workload(capacity(nodes) * 1.2, 1500, seed=5)
    s = summarise(simulate(nodes, jobs, "gb10"), percentile)
    rr = summarise(
        simulate(
            replicated_cluster(), workload(capacity(nodes) * 1.2, 1500, seed=5), "round_robin"
        ),
        percentile,
    )
    assert s["high_wait_p95"] < 5 < rr["high_wait_p95"]


def test_telemetry_aware_placement_beats_round_robin_on_uneven_nodes() -> None:
    jobs = lambda: workload(capacity(uneven_cluster()) * 0.8, 1500, seed=7)  # noqa: E731
    ours = summarise(simulate(uneven_cluster(), jobs(), "gb10"), percentile)
    rr = summarise(simulate(uneven_cluster(), jobs(), "round_robin"), percentile)
    assert ours["lat_p95"] < 0.7 * rr["lat_p95"]
