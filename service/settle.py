"""An ASGI middleware that settles each HTTP request with the pipeline once it is answered.

Admission happens inside a route, but some failures come after it and outside any run (a
LangServe parameter rejected once the inputs were admitted, a config hash that does not
decode): the tickets such a request holds are closed as refused with its status, and an LLM
request refused before admission that left no audit record gets one.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.pipeline import Pipeline, admission_scope


class SettleAdmissions:
    """Wraps the app: every HTTP request runs in an admission scope, settled after."""

    def __init__(self, app: ASGIApp, pipeline: Pipeline) -> None:
        self._app = app
        self._pipeline = pipeline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        async with admission_scope() as admission:
            try:
                await self._app(scope, receive, sending)
            finally:
                state = scope.get("state") or {}
                settling = self._pipeline.settle(
                    admission, state.get("principal"), scope["path"], status
                )
                # Shielded: a client that left must not cut the audit record short.
                await asyncio.shield(asyncio.ensure_future(settling))
