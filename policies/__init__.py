"""Pure routing decisions: no I/O and no clock reads."""

from policies.types import ExecutionMode, MergeStrategy, NodeStatus, TaskType

__all__ = ["ExecutionMode", "MergeStrategy", "NodeStatus", "TaskType"]
