"""One matrix over every entry point that takes an LLM request: the same pipeline everywhere
(`/process`, every LangServe route, the OpenAI-compatible chat route, test-classification
with a judge).

Unauthenticated → 401; identity from the token whatever the body says; exactly one audit
record per request (a batch input is a request) with the right tenant, user, model, entry
point and status; one per-minute quota counted across every entry point, so a user at the
limit is refused by all of them (the streaming routes with a plain 429 before any event).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from cluster.config import CONFIG_DIR
from server import create_app
from service.auth import ADMIN, issue_token
from tests.conftest import FakeCluster
from tests.fakes.net import ThreadedServer
from tests.integration.conftest import SECRET

LIMITED_RPM = 9
ASK = {"prompt": "Write a YARA rule for this loader", "task_type": "rule_generation"}
FORGED = {"user": "mallory", "tenant": "evil-corp"}
#: The same ask through the OpenAI-compatible API; its `user` is OpenAI's end-user field, which
#: never names the caller either.
CHAT = {
    "model": "rule_generation",
    "messages": [{"role": "user", "content": ASK["prompt"]}],
    "user": "mallory",
}


@dataclass(frozen=True)
class EntryPoint:
    """How to send one request through an entry point, and what the audit should say."""

    name: str
    """The audit's entry_point."""
    send: Callable[[httpx.Client], httpx.Response]
    requests: int = 1
    """Requests (audit records, quota) one call makes."""
    model: str = "qwen-coder"


