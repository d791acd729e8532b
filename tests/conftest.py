"""Shared fixtures: fake GB10 nodes at the HTTP seam and a runtime wired to them."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.runtime import RouterRuntime, build_runtime
from app.settings import Settings
from tests.fakes.openai_backend import FakeOpenAIBackend


@dataclass
class FakeCluster:
    """Two fake nodes standing in for gb10-node-1 and gb10-node-2."""

    node1: FakeOpenAIBackend
    node2: FakeOpenAIBackend

    def by_node(self) -> dict[str, FakeOpenAIBackend]:
        return {"gb10-node-1": self.node1, "gb10-node-2": self.node2}

    def settings(self, **overrides: object) -> Settings:
        """Settings pointing both nodes at the fakes; explicit values, not the environment."""
        values: dict[str, object] = {
            "llm_node_1_url": self.node1.url,
            "llm_node_2_url": self.node2.url,
            "llm_default_timeout": 10.0,
            "llm_max_retries": 0,
            "state_dir": Path(tempfile.mkdtemp(prefix="gb10-state-")),
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def _fake_nodes() -> Iterator[FakeCluster]:
    nodes = FakeCluster(FakeOpenAIBackend("gb10-node-1"), FakeOpenAIBackend("gb10-node-2"))
    nodes.node1.start()
    nodes.node2.start()
    yield nodes
    nodes.node1.stop()
    nodes.node2.stop()


@pytest.fixture
def fake_cluster(_fake_nodes: FakeCluster) -> Iterator[FakeCluster]:
    """The fake nodes with fresh behaviour and no recorded calls."""
    from tests.fakes.openai_backend import Behaviour

    for node in (_fake_nodes.node1, _fake_nodes.node2):
        node.behaviour = Behaviour()
        node.calls.clear()
        node.max_in_flight = 0
    yield _fake_nodes


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No router or LLM variables inherited from the environment."""
    import os

    for key in list(os.environ):
        if key.startswith(("LLM_", "ROUTER_")):
            monkeypatch.delenv(key)
    return monkeypatch


@pytest.fixture
def runtime(fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch) -> RouterRuntime:
    """A runtime whose two nodes are the fakes."""
    return build_runtime(fake_cluster.settings())
