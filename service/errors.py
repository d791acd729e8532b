"""Every failure as JSON `{"error": {"code", "message"}}` with a status that says whose fault."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from policies.errors import RouterError
from service.pipeline import Pipeline, note_error

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def _detail(error: Any) -> dict[str, Any]:
    """One validation error as JSON; LangServe raises some as bare strings (a body that is not
    JSON at all)."""
    if isinstance(error, dict):
        loc = [str(p) for p in error.get("loc", ())]
        return {"loc": loc, "msg": str(error.get("msg", "")), "type": str(error.get("type", ""))}
    return {"loc": ["body"], "msg": str(error), "type": "invalid_body"}


#: OpenAI's error `type` for a status, so that its clients read the router's errors.
_OPENAI_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


#: A message about one field starts with its path: `parameters.temperature: ...`.
_FIELD = re.compile(r"^([A-Za-z_][\w\-]*(?:\.[\w\-\[\]]+)*): ")


def error_body(code: str, message: str, status: int, **extra: Any) -> dict[str, Any]:
    """`{"error": {...}}` with the router's `code` and `message`, and OpenAI's `type` and
    `param` (the field a 4xx message names first, else null)."""
    kind = _OPENAI_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    field = _FIELD.match(message) if 400 <= status < 500 else None
    param = field.group(1) if field and field.group(1) != "body" else None
    return {"error": {"code": code, "message": message, "type": kind, "param": param, **extra}}


def router_error_response(exc: RouterError) -> JSONResponse:
    headers = dict(exc.headers)
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    return JSONResponse(
        error_body(exc.code, exc.message, exc.http_status),
        status_code=exc.http_status,
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the JSON error handlers on the app."""

    async def on_router_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RouterError)
        note_error(exc.code)
        return router_error_response(exc)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        pipeline: Pipeline | None = getattr(request.app.state, "pipeline", None)
        if pipeline is not None:
            await pipeline.refuse_malformed(request, exc.body)
        details = [_detail(e) for e in exc.errors()]
        first = details[0] if details else {"loc": [], "msg": "invalid request", "type": ""}
        if first["type"] == "json_invalid":
            # Its loc ends in a character offset, not a field.
            at = [p for p in first["loc"] if p.isdigit()]
            message = (
                f"body: not valid JSON ({first['msg']}{f' at character {at[-1]}' if at else ''})"
            )
        else:
            where = ".".join(str(p) for p in first["loc"] if p != "body") or "body"
            message = f"{where}: {first['msg']}"
        return JSONResponse(
            error_body("validation_error", message, 422, details=details), status_code=422
        )

    async def on_undecodable(request: Request, exc: Exception) -> JSONResponse:
        # LangServe parses bodies itself and lets a body that is not UTF-8 through as this.
        assert isinstance(exc, UnicodeDecodeError)
        return await on_validation(
            request, RequestValidationError(["body: not valid UTF-8 JSON"], body=None)
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail), exc.status_code),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body(
                "internal_error", f"{type(exc).__name__}: the router failed; see its log", 500
            ),
            status_code=500,
        )

    app.add_exception_handler(RouterError, on_router_error)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(UnicodeDecodeError, on_undecodable)
    app.add_exception_handler(StarletteHTTPException, on_http)