def _job_done(c: httpx.Client, r: httpx.Response) -> httpx.Response:
    if r.status_code != 202:
        return r
    url = r.json()["status_url"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        job = c.get(url).json()
        if job["status"] in ("completed", "failed"):
            return r
        time.sleep(0.05)
    raise AssertionError(f"async job {url} did not finish")


def entry_points(ask: dict[str, Any], chat: dict[str, Any]) -> list[EntryPoint]:
    """Each entry point sending `ask` (`chat` through the OpenAI-compatible API)."""
    return [
        EntryPoint("process", lambda c: c.post("/api/llm/process", json=ask)),
        EntryPoint(
            "process",
            lambda c: _job_done(c, c.post("/api/llm/process", json={**ask, "async": True})),
        ),
        EntryPoint(
            "graph/invoke", lambda c: c.post("/graph/invoke", json={"input": {**ask, **FORGED}})
        ),
        EntryPoint(
            "graph/batch",
            lambda c: c.post("/graph/batch", json={"inputs": [{**ask, **FORGED}, ask]}),
            requests=2,
        ),
        EntryPoint(
            "graph/stream", lambda c: c.post("/graph/stream", json={"input": {**ask, **FORGED}})
        ),
        EntryPoint("graph/stream_log", lambda c: c.post("/graph/stream_log", json={"input": ask})),
        EntryPoint(
            "graph/stream_events",
            lambda c: c.post("/graph/stream_events", json={"input": ask}),
        ),
        EntryPoint("openai/chat", lambda c: c.post("/v1/chat/completions", json=chat)),
        EntryPoint(
            "openai/chat", lambda c: c.post("/v1/chat/completions", json={**chat, "stream": True})
        ),
    ]


ENTRY_POINTS = [
    *entry_points(ASK, CHAT),
    EntryPoint(
        "test-classification",
        lambda c: c.post("/api/llm/test-classification", json={"prompt": "Is this bad?"}),
        model="granite-guardian",
    ),
]
IDS = [
    "process",
    "process-async",
    "graph-invoke",
    "graph-batch",
    "graph-stream",
    "graph-stream_log",
    "graph-stream_events",
    "openai-chat",
    "openai-chat-stream",
    "test-classification",
]
#: More tokens than qwen-coder, which the task type picks, may write: found only once the
#: run has chosen the model, not at admission.
OVER = 10_000_000
OVER_LIMIT = entry_points(
    {**ASK, "parameters": {"max_tokens": OVER}}, {**CHAT, "max_completion_tokens": OVER}
)


@dataclass
class Router:
    url: str
    tenant: str
    limited_tenant: str

    def client(self, user: str | None = None, tenant: str | None = None) -> httpx.Client:
        headers = {}
        if user is not None:
            token = issue_token(SECRET, user=user, tenant=tenant or self.tenant)
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def audit(self, user: str, tenant: str | None = None, **filters: str) -> list[dict[str, Any]]:
        admin = issue_token(SECRET, user="auditor", tenant=tenant or self.tenant, roles=[ADMIN])
        r = httpx.get(
            f"{self.url}/api/llm/audit",
            params={"user": user, "limit": 1000, **filters},
            headers={"Authorization": f"Bearer {admin}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        records: list[dict[str, Any]] = r.json()["records"]
        return records


@pytest.fixture
def router(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Router]:
    tenant, limited = f"m-{uuid.uuid4().hex[:8]}", f"l-{uuid.uuid4().hex[:8]}"
    limits = tmp_path / "limits.yaml"
    roomy = {"requests_per_minute": 10_000, "tokens_per_minute": 10_000_000}
    tight = {"requests_per_minute": LIMITED_RPM, "tokens_per_minute": 10_000_000}
    limits.write_text(
        yaml.safe_dump(
            {
                "default": {"user": roomy, "tenant": roomy},
                "tenants": {limited: {"user": tight, "tenant": roomy}},
            }
        )
    )
    routing = tmp_path / "routing.yaml"
    shutil.copy(CONFIG_DIR / "routing.yaml", routing)
    policy = yaml.safe_load(routing.read_text())
    policy["judge"].update(enabled=True, below_confidence=1.0)
    routing.write_text(yaml.safe_dump(policy))
    settings = fake_cluster.settings(
        jwt_secret=SECRET,
        limits_config=limits,
        routing_config=routing,
        health_interval_s=0,
        policy_reload_s=0,
    )
    server = ThreadedServer(create_app(settings))
    yield Router(server.url, tenant, limited)
    server.stop()


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=IDS)
def test_no_token_no_request(router: Router, entry: EntryPoint) -> None:
    with router.client() as c:
        r = entry.send(c)
    assert r.status_code == 401, r.text
    assert r.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=IDS)
def test_one_audit_record_per_request_in_the_token_holders_name(
    router: Router, entry: EntryPoint
) -> None:
    user = f"u-{uuid.uuid4().hex[:8]}"
    with router.client(user) as c:
        r = entry.send(c)
    assert r.status_code in (200, 202), r.text
    assert "event: error" not in r.text
    records = router.audit(user)
    assert len(records) == entry.requests
    for record in records:
        assert (record["tenant"], record["user_id"]) == (router.tenant, user)
        assert record["entry_point"] == entry.name
        assert record["status"] == "completed", record
        assert record["model"] == entry.model
    assert router.audit(user, entry_point=entry.name) == records
    assert router.audit(user, entry_point="elsewhere") == []
    assert router.audit("mallory", "evil-corp") == []


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=IDS)
def test_one_quota_across_every_entry_point(router: Router, entry: EntryPoint) -> None:
    """Spend the user's quota on every other entry point, then this one is refused too."""
    user = f"q-{uuid.uuid4().hex[:8]}"
    spent = 0
    fresh_minute()
    with router.client(user, router.limited_tenant) as c:
        for other in ENTRY_POINTS:
            if other is entry or spent + other.requests > LIMITED_RPM:
                continue
            assert other.send(c).status_code in (200, 202)
            spent += other.requests
        while spent < LIMITED_RPM:
            assert c.post("/api/llm/process", json=ASK).status_code == 200
            spent += 1
        refused = entry.send(c)
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["Retry-After"]
    records = router.audit(user, router.limited_tenant)
    assert len(records) == LIMITED_RPM + entry.requests
    mine = [r for r in records if r["status"] == "refused"]
    assert len(mine) == entry.requests
    assert {(r["entry_point"], r["error_code"]) for r in mine} == {(entry.name, "rate_limited")}


def fresh_minute(needed_s: float = 20.0) -> None:
    """Wait, if need be, for a rate-limit window with `needed_s` left: a count that straddles
    two windows would start again from zero halfway."""
    left = 60 - time.time() % 60
    if left < needed_s:
        time.sleep(left + 0.05)


def test_a_bad_config_hash_is_refused_and_audited(router: Router) -> None:
    user = f"h-{uuid.uuid4().hex[:8]}"
    with router.client(user) as c:
        r = c.post("/graph/c/not-a-hash/invoke", json={"input": ASK})
    assert r.status_code == 400, r.text
    [record] = router.audit(user)
    assert (record["status"], record["http_status"], record["entry_point"]) == (
        "refused",
        400,
        "graph/invoke",
    )


