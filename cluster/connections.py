"""Connection limits for the router's HTTP clients to vLLM nodes and to other routers."""

from __future__ import annotations

import httpx

SERVER_KEEP_ALIVE_S = 5.0
"""How long uvicorn (under vLLM and under the router) keeps an idle connection open."""

IDLE_EXPIRY_S = 2.0
"""How long a client keeps an idle connection for reuse.

httpx's default equals the server's five seconds, and the client's clock starts later (once it
has read the response), so under load it can reuse a connection the server is closing that
moment: a request fails with a connection error that no node caused. Dropping idle
connections well before the server does closes that window.
"""


def node_limits(max_connections: int = 100, max_keepalive: int = 20) -> httpx.Limits:
    """Limits whose idle connections expire before the server closes them."""
    return httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_keepalive,
        keepalive_expiry=IDLE_EXPIRY_S,
    )
