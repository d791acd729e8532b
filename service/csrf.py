"""The session cookie's names and the CSRF check for requests it authenticates."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

SESSION = "gb10_session"
CSRF = "gb10_csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfError(Exception):
    """A cookie-authenticated request that changes state came from another site."""


def check_csrf(request: Request) -> None:
    """CsrfError unless an unsafe request is same-origin or carries the CSRF token."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get("x-csrf-token", "")
    expected = request.cookies.get(CSRF, "")
    if sent and expected and hmac.compare_digest(sent, expected):
        return
    if request.headers.get("sec-fetch-site") == "same-origin":
        return
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc == request.url.netloc:
        return
    raise CsrfError("cross-site request without the CSRF token (X-CSRF-Token)")
