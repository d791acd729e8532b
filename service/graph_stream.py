"""One streamed run of the graph under an admitted ticket, shared by the streaming entry
points (LangServe's `/graph/stream*` and the OpenAI-compatible chat stream)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.runnables import RunnableConfig

from graph.records import reservation_key
from graph.state import RouterOutput
from policies.errors import RouterError
from policies.usage import Usage
from service.context import OUTPUT_KEYS, ServiceContext
from service.pipeline import Pipeline, Ticket


def absorb(out: dict[str, Any], chunk: Any) -> None:
    """Add one `updates` chunk of the graph's stream to what the run has produced."""
    if not isinstance(chunk, dict):
        return
    for update in chunk.values():
        if not isinstance(update, dict):
            continue
        for key in OUTPUT_KEYS & update.keys():
            if key == "usage":
                out["usage"] = out.get("usage", Usage()) + update["usage"]
            else:
                out[key] = update[key]


@dataclass(frozen=True)
class StreamFailed:
    """The last item of a run that failed: the error, already audited as its outcome."""

    error: RouterError


async def governed_stream(
    service: ServiceContext,
    pipeline: Pipeline,
    ticket: Ticket,
    graph_input: dict[str, Any],
    *,
    config: RunnableConfig | None = None,
    stream_mode: list[str] | None = None,
    out: dict[str, Any] | None = None,
    watch: Callable[[Any], None] | None = None,
) -> AsyncGenerator[Any, None]:
    """The graph's stream items for one admitted request, its outputs gathered in `out`.

    `watch` sees each item first and may raise a RouterError to end the run. A failure ends
    the stream with a StreamFailed item rather than an exception, so the caller can still
    tell its client. Whatever ends it (a failure, the client leaving), the run is stopped,
    its reservations released and its outcome audited.
    """
    produced: dict[str, Any] = {} if out is None else out
    relay = Relay(
        service.graph.astream(graph_input, config, context=service.context, stream_mode=stream_mode)
    )
    try:
        async with pipeline.outcome(ticket) as run:
            try:
                async for item in relay:
                    if stream_mode is None:
                        absorb(produced, item)
                    elif item[0] == "updates":
                        absorb(produced, item[1])
                    run.out = cast(RouterOutput, produced)
                    if watch is not None:
                        watch(item)
                    yield item
            except RouterError as exc:
                run.failure = exc
                yield StreamFailed(exc)
    finally:
        key = reservation_key(ticket.principal.tenant, ticket.job_id)
        # The reservations go once the run has stopped: until then its model call holds the node.
        relay.stop().add_done_callback(lambda _: service.context.scheduler.release_job(key))


class Relay:
    """An async iterator drained in a task of its own, its items handed over a queue.

    `stop` cancels that task once, so the iterator unwinds (a graph cancels the model calls
    it started) however its consumer ended: a consumer cancelled by Starlette's cancel scope
    would be cancelled again at every await of that unwinding and cut it short.
    """

    def __init__(self, items: AsyncIterator[Any], buffer: int = 8) -> None:
        self._queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue(buffer)
        self._task = asyncio.create_task(self._pump(items))

    async def _pump(self, items: AsyncIterator[Any]) -> None:
        try:
            async for item in items:
                await self._queue.put((item, None))
        except Exception as exc:  # handed to the consumer, which raises it
            await self._queue.put((_END, exc))
            return
        await self._queue.put((_END, None))

    def __aiter__(self) -> Relay:
        return self

    async def __anext__(self) -> Any:
        item, error = await self._queue.get()
        if item is _END:
            if error is not None:
                raise error
            raise StopAsyncIteration
        return item

    def stop(self) -> asyncio.Task[None]:
        """Cancel the draining task (if still running); the task, to wait on or watch."""
        self._task.cancel()
        return self._task


_END = object()
