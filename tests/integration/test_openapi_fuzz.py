"""Property-based requests over the whole OpenAPI (schemathesis): no operation answers a 5xx.

A router in front of the fake nodes takes at least 1,000 generated requests across every
operation it publishes, with a tenant admin's token: valid ones and invalid ones (schemathesis'
negative mode). A 5xx status, a stream that ends in an error
event, or a streamed error chunk that says 500 fails the test. Node status updates go last, with an operator's token (they
may take the nodes away, after which a 503 for capacity would be the right answer).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.transport import Response

from server import create_app
from service.auth import ADMIN, OPERATOR, issue_token
from tests.conftest import FakeCluster
from tests.fakes.net import ThreadedServer
from tests.integration.conftest import SECRET

EXAMPLES_PER_OPERATION = 40
NEGATIVE_EXAMPLES_PER_OPERATION = 10
AT_LEAST = 1000
LAST = ("POST", "/api/llm/nodes/status")


@pytest.fixture
def router(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[str]:
    roomy = {"requests_per_minute": 1_000_000, "tokens_per_minute": 1_000_000_000}
    limits = tmp_path / "limits.yaml"
    limits.write_text(yaml.safe_dump({"default": {"user": roomy, "tenant": roomy}}))
    app = create_app(
        fake_cluster.settings(
            jwt_secret=SECRET,
            limits_config=limits,
            health_interval_s=0,
            policy_reload_s=0,
            state_dir=tmp_path / "state",
            llm_default_timeout=5,
        )
    )
    server = ThreadedServer(app)
    yield server.url
    server.stop()


def _failure(response: Response) -> str | None:
    if response.status_code >= 500:
        return f"{response.status_code}: {response.text[:500]}"
    streamed = "text/event-stream" in response.headers.get("content-type", [""])[0]
    if streamed and "event: error" in response.text:
        return f"stream error event: {response.text[-500:]}"
    if streamed and '"http_status":500' in response.text.replace(" ", ""):
        return f"stream error chunk: {response.text[-500:]}"
    return None


def fuzz(
    operation: Any,
    headers: dict[str, str],
    statuses: Counter[int],
    mode: GenerationMode = GenerationMode.POSITIVE,
) -> tuple[int, list[str]]:
    """Generated requests to one operation: how many were sent, and what went wrong."""
    label = f"{operation.method.upper()} {operation.path} ({mode.value})"
    sent, failures = 0, []
    negative = mode is GenerationMode.NEGATIVE

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=NEGATIVE_EXAMPLES_PER_OPERATION if negative else EXAMPLES_PER_OPERATION,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case: schemathesis.Case) -> None:
        nonlocal sent
        response = case.call(headers=headers, timeout=30)
        sent += 1
        statuses[response.status_code] += 1
        problem = _failure(response)
        if problem is not None:
            failures.append(f"{label} {case.body!r:.300}: {problem}")

    try:
        check()
    except Unsatisfiable:
        # Nothing about this operation can be made invalid (no parameters, no body).
        assert negative, label
    return sent, failures


# Over a thousand requests plus Hypothesis' search, on two cores: minutes, not the default 120 s.
@pytest.mark.timeout(600)
def test_no_generated_request_gets_a_5xx(router: str) -> None:
    schema = schemathesis.openapi.from_url(f"{router}/openapi.json")
    admin = issue_token(SECRET, user="fuzz", tenant="fuzz", roles=[ADMIN])
    operator = issue_token(SECRET, user="noc", tenant="noc", roles=[OPERATOR])
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(key=lambda op: (op.method.upper(), op.path) == LAST)
    sent: dict[str, int] = {}
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    for operation in operations:
        token = operator if (operation.method.upper(), operation.path) == LAST else admin
        label = f"{operation.method.upper()} {operation.path}"
        for mode in GenerationMode:
            key = f"{label} ({mode.value})"
            sent[key], found = fuzz(operation, {"Authorization": f"Bearer {token}"}, statuses, mode)
            failures += found
    total = sum(sent.values())
    by_mode = {m.value: sum(n for k, n in sent.items() if m.value in k) for m in GenerationMode}
    print(
        f"\n{total} generated requests ({by_mode}) over {len(operations)} operations: "
        f"{sorted(statuses.items())}"
    )
    assert not failures, "\n".join(failures[:10])
    assert total >= AT_LEAST, sent
