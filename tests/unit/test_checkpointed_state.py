"""The graph's typed records survive a checkpoint, and the checkpointer revives nothing else."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from cluster.completion import CallResult, Completion, FailedOver
from cluster.scheduler import NodeRef
from graph.records import (
    CHECKPOINTED_TYPES,
    BranchResult,
    ChainStep,
    JobResult,
    JobStatus,
    SchedulingReport,
)
from policies.errors import ErrorInfo
from policies.item_confidence import TokenLogprob
from policies.merge import MergeReport
from policies.types import DecisionLayer, ExecutionMode, MergeStrategy, TaskType
from policies.usage import Usage
from routing.router import Alternate, Override, RoutingDecision

SERDE = JsonPlusSerializer(allowed_msgpack_modules=CHECKPOINTED_TYPES)

CALL = CallResult(
    completion=Completion("c1", "llama31", "It is C2.", "stop", Usage(10, 3, 13), 1_700_000_000),
    model="llama31",
    node_id="gb10-node-2",
    endpoint="http://gb10-node-2:8001/llama31/v1",
    latency_ms=12.5,
    confidence=0.8,
    failed_over_from=FailedOver("gb10-node-1", "deepseek", "backend_unavailable"),
    tokens=[TokenLogprob("It", -0.1, {"It": -0.1, "This": -2.4}), TokenLogprob(" is", -0.2)],
)
SCHEDULING = SchedulingReport(
    job_id="job_1",
    execution_mode=ExecutionMode.QUEUED,
    dispatched_as=ExecutionMode.SINGLE,
    nodes=[NodeRef("gb10-node-2", "llama31", "http://gb10-node-2:8001/llama31/v1", 3.0)],
    reason="lowest load",
    queue_wait_s=0.25,
)
STATE = {
    "routing": RoutingDecision(
        task_type=TaskType.ADVERSARIAL_REASONING,
        model="llama31",
        candidates=["llama31", "deepseek"],
        priority=1,
        confidence=0.9,
        layer=DecisionLayer.OPERATION,
        reasons=["operation 'analyze' -> adversarial_reasoning"],
        alternates=[Alternate(TaskType.GENERAL_REASONING, 0.1)],
        override=Override.TASK_TYPE,
        operation="analyze",
        step=0,
    ),
    "scheduling": SCHEDULING,
    "status": JobStatus.COMPLETED,
    "planned_mode": ExecutionMode.PARALLEL,
    "branch_results": [
        BranchResult(0, 0, "llama31", "gb10-node-2", 0, 2, CALL, None),
        BranchResult(
            0, 1, "phi4", "gb10-node-2", 2, 2, None, ErrorInfo("backend_timeout", "slow", 504)
        ),
    ],
    "result": JobResult(
        merged=Completion("job_1", "llama31+phi4", "merged", "stop", Usage(1, 2, 3)),
        merge=MergeReport(MergeStrategy.CONCATENATE, "merged", ["a"], [0], "all", [], {"a": 1.0}),
        chain=[
            ChainStep(0, "analyze", TaskType.ADVERSARIAL_REASONING, "llama31", "n", "x", 1.0, None)
        ],
    ),
}


def test_every_record_round_trips_through_the_checkpoint_serializer() -> None:
    assert SERDE.loads_typed(SERDE.dumps_typed(STATE)) == STATE


@dataclass(frozen=True)
class Stranger:
    payload: str


def test_a_type_outside_the_state_is_not_revived() -> None:
    revived = SERDE.loads_typed(SERDE.dumps_typed({"x": Stranger("rm -rf")}))
    assert not isinstance(revived["x"], Stranger)


@pytest.mark.parametrize("record", CHECKPOINTED_TYPES)
def test_the_allowlist_names_only_project_types(record: type) -> None:
    assert record.__module__.split(".")[0] in {"cluster", "graph", "policies", "routing"}
