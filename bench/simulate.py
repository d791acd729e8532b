"""Scheduling simulator: this router's placement and queue policies against round-robin and
random, on the specification's 2-node cluster and a 4-node cluster with replicated models.

    uv run python bench/simulate.py [--jobs 3000] [--seed 7]

Poisson arrivals of the mixed task types at 50 %, 80 % and 120 % of capacity, priorities 1, 3
and 5; each run's workload is the same for every scheduler. Nodes batch continuously: every
running request slows the others on its node. A job whose 300 s deadline passes while it waits
ends with 503 (expired), under every scheduler. `gb10 no aging` is this router's scheduler with
aging switched off, to show what aging buys. Times in simulated seconds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile
from sim.model import (
    capacity,
    replicated_cluster,
    service_floor,
    simulate,
    spec_cluster,
    summarise,
    uneven_cluster,
    workload,
)

LOADS = (0.5, 0.8, 1.2)
#: Table label, simulated policy, aging period in seconds (0: none).
SCHEDULERS = (
    ("gb10", "gb10", 30.0),
    ("gb10 no aging", "gb10", 0.0),
    ("round_robin", "round_robin", 30.0),
    ("random", "random", 30.0),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    results = {}
    print(
        "| cluster | load | scheduler | wait p50 | wait p95 | latency p50 | latency p95 | "
        "jobs/s | high-prio wait p95 | longest low-prio wait | expired | over-commits | lost |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    clusters = (
        ("2-node", spec_cluster),
        ("4-node", replicated_cluster),
        ("4-node uneven", uneven_cluster),
    )
    for name, make in clusters:
        rate_at_capacity = capacity(make())
        for load in LOADS:
            for label, policy, aging_s in SCHEDULERS:
                jobs = workload(rate_at_capacity * load, args.jobs, args.seed)
                outcome = simulate(make(), jobs, policy, aging_s=aging_s, seed=args.seed)
                s = summarise(outcome, percentile)
                results[(name, load, label)] = s
                print(
                    f"| {name} | {load:.0%} | {label} | {s['wait_p50']:.2f} | "
                    f"{s['wait_p95']:.2f} | {s['lat_p50']:.2f} | {s['lat_p95']:.2f} | "
                    f"{s['throughput']:.2f} | {s['high_wait_p95']:.2f} | "
                    f"{s['low_wait_max']:.1f} | {s['expired']:.0f} | {s['overcommits']:.0f} | "
                    f"{s['lost']:.0f} |"
                )
    print()
    for name in ("4-node", "4-node uneven"):
        ours, rr = results[(name, 0.8, "gb10")], results[(name, 0.8, "round_robin")]
        print(
            f"{name}, 80 % load: p95 latency {ours['lat_p95']:.2f}s vs round-robin "
            f"{rr['lat_p95']:.2f}s: {1 - ours['lat_p95'] / rr['lat_p95']:.0%} lower, target 30 %"
        )
    for name, _ in clusters:
        hi50 = results[(name, 0.5, "gb10")]["high_wait_p95"]
        hi120 = results[(name, 1.2, "gb10")]["high_wait_p95"]
        print(f"{name}: high-priority p95 wait {hi50:.2f}s at 50 % load, {hi120:.2f}s at 120 %")
    for name, _ in clusters:
        aged = results[(name, 1.2, "gb10")]
        unaged = results[(name, 1.2, "gb10 no aging")]
        print(
            f"{name}, 120 % load: longest low-priority wait {aged['low_wait_max']:.0f}s with "
            f"aging ({aged['expired']:.0f} expired), {unaged['low_wait_max']:.0f}s without "
            f"({unaged['expired']:.0f} expired)"
        )
    floor = service_floor(
        replicated_cluster(), workload(capacity(replicated_cluster()) * 0.8, args.jobs, args.seed)
    )
    rr = results[("4-node", 0.8, "round_robin")]["lat_p95"]
    print(
        f"4-node, 80 % load: even a scheduler with no wait at all would see p95 latency about "
        f"{floor:.2f}s (service time at the batch size this load needs), {1 - floor / rr:.0%} "
        "under round-robin"
    )
    worst = max(v["overcommits"] + v["lost"] for v in results.values())
    print(f"over-commits + lost jobs, worst run: {worst:.0f} (target 0)")


if __name__ == "__main__":
    main()
