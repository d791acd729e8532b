"""wait_for_capacity: hold the job in the priority queue until capacity is granted to it."""

from __future__ import annotations

import time
from typing import Any

from langgraph.runtime import Runtime

from graph.context import RouterContext
from graph.state import RouterState, reservations


async def wait_for_capacity(state: RouterState, runtime: Runtime[RouterContext]) -> dict[str, Any]:
    """Wait for a lease on one of the routed models; CapacityTimeout past the deadline."""
    ctx = runtime.context
    routing = state["routing"]
    started = time.monotonic()
    lease = await ctx.scheduler.acquire(
        reservations(state),
        routing.candidates,
        priority=routing.priority,
        timeout_s=state.get("timeout_s"),
    )
    waited = state.get("queue_wait_s", 0.0) + (time.monotonic() - started)
    return {"granted_lease": lease.lease_id, "queue_wait_s": waited}
