"""The scheduling simulator keeps its own books straight for every scheduler."""

from __future__ import annotations

import pytest

from bench.common import percentile
from sim.model import (
    BASE_SERVICE_S,
    CONTENTION,
    SimJob,
    SimNode,
    capacity,
    replicated_cluster,
    service_floor,
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
    assert s["high_wait_p95"] < 0.5 and rr["high_wait_p95"] > 5


def test_aging_bounds_the_low_priority_wait_under_overload() -> None:
    def run(aging_s: float) -> dict[str, float]:
        jobs = workload(capacity(spec_cluster()) * 1.2, 3000, seed=7)
        return summarise(simulate(spec_cluster(), jobs, "gb10", aging_s=aging_s), percentile)

    aged, unaged = run(30.0), run(0.0)
    assert unaged["expired"] > 0 and unaged["low_wait_max"] >= 299
    assert aged["expired"] == 0 and aged["low_wait_max"] < 0.7 * unaged["low_wait_max"]


def test_a_batch_shares_the_gpu_and_every_job_in_it_slows_down() -> None:
    def node() -> list[SimNode]:
        return [SimNode("n", frozenset({"phi4"}))]

    alone = SimJob(0, 1.0, 3, ["phi4"])
    simulate(node(), [alone], "gb10")
    assert alone.end == pytest.approx(1.0 + BASE_SERVICE_S["phi4"])
    # Two equal jobs from t=1: both run at 1 / (1 + CONTENTION) of full speed.
    pair = [SimJob(0, 1.0, 3, ["phi4"]), SimJob(1, 1.0, 3, ["phi4"])]
    simulate(node(), pair, "round_robin")
    for job in pair:
        assert job.end == pytest.approx(1.0 + BASE_SERVICE_S["phi4"] * (1 + CONTENTION))
    # A short job joining a long one slows it only while both run.
    long, short = SimJob(0, 0.0, 3, ["phi4"], size=4), SimJob(1, 0.0, 3, ["phi4"], size=1)
    simulate(node(), [long, short], "gb10")
    both = BASE_SERVICE_S["phi4"] * (1 + CONTENTION)
    assert short.end == pytest.approx(both)
    assert long.end == pytest.approx(both + 3 * BASE_SERVICE_S["phi4"])


def test_no_placement_beats_the_service_floor_by_much() -> None:
    nodes = replicated_cluster()
    jobs = workload(capacity(nodes) * 0.8, 1500, seed=7)
    floor = service_floor(nodes, jobs)
    ours = summarise(simulate(nodes, jobs, "gb10"), percentile)
    assert 0.8 * ours["lat_p95"] < floor < ours["lat_p95"]


def test_telemetry_aware_placement_beats_round_robin_on_uneven_nodes() -> None:
    jobs = lambda: workload(capacity(uneven_cluster()) * 0.8, 1500, seed=7)  # noqa: E731
    ours = summarise(simulate(uneven_cluster(), jobs(), "gb10"), percentile)
    rr = summarise(simulate(uneven_cluster(), jobs(), "round_robin"), percentile)
    assert ours["lat_p95"] < 0.7 * rr["lat_p95"]
