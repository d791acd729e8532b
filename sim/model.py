"""Simulated clusters, workloads and the three schedulers compared."""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from policies.placement import URGENT, Limits, NodeView, Weights, place_first_fit
from policies.queueing import queue_key
from policies.types import NodeStatus, TaskType
from sim.topology import load_topology

#: Seconds one request takes on an idle GPU, by model.
BASE_SERVICE_S = {
    "deepseek": 4.0,
    "qwen72": 3.5,
    "phi4": 1.0,
    "qwen-coder": 2.0,
    "llama31": 2.5,
    "granite-guardian": 0.5,
}
#: Nodes, models and routes as the router's own config files give them.
TOPOLOGY = load_topology()
#: VRAM one running request reserves (cluster.yaml's job_vram_gb).
JOB_VRAM_GB = TOPOLOGY.job_vram_gb
#: Share of the requests each task type gets.
TASK_SHARE = {
    TaskType.GENERAL_REASONING: 0.15,
    TaskType.MULTILINGUAL: 0.10,
    TaskType.STRUCTURED_PARSING: 0.20,
    TaskType.RULE_GENERATION: 0.15,
    TaskType.ADVERSARIAL_REASONING: 0.15,
    TaskType.CLASSIFICATION: 0.25,
}
#: Task mix: (primary, fallbacks, share), as config/routing.yaml routes them.
TASKS = [(r.primary, r.fallbacks, TASK_SHARE[r.task_type]) for r in TOPOLOGY.routes]
PRIORITIES = [(1, 0.2), (3, 0.5), (5, 0.3)]
#: Each extra request in a GPU's batch slows every request in it by this share (continuous
#: batching: a decode step takes longer the more sequences it carries).
CONTENTION = 0.15
#: Spread of request sizes (lognormal sigma).
SIZE_SIGMA = 1.0


def job_speed(batch: float, background: float) -> float:
    """Work per second each of `batch` jobs on one GPU gets, the GPU's `background` share
    taken by other work: all share its decode steps."""
    return (1 - background) / (1 + CONTENTION * (max(batch, 1) - 1))


@dataclass
class SimNode:
    node_id: str
    models: frozenset[str]
    vram_total_gb: float = 80.0
    base_used_gb: float = 0.0
    max_jobs: int = 6
    """Routine jobs it runs at once (priority 1 may add the urgent slots)."""
    background: float = 0.0
    """GPU share taken by work the router does not place (another tenant, a fine-tune)."""
    running: int = 0
    reserved_gb: float = 0.0
    fifo: deque[SimJob] = field(default_factory=deque)
    batch: dict[int, float] = field(default_factory=dict)
    """Running jobs by sequence number: the node's work clock at which each one finishes."""
    clock: float = 0.0
    """Work each job in the batch has received since the node started (all advance alike)."""
    updated: float = 0.0
    """Simulated time `clock` was last brought up to date."""
    version: int = 0
    """Bumped when the batch changes, so a stale finish event is recognised."""

    def speed(self) -> float:
        """Work per second each running job gets now."""
        return job_speed(self.running, self.background)

    def advance(self, now: float) -> None:
        self.clock += (now - self.updated) * self.speed()
        self.updated = now

    def view(self) -> NodeView:
        return NodeView(
            self.node_id,
            NodeStatus.AVAILABLE,
            self.vram_total_gb,
            self.vram_total_gb - self.base_used_gb - self.reserved_gb,
            min(1.0, self.running / self.max_jobs),
            self.models,
            self.running,
            self.max_jobs,
        )

    def fits(self, vram: float) -> bool:
        return (
            self.running < self.max_jobs
            and self.base_used_gb + self.reserved_gb + vram <= self.vram_total_gb + 1e-9
        )


@dataclass
class SimJob:
    seq: int
    arrival: float
    priority: int
    models: list[str]
    start: float | None = None
    end: float | None = None
    node: str | None = None
    model: str | None = None
    size: float = 1.0
    """Work relative to the model's mean request (output lengths vary a lot)."""
    expired: bool = False
    """Its deadline passed while it waited: the client got a 503 with Retry-After."""


def spec_cluster() -> list[SimNode]:
    """The specification's two nodes, as config/cluster.yaml lists them."""
    return [SimNode(n.node_id, n.models, n.vram_total_gb, n.vram_used_gb) for n in TOPOLOGY.nodes]


