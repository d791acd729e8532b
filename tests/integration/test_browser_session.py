"""Browser sign-in: a token entered once becomes an HttpOnly, SameSite session cookie that
opens the status page and the playground; cross-site state changes are refused."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from service.auth import issue_token
from tests.conftest import FakeCluster
from tests.integration.conftest import SECRET


@contextmanager
def signed_in(url: str, tenant: str = "soc") -> Iterator[httpx.Client]:
    """A browser-like client that signed in with a token and holds only the cookies."""
    with httpx.Client(base_url=url, timeout=30) as client:
        token = issue_token(SECRET, user="ann", tenant=tenant, ttl_s=600)
        r = client.post("/signin", data={"token": token, "next": "/status"})
        assert r.status_code == 303 and r.headers["location"] == "/status"
        yield client


def test_signing_in_sets_a_session_cookie_that_expires_with_the_token(router: str) -> None:
    with httpx.Client(base_url=router) as c:
        assert "Token or API key" in c.get("/signin").text
        refused = c.post("/signin", data={"token": "not-a-token"})
        assert refused.status_code == 401 and "Not signed in" in refused.text
        token = issue_token(SECRET, user="ann", tenant="soc", ttl_s=600)
        r = c.post("/signin", data={"token": token, "next": "https://evil.example/"})
    assert r.headers["location"] == "/status"  # never redirected off the site
    cookies = r.headers.get_list("set-cookie")
    session = next(h for h in cookies if h.startswith("gb10_session="))
    attributes = {a.strip().split("=")[0].lower(): a for a in session.split(";")}
    assert "httponly" in attributes and attributes["samesite"].strip().lower() == "samesite=strict"
    assert 590 <= int(attributes["max-age"].split("=")[1]) <= 600
    csrf = next(h for h in cookies if h.startswith("gb10_csrf="))
    assert "httponly" not in csrf.lower()  # the page's own scripts may read it


def test_the_session_opens_the_status_page_and_the_playground(
    router: str, fake_cluster: FakeCluster
) -> None:
    with httpx.Client(base_url=router) as anonymous:
        assert anonymous.get("/status").status_code == 401
    with signed_in(router) as c:
        ask = {"prompt": "Is this login malicious?", "task_type": "classification"}
        assert c.post("/api/llm/process", json=ask, headers={"Origin": router}).status_code == 200
        page = c.get("/status").text
        assert "gb10-node-1" in page and "gb10-node-2" in page
        assert "granite-guardian" in page and "classification" in page
        assert 'http-equiv="refresh"' in page
        assert c.get("/graph/playground/").status_code == 200
    with signed_in(router, tenant="other") as other:
        assert "granite-guardian up" in other.get("/status").text
        assert "classification</td>" not in other.get("/status").text  # not their decision


def test_a_cross_site_post_riding_the_cookie_is_refused(router: str) -> None:
    ask = {"prompt": "Is this login malicious?", "task_type": "classification"}
    with signed_in(router) as c:
        csrf = c.cookies["gb10_csrf"]
        evil = c.post("/api/llm/process", json=ask, headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403 and "CSRF" in evil.text
        bare = c.post("/api/llm/process", json=ask)  # no Origin, no token
        assert bare.status_code == 403
        with_token = c.post(
            "/api/llm/process",
            json=ask,
            headers={"Origin": "https://evil.example", "X-CSRF-Token": csrf},
        )
        assert with_token.status_code == 200
        same_site = c.post("/api/llm/process", json=ask, headers={"Sec-Fetch-Site": "same-origin"})
        assert same_site.status_code == 200
        # Programs with a bearer header are not held to it.
        token = issue_token(SECRET, user="bot", tenant="soc")
        program = httpx.post(
            f"{router}/api/llm/process", json=ask, headers={"Authorization": f"Bearer {token}"}
        )
        assert program.status_code == 200
