"""Whether each model server is up: the one record that probes and the pool's calls write,
and that placement, the scheduler's queue and the models and nodes endpoints read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from cluster.config import ClusterConfig
from policies.errors import UnknownNode


@dataclass
class EndpointHealth:
    """What the router knows of one model on one node."""

    node_id: str
    model: str
    probe_up: bool = True
    """The last probe found it served (true until a probe says otherwise)."""
    failed_calls: int = 0
    """Server-side failures of the latest calls in a row."""
    failed_at: float = 0.0
    """When the latest of those failures happened (health clock)."""
    last_error: str | None = None
    """The latest probe or call failure, cleared by a success."""
    calls: int = 0
    """Calls made to it."""
    failures: int = 0
    """Calls that failed, whoever's fault."""


class HealthBoard:
    """Per endpoint: down when its last probe said so, or for `call_down_s` after
    `failures_before_down` server-side call failures in a row (a success or a probe that
    finds it served again ends that early)."""

    def __init__(
        self,
        cluster: ClusterConfig,
        *,
        failures_before_down: int = 1,
        call_down_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._failures_before_down = failures_before_down
        self._call_down_s = call_down_s
        self._clock = clock
        self._endpoints = {
            (node.id, model): EndpointHealth(node.id, model)
            for node in cluster.nodes
            for model in node.models
        }
        self._listeners: list[Callable[[], None]] = []

    def on_return(self, listener: Callable[[], None]) -> None:
        """Call `listener` when an endpoint a failed call took out may take work again."""
        self._listeners.append(listener)

    def _returned(self) -> None:
        for listener in self._listeners:
            listener()

    def get(self, node_id: str, model: str) -> EndpointHealth:
        """The record of `model` on `node_id`; UnknownNode when it is not deployed there."""
        try:
            return self._endpoints[(node_id, model)]
        except KeyError:
            raise UnknownNode(f"{model} is not deployed on {node_id!r}") from None

    def is_up(self, node_id: str, model: str) -> bool:
        """Whether new work may go to `model` on `node_id` now."""
        health = self.get(node_id, model)
        if not health.probe_up:
            return False
        failing = health.failed_calls >= self._failures_before_down
        return not (failing and self._clock() - health.failed_at < self._call_down_s)

    def is_served(self, node_id: str, model: str) -> bool:
        """Whether the last probe found `model` served on `node_id`: a failed call puts an
        endpoint out of placement for a while, but does not make it unservable."""
        return self.get(node_id, model).probe_up

    def down_models(self, node_id: str) -> set[str]:
        """The models of `node_id` that take no new work now."""
        return {m for (n, m) in self._endpoints if n == node_id and not self.is_up(n, m)}

    def _wake_after_hold(self) -> None:
        # Nothing else happens when a hold ends: wake whoever waits for capacity then.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # outside an event loop nobody can be waiting
        loop.call_later(self._call_down_s, self._returned)

    def record_probe(self, node_id: str, model: str, *, up: bool, error: str | None) -> None:
        """A probe's finding: served (or not), and why not."""
        health = self.get(node_id, model)
        health.probe_up = up
        if up:
            health.failed_calls = 0
        if error is not None:
            health.last_error = error

    def record_call(self, node_id: str, model: str) -> None:
        """A call is being made."""
        self.get(node_id, model).calls += 1

    def record_success(self, node_id: str, model: str) -> None:
        """A call answered."""
        health = self.get(node_id, model)
        health.failed_calls = 0
        health.last_error = None

    def record_failure(self, node_id: str, model: str, error: str, *, server_side: bool) -> None:
        """A call failed; only the server's own failures (unreachable, 5xx: not refused
        requests, not slow answers) count towards taking it out of placement."""
        health = self.get(node_id, model)
        health.failures += 1
        health.last_error = error
        if server_side:
            health.failed_calls += 1
            health.failed_at = self._clock()
            if health.failed_calls == self._failures_before_down:
                self._wake_after_hold()