def replicated_cluster() -> list[SimNode]:
    """Four nodes: each of the specification's two model sets on two nodes."""
    a, b = spec_cluster()
    return [
        SimNode("gb10-node-1", a.models, a.vram_total_gb, a.base_used_gb),
        SimNode("gb10-node-2", b.models, b.vram_total_gb, b.base_used_gb),
        SimNode("gb10-node-3", a.models, a.vram_total_gb, a.base_used_gb),
        SimNode("gb10-node-4", b.models, b.vram_total_gb, b.base_used_gb),
    ]


def uneven_cluster() -> list[SimNode]:
    """The 4-node cluster where one replica of each model set carries 50 % background load."""
    nodes = replicated_cluster()
    nodes[2].background = 0.5
    nodes[3].background = 0.5
    return nodes


def capacity(nodes: list[SimNode]) -> float:
    """Jobs per second the cluster completes when its busiest node is saturated."""

    # Saturated, a node runs max_jobs at once, each slowed by contention and background load;
    # the models' demand is shared among their nodes in proportion to those nodes' speed.
    def speed(n: SimNode) -> float:
        return n.max_jobs * job_speed(n.max_jobs, n.background)

    demand = {n.node_id: 0.0 for n in nodes}
    for primary, _, share in TASKS:
        serving = [n for n in nodes if primary in n.models]
        total = sum(speed(n) for n in serving)
        for n in serving:
            demand[n.node_id] += share * BASE_SERVICE_S[primary] * speed(n) / total
    # The cluster saturates when its most loaded node does.
    return min(speed(n) / demand[n.node_id] for n in nodes if demand[n.node_id])


def service_floor(nodes: list[SimNode], jobs: list[SimJob], pct: float = 95) -> float:
    """Estimated latency percentile of `jobs` with no queueing at all: each job's work at
    the slowdown of the mean batch its node needs to carry its share of the load.

    No placement of identical replicas can do much better, since the batch a load needs is
    set by the load, not by where the jobs go.
    """
    span = jobs[-1].arrival - jobs[0].arrival
    serving = {m: [n for n in nodes if m in n.models] for m in BASE_SERVICE_S}
    work: dict[str, float] = {n.node_id: 0.0 for n in nodes}
    for job in jobs:
        model = job.models[0]
        for n in serving[model]:
            work[n.node_id] += job.size * BASE_SERVICE_S[model] / len(serving[model]) / span
    speed = {}
    for n in nodes:
        # Work done per second with b jobs batched is b / (1 + C (b - 1)), times the node's
        # free share; solve for the b that matches the work arriving.
        demand = work[n.node_id] / (1 - n.background)
        batch = max(1.0, demand * (1 - CONTENTION) / (1 - demand * CONTENTION))
        speed[n.node_id] = job_speed(batch, n.background)
    times = sorted(
        job.size
        * BASE_SERVICE_S[job.models[0]]
        / max(speed[n.node_id] for n in serving[job.models[0]])
        for job in jobs
    )
    return times[min(len(times) - 1, int(len(times) * pct / 100))]


def workload(rate: float, n: int, seed: int) -> list[SimJob]:
    """Poisson arrivals at `rate` per second with the task and priority mix."""
    rng = random.Random(seed)
    t = 0.0
    jobs = []
    for seq in range(n):
        t += rng.expovariate(rate)
        primary, fallbacks, _ = rng.choices(TASKS, weights=[s for *_, s in TASKS])[0]
        priority = rng.choices([p for p, _ in PRIORITIES], weights=[w for _, w in PRIORITIES])[0]
        # Lognormal with mean 1 and a heavy tail: most answers are short, a few are long.
        size = rng.lognormvariate(-(SIZE_SIGMA**2) / 2, SIZE_SIGMA)
        jobs.append(SimJob(seq, t, priority, [primary, *fallbacks], size=size))
    return jobs


@dataclass
class Outcome:
    jobs: list[SimJob]
    overcommits: int
    lost: int
    """Jobs that neither completed nor ended with an error: must be zero."""
    makespan: float


