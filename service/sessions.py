"""Browser sign-in: a token or API key entered once becomes an HttpOnly session cookie.

Programs keep sending `Authorization: Bearer`. A request authenticated by the cookie alone
that changes state must come from this origin (its `Origin` or `Sec-Fetch-Site` says so) or
carry the CSRF token of the `gb10_csrf` cookie in `X-CSRF-Token`; a cross-site POST has
neither and gets 403.
"""

from __future__ import annotations

import secrets
import time
from html import escape

import jwt
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from service.auth import AuthError
from service.context import Service
from service.csrf import CSRF, SESSION

#: Sessions of API keys (which never expire) last a working day.
API_KEY_SESSION_S = 8 * 3600

router = APIRouter(tags=["sign-in"])


def session_seconds(credential: str) -> int:
    """How long a session may last: until the token expires, never longer."""
    try:
        claims = jwt.decode(credential, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return API_KEY_SESSION_S  # an API key: checked already, it is not a JWT
    return max(0, int(claims.get("exp", 0) - time.time()))


def _page(message: str = "", next_url: str = "/status") -> HTMLResponse:
    note = f'<p class="err">{escape(message)}</p>' if message else ""
    return HTMLResponse(
        f"""<!doctype html><html><head><meta charset="utf-8"><title>gb10-router: sign in</title>
<style>body{{font-family:system-ui;max-width:32rem;margin:4rem auto}}
input{{width:100%;padding:.5rem;margin:.5rem 0}}.err{{color:#b00}}</style></head>
<body><h1>gb10-router</h1>{note}
<form method="post" action="/signin"><label>Token or API key
<input type="password" name="token" autocomplete="off" required></label>
<input type="hidden" name="next" value="{escape(next_url)}">
<button type="submit">Sign in</button></form>
<p>Then: <a href="/status">status</a> · <a href="/graph/playground/">playground</a> ·
<a href="/docs">API docs</a></p></body></html>""",
        status_code=401 if message else 200,
    )


def _local(next_url: str) -> str:
    """Only paths on this site: a sign-in must not redirect elsewhere."""
    return next_url if next_url.startswith("/") and not next_url.startswith("//") else "/status"


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(next: str = "/status") -> HTMLResponse:
    """The sign-in form."""
    return _page(next_url=_local(next))


@router.post("/signin", response_model=None)
async def signin(
    request: Request, service: Service, token: str = Form(), next: str = Form("/status")
) -> Response:
    """Check the token; set the session and CSRF cookies, expiring with the token."""
    try:
        service.authenticator.authenticate(f"Bearer {token}")
    except AuthError as exc:
        return _page(f"Not signed in: {exc}", _local(next))
    ttl = session_seconds(token)
    secure = request.url.scheme == "https"
    response = RedirectResponse(_local(next), status_code=303)
    response.set_cookie(
        SESSION, token, max_age=ttl, httponly=True, secure=secure, samesite="strict", path="/"
    )
    response.set_cookie(
        CSRF, secrets.token_urlsafe(24), max_age=ttl, secure=secure, samesite="strict", path="/"
    )
    return response


@router.post("/signout")
async def signout() -> RedirectResponse:
    """End the session."""
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(SESSION, path="/")
    response.delete_cookie(CSRF, path="/")
    return response
