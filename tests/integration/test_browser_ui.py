"""In a real browser (Debian's Chromium, driven by Playwright): sign in, see the status page
and the playground (screenshots under `.artifacts/screenshots`), and a page of another origin
that posts to the router with the session cookie is refused."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from service.auth import issue_token
from tests.fakes.net import ThreadedServer
from tests.integration.conftest import SECRET

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


@pytest.fixture
def page() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser.new_page(viewport={"width": 1280, "height": 900})
        browser.close()


def test_sign_in_then_the_status_page_and_the_playground(router: str, page: object) -> None:
    from playwright.sync_api import Page

    assert isinstance(page, Page)
    token = issue_token(SECRET, user="ann", tenant="soc", ttl_s=600)
    ask = {"prompt": "Write a YARA rule for a loader that drops evil.dll"}
    r = httpx.post(
        f"{router}/api/llm/process", json=ask, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    page.goto(f"{router}/signin")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{router}/status")
    assert "gb10-node-2" in page.inner_text("body")
    assert "rule_generation" in page.inner_text("table")
    page.screenshot(path=str(ARTIFACTS / "status.png"), full_page=True)

    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if "Unknown type" in m.text else None)
    page.goto(f"{router}/graph/playground/")
    page.wait_for_load_state("networkidle")
    # The input form rendered (it stays blank when the schema has a part it cannot draw).
    page.get_by_text("Try it").wait_for()
    assert "PROMPT" in page.inner_text("body").upper() and not errors
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)
    assert (ARTIFACTS / "status.png").stat().st_size > 10_000


def test_a_page_of_another_origin_cannot_post_with_the_session(router: str, page: object) -> None:
    from playwright.sync_api import Page

    assert isinstance(page, Page)

    async def evil(request: object) -> HTMLResponse:
        return HTMLResponse(
            f"""<form id="f" method="post" action="{router}/api/llm/process"
            enctype="text/plain"><input name='{{"prompt":"x","a":"' value='"}}'></form>
            <script>document.getElementById("f").submit()</script>"""
        )

    other = ThreadedServer(Starlette(routes=[Route("/", evil)]))
    try:
        token = issue_token(SECRET, user="ann", tenant="soc", ttl_s=600)
        page.goto(f"{router}/signin")
        page.fill("input[name=token]", token)
        page.click("button[type=submit]")
        page.wait_for_url(f"{router}/status")
        # Another port is another origin but the same site: the Strict cookie goes along,
        # so the router's own check has to refuse it.
        with page.expect_navigation(url=f"{router}/api/llm/process") as nav:
            page.goto(other.url)
        response = nav.value
        assert response is not None and response.status == 403
        assert "CSRF" in page.inner_text("body")
    finally:
        other.stop()
