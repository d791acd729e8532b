"""The routing decision as the OpenAI-compatible API shows it: `x-gb10-*` response headers."""

from __future__ import annotations

from typing import Any

from graph.state import RouterOutput


def routing_headers(out: RouterOutput | dict[str, Any], job_id: str) -> dict[str, str]:
    """Job id, task type, model, node and confidence, as far as the run has decided them, and
    the answer's check (passed, repaired, failed) once it has one."""
    routing = out.get("routing")
    scheduling = out.get("scheduling")
    headers = {"x-gb10-job-id": job_id}
    if routing is not None:
        headers.update(
            {
                "x-gb10-task-type": routing.task_type.value,
                "x-gb10-model": routing.model,
                "x-gb10-confidence": f"{routing.confidence:.3f}",
            }
        )
    if scheduling is not None:
        headers["x-gb10-model"] = scheduling.node.model
        headers["x-gb10-node"] = scheduling.node.node_id
    result = out.get("result")
    if result is not None and result.validation is not None:
        headers["x-gb10-validation"] = result.validation.status.value
    return headers