def simulate(
    nodes: list[SimNode],
    jobs: list[SimJob],
    policy: str,
    *,
    aging_s: float = 30.0,
    deadline_s: float = 300.0,
    seed: int = 0,
    weights: Weights | None = None,
    limits: Limits | None = None,
) -> Outcome:
    """Run jobs through a scheduler: `gb10` (this router's policies), `round_robin`, `random`."""
    weights = weights or TOPOLOGY.weights
    limits = limits or Limits()
    rng = random.Random(seed)
    events: list[tuple[float, int, str, SimJob | tuple[SimNode, int, int]]] = []
    order = itertools.count()
    for job in jobs:
        heapq.heappush(events, (job.arrival, next(order), "arrive", job))
        heapq.heappush(events, (job.arrival + deadline_s, next(order), "deadline", job))
    by_id = {n.node_id: n for n in nodes}
    by_seq = {j.seq: j for j in jobs}
    queue: list[SimJob] = []
    rr: dict[str, itertools.cycle[SimNode]] = {}
    overcommits = 0
    now = 0.0

    def reschedule(node: SimNode) -> None:
        # Every job in the batch advances at the same speed, so the next to finish is the one
        # with the least work left; its event is void if the batch changes first.
        node.version += 1
        if node.batch:
            seq, finish_at = min(node.batch.items(), key=lambda item: item[1])
            when = now + (finish_at - node.clock) / node.speed()
            heapq.heappush(events, (when, next(order), "finish", (node, node.version, seq)))

    def start(job: SimJob, node: SimNode, model: str) -> None:
        nonlocal overcommits
        node.advance(now)
        vram = JOB_VRAM_GB[model]
        node.running += 1
        node.reserved_gb += vram
        if node.base_used_gb + node.reserved_gb > node.vram_total_gb + 1e-9:
            overcommits += 1
        job.start, job.node, job.model = now, node.node_id, model
        node.batch[job.seq] = node.clock + job.size * BASE_SERVICE_S[model]
        reschedule(node)

    def dispatch_gb10() -> None:
        ordered = sorted(queue, key=lambda j: queue_key(j.priority, j.arrival, j.seq, now, aging_s))
        views = [n.view() for n in nodes]
        for job in ordered:
            # Skipping what cannot fit anyway keeps an overloaded run fast; same decisions.
            if all(n.running >= n.max_jobs + limits.urgent_slots for n in nodes):
                return
            if job.priority > URGENT and all(n.running >= n.max_jobs for n in nodes):
                continue
            placement = place_first_fit(
                views, job.models, JOB_VRAM_GB.__getitem__, limits, weights, job.priority
            )
            if placement is not None:
                queue.remove(job)
                start(job, by_id[placement.node_id], placement.model)
                views = [n.view() for n in nodes]

    def dispatch_fifo(node: SimNode) -> None:
        while node.fifo and node.fits(JOB_VRAM_GB[node.fifo[0].models[0]]):
            job = node.fifo.popleft()
            start(job, node, job.models[0])

    def choose(job: SimJob) -> SimNode:
        serving = [n for n in nodes if job.models[0] in n.models]
        if policy == "random":
            return rng.choice(serving)
        cycle = rr.setdefault(job.models[0], itertools.cycle(serving))
        return next(cycle)

    while events:
        now, _, kind, payload = heapq.heappop(events)
        if kind == "finish":
            assert isinstance(payload, tuple)
            node, version, seq = payload
            if version != node.version:
                continue
            node.advance(now)
            del node.batch[seq]
            job = by_seq[seq]
            job.end = now
            node.running -= 1
            node.reserved_gb -= JOB_VRAM_GB[job.model or ""]
            reschedule(node)
            if policy == "gb10":
                dispatch_gb10()
            else:
                dispatch_fifo(node)
            continue
        assert isinstance(payload, SimJob)
        job = payload
        if kind == "deadline":
            if job.start is None:
                job.expired = True
                if job in queue:
                    queue.remove(job)
                for node in nodes:
                    if job in node.fifo:
                        node.fifo.remove(job)
            continue
        if policy == "gb10":
            queue.append(job)
            dispatch_gb10()
        else:
            node = choose(job)
            node.fifo.append(job)
            dispatch_fifo(node)
    lost = sum(1 for j in jobs if j.end is None and not j.expired)
    return Outcome(jobs, overcommits, lost, now)


Summary = dict[str, float]


def summarise(outcome: Outcome, percentile: Callable[[list[float], float], float]) -> Summary:
    done = [j for j in outcome.jobs if j.end is not None and j.start is not None]
    waits = [j.start - j.arrival for j in done if j.start is not None]
    latencies = [j.end - j.arrival for j in done if j.end is not None]
    high = [j.start - j.arrival for j in done if j.priority == 1 and j.start is not None]
    low = [j.start - j.arrival for j in done if j.priority == 5 and j.start is not None]
    return {
        "expired": float(sum(j.expired for j in outcome.jobs)),
        "wait_p50": percentile(waits, 50),
        "wait_p95": percentile(waits, 95),
        "lat_p50": percentile(latencies, 50),
        "lat_p95": percentile(latencies, 95),
        "throughput": len(done) / outcome.makespan,
        "high_wait_p95": percentile(high, 95),
        "low_wait_max": max(low, default=0.0),
        "overcommits": float(outcome.overcommits),
        "lost": float(outcome.lost),
    }