def test_a_request_refused_after_admission_is_closed_once_and_given_back(router: Router) -> None:
    """stream_log's own parameters are checked after the inputs were admitted: the request is
    refused, its one audit record says so, and its place in the quota is given back."""
    user = f"g-{uuid.uuid4().hex[:8]}"
    fresh_minute()
    with router.client(user, router.limited_tenant) as c:
        bad = c.post("/graph/stream_log", json={"input": ASK, "include_names": 5})
        assert bad.status_code == 422, bad.text
        [record] = router.audit(user, router.limited_tenant)
        assert (record["status"], record["http_status"], record["entry_point"]) == (
            "refused",
            422,
            "graph/stream_log",
        )
        answers = [c.post("/api/llm/process", json=ASK).status_code for _ in range(LIMITED_RPM)]
    assert answers == [200] * LIMITED_RPM


@pytest.mark.parametrize("entry", OVER_LIMIT, ids=IDS[: len(OVER_LIMIT)])
def test_a_request_over_its_routed_models_limit_is_refused_and_given_back(
    router: Router, entry: EntryPoint
) -> None:
    """Invalid for the model routing chose: refused as if it had named that model, however it
    reached the router, and its place in the quota given back."""
    user = f"t-{uuid.uuid4().hex[:8]}"
    fresh_minute()
    with router.client(user, router.limited_tenant) as c:
        r = entry.send(c)
        # A stream says so in its events; an async job, on its record.
        assert r.status_code == 202 or f"{OVER} is over qwen-coder's limit" in r.text, r.text
        answers = [c.post("/api/llm/process", json=ASK).status_code for _ in range(LIMITED_RPM)]
    assert answers == [200] * LIMITED_RPM
    records = router.audit(user, router.limited_tenant)
    refused = [r for r in records if r["status"] != "completed"]
    assert len(refused) == entry.requests
    for record in refused:
        assert (record["status"], record["http_status"], record["error_code"]) == (
            "refused",
            422,
            "invalid_request",
        )
        assert record["entry_point"] == entry.name


def test_job_ids_are_the_tenants_own_and_one_job_runs_once_at_a_time(
    router: Router, fake_cluster: FakeCluster
) -> None:
    job = {**ASK, "job_id": f"job-{uuid.uuid4().hex[:8]}", "async": True}
    user = f"j-{uuid.uuid4().hex[:8]}"
    with router.client(user) as c:
        twice = c.post("/graph/batch", json={"inputs": [job, job]})
        assert twice.status_code == 422 and "appears twice" in twice.text
        for node in (fake_cluster.node1, fake_cluster.node2):
            node.behaviour.delay_s = 1.0
        assert c.post("/api/llm/process", json=job).status_code == 202
        busy = c.post("/api/llm/process", json=job)
        assert busy.status_code == 409 and busy.json()["error"]["code"] == "job_in_progress"
        with router.client("bob", "other-tenant") as other:
            assert other.post("/api/llm/process", json=job).status_code == 202
            _job_done(other, other.post("/api/llm/process", json={**ASK, "async": True}))
        _job_done(c, c.post("/api/llm/process", json={**ASK, "async": True}))
        deadline = time.monotonic() + 20
        while c.get(f"/api/llm/jobs/{job['job_id']}").json()["status"] != "completed":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert c.post("/api/llm/process", json={**job, "async": False}).status_code == 200
    statuses = sorted(r["status"] for r in router.audit(user))
    assert statuses == ["completed"] * 3 + ["refused"] * 3


HELD = {"structured_outputs": {"grammar": 'root ::= "benign"'}}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/llm/process", {**ASK, "parameters": HELD}),
        ("/graph/invoke", {"input": {**ASK, "parameters": HELD}}),
        ("/v1/chat/completions", {**CHAT, **HELD}),
    ],
    ids=["process", "graph-invoke", "openai-chat"],
)
def test_only_the_router_holds_a_model_to_a_grammar(
    router: Router, path: str, body: dict[str, Any]
) -> None:
    with router.client(f"s-{uuid.uuid4().hex[:8]}") as c:
        r = c.post(path, json=body)
    assert r.status_code == 422, r.text
    assert "structured_outputs" in r.text
