"""Idle connections to a node are dropped before its keep-alive ends, never reused as it closes."""

from __future__ import annotations

import asyncio
import json

from app.runtime import RouterRuntime
from cluster.connections import IDLE_EXPIRY_S, SERVER_KEEP_ALIVE_S
from cluster.health import HealthBoard
from cluster.pool import LLMPool, PoolOptions

ANSWER = {
    "id": "c",
    "object": "chat.completion",
    "created": 0,
    "model": "deepseek",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


class ClosingNode:
    """Just enough HTTP/1.1 to answer chat completions.

    A request on a connection idle longer than `keep_alive_s` is dropped unanswered: the server
    closed that connection while the request was on its way, the race a real server's keep-alive
    timer leaves a client that holds connections as long as it does.
    """

    def __init__(self, keep_alive_s: float) -> None:
        self.keep_alive_s = keep_alive_s
        self.connections = 0
        self.answered = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        loop = asyncio.get_running_loop()
        idle_since: float | None = None
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.lower().split(b"\r\n")
                    if line.startswith(b"content-length:")
                )
                await reader.readexactly(length)
                if idle_since is not None and loop.time() - idle_since > self.keep_alive_s:
                    return
                body = json.dumps(ANSWER).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
                self.answered += 1
                idle_since = loop.time()
        except asyncio.IncompleteReadError:
            return
        finally:
            writer.close()


def test_idle_expiry_is_well_inside_the_servers_keep_alive() -> None:
    assert IDLE_EXPIRY_S <= SERVER_KEEP_ALIVE_S / 2


async def test_a_call_after_an_idle_spell_opens_a_fresh_connection(
    runtime: RouterRuntime,
) -> None:
    node = ClosingNode(keep_alive_s=IDLE_EXPIRY_S)
    server = await asyncio.start_server(node.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cluster = runtime.cluster.with_node_urls({1: f"http://127.0.0.1:{port}"})
    pool = LLMPool(cluster, PoolOptions(timeout_s=5, max_retries=0), HealthBoard(cluster))
    try:
        await pool.call_model("deepseek", "first", node_id="gb10-node-1")
        await asyncio.sleep(IDLE_EXPIRY_S + 0.4)
        second = await pool.call_model("deepseek", "after a pause", node_id="gb10-node-1")
    finally:
        await pool.aclose()
        server.close()
        await server.wait_closed()
    assert second.completion.content == "ok"
    assert (node.connections, node.answered) == (2, 2)
