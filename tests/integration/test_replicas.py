"""Replicas that act as one router: two or three routers on the machine's Redis share the
nodes' capacity and the queue's order (their stores are PostgreSQL's, as in production)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app.settings import Settings
from cluster.config import CONFIG_DIR
from service.auth import issue_token
from tests.conftest import FakeCluster
from tests.fakes.net import free_port, wait_started
from tests.integration.conftest import SECRET
from tests.integration.test_governance import POSTGRES, REDIS, ROOT, Replica, limits_file

CAP = 4


def capped_cluster(tmp_path: Path, max_jobs: int = CAP) -> Path:
    """The default cluster with a job cap on every node."""
    config = yaml.safe_load((CONFIG_DIR / "cluster.yaml").read_text())
    for node in config["nodes"]:
        node["max_jobs"] = max_jobs
    path = tmp_path / f"cluster-{max_jobs}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def replica_settings(fake: FakeCluster, tmp_path: Path, prefix: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "jwt_secret": SECRET,
        "health_interval_s": 0,
        "policy_reload_s": 0,
        "state_dir": tmp_path / f"state-{uuid.uuid4().hex[:6]}",
        "cluster_config": capped_cluster(tmp_path),
        "urgent_slots": 0,
        "limits_config": limits_file(tmp_path),
        "database_url": POSTGRES,
        "redis_url": REDIS,
        "redis_prefix": prefix,
        "llm_default_timeout": 60,
    }
    values.update(extra)
    return fake.settings(**values)


def auth(tenant: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, user='ann', tenant=tenant)}"}


async def burst(urls: list[str], n: int, body: dict[str, Any], tenant: str) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(headers=auth(tenant), timeout=120, limits=limits) as client:
        return await asyncio.gather(
            *(client.post(f"{urls[i % len(urls)]}/api/llm/process", json=body) for i in range(n))
        )


@pytest.mark.parametrize("replicas", [2, 3])
def test_replicas_never_hold_more_than_a_nodes_cap_between_them(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path, replicas: int
) -> None:
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    fake_cluster.node2.behaviour.delay_s = 0.2
    routers = [Replica(replica_settings(fake_cluster, tmp_path, prefix)) for _ in range(replicas)]
    try:
        body = {"prompt": "Summarize the incident timeline", "model": "llama31"}
        responses = asyncio.run(
            burst([r.url for r in routers], 200, body, f"c-{uuid.uuid4().hex[:8]}")
        )
    finally:
        for router in routers:
            router.stop()
    outcomes = Counter(
        r.status_code if r.status_code == 200 else r.json()["error"]["code"] for r in responses
    )
    assert outcomes == {200: 200}, outcomes
    assert len(fake_cluster.node2.calls) == 200
    assert fake_cluster.node2.max_in_flight == CAP


def test_without_a_shared_ledger_each_replica_fills_the_cap_alone(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What the ledger is for: the same burst on routers that share nothing."""
    fake_cluster.node2.behaviour.delay_s = 0.2
    routers = [
        Replica(
            replica_settings(fake_cluster, tmp_path, "unused", redis_url=None, database_url=None)
        )
        for _ in range(2)
    ]
    try:
        body = {"prompt": "Summarize the incident timeline", "model": "llama31"}
        asyncio.run(burst([r.url for r in routers], 24, body, f"c-{uuid.uuid4().hex[:8]}"))
    finally:
        for router in routers:
            router.stop()
    assert fake_cluster.node2.max_in_flight == 2 * CAP


def test_the_queue_order_holds_across_replicas(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Capacity freed on replica 1 goes to the urgent job waiting on replica 2, not to the
    routine job that has waited longer on replica 1."""
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    one_slot = capped_cluster(tmp_path, 1)
    first, second = (
        Replica(replica_settings(fake_cluster, tmp_path, prefix, cluster_config=one_slot))
        for _ in range(2)
    )
    tenant = f"q-{uuid.uuid4().hex[:8]}"
    ask = {"prompt": "Summarize the incident timeline", "model": "llama31"}

    async def scenario() -> list[str]:
        finished: list[str] = []
        async with httpx.AsyncClient(headers=auth(tenant), timeout=60) as client:
            for router in (first, second):  # warm: the first request of a router is slower
                assert (await client.post(f"{router.url}/api/llm/process", json=ask)).is_success
            fake_cluster.node2.behaviour.per_model_delay_s = {"llama31": 1.0}

            async def send(url: str, name: str, priority: int) -> None:
                r = await client.post(f"{url}/api/llm/process", json={**ask, "priority": priority})
                assert r.status_code == 200, r.text
                finished.append(name)

            async def until(check: Any) -> None:
                deadline = time.monotonic() + 10
                while not await check():
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.02)

            async def queued(url: str, depth: int) -> bool:
                r = await client.get(f"{url}/api/llm/queue")
                return bool(r.json()["depth"] == depth)

            async def holding() -> bool:
                return fake_cluster.node2.in_flight == 1

            holder = asyncio.create_task(send(first.url, "holder", 3))
            await until(holding)
            routine = asyncio.create_task(send(first.url, "routine", 5))
            await until(lambda: queued(first.url, 1))
            await asyncio.sleep(0.2)  # the routine job has waited longer
            urgent = asyncio.create_task(send(second.url, "urgent", 1))
            # Either replica's queue view is the whole queue: both jobs.
            await until(lambda: queued(second.url, 2))
            assert await queued(first.url, 2)
            await asyncio.gather(holder, routine, urgent)
        return finished

    try:
        finished = asyncio.run(scenario())
    finally:
        first.stop()
        second.stop()
    assert finished == ["holder", "urgent", "routine"]
    assert fake_cluster.node2.max_in_flight == 1


def router_process(
    fake: FakeCluster, tmp_path: Path, port: int, workers: str = "1", **env_extra: str
) -> subprocess.Popen[bytes]:
    """A router in a process of its own (`workers` processes), so that a test can kill -9
    it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "ROUTER_"))}
    env.update(
        ROUTER_JWT_SECRET=SECRET,
        LLM_NODE_1_URL=fake.node1.url,
        LLM_NODE_2_URL=fake.node2.url,
        DATABASE_URL=POSTGRES,
        REDIS_URL=REDIS,
        ROUTER_HEALTH_INTERVAL_S="0",
        ROUTER_POLICY_RELOAD_S="0",
        ROUTER_STATE_DIR=str(tmp_path / f"state-{port}"),
        PYTHONPATH=str(ROOT),
        **env_extra,
    )
    command = [sys.executable, "-m", "cli.main", "serve", "--port", str(port), "--workers", workers]
    proc = subprocess.Popen([*command, "--log-level", "warning"], env=env, cwd=ROOT)
    # Each worker imports the router on its own, slowly on a busy host.
    wait_started(proc, f"http://127.0.0.1:{port}/healthz", timeout_s=90)
    return proc


def test_a_killed_replicas_capacity_comes_back_within_its_time_to_live(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    ttl_s = 2.0
    one_slot = capped_cluster(tmp_path, 1)
    port = free_port()
    doomed = router_process(
        fake_cluster,
        tmp_path,
        port,
        ROUTER_CLUSTER_CONFIG=str(one_slot),
        ROUTER_URGENT_SLOTS="0",
        ROUTER_REDIS_PREFIX=prefix,
        ROUTER_LEASE_TTL_S=str(ttl_s),
    )
    survivor = Replica(
        replica_settings(fake_cluster, tmp_path, prefix, cluster_config=one_slot, lease_ttl_s=ttl_s)
    )
    tenant = f"k-{uuid.uuid4().hex[:8]}"
    ask = {"prompt": "Summarize the incident timeline", "model": "llama31"}
    fake_cluster.node2.behaviour.per_model_delay_s = {"llama31": 60.0}
    answers: dict[str, Any] = {}

    def send(name: str, url: str) -> None:
        try:
            answers[name] = httpx.post(
                f"{url}/api/llm/process", json=ask, headers=auth(tenant), timeout=60
            )
        except httpx.HTTPError as exc:
            answers[name] = exc

    try:
        held = threading.Thread(target=send, args=("doomed", f"http://127.0.0.1:{port}"))
        held.start()
        deadline = time.monotonic() + 20
        while fake_cluster.node2.in_flight < 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        waiting = threading.Thread(target=send, args=("survivor", survivor.url))
        waiting.start()
        with httpx.Client(headers=auth(tenant), timeout=10) as c:
            while c.get(f"{survivor.url}/api/llm/queue").json()["depth"] != 1:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        doomed.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        fake_cluster.node2.behaviour.per_model_delay_s = {}
        waiting.join(timeout=30)
        back_after = time.monotonic() - killed
        held.join(timeout=5)
    finally:
        doomed.kill()
        doomed.wait(timeout=10)
        survivor.stop()
    answer = answers["survivor"]
    assert isinstance(answer, httpx.Response) and answer.status_code == 200, answer
    assert back_after < ttl_s + 1.5, back_after
    print(f"\ncapacity back {back_after:.2f} s after kill -9 (time to live {ttl_s:g} s)")


def test_serve_workers_needs_redis_and_then_serves_with_every_worker(
    fake_cluster: FakeCluster, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLM_", "ROUTER_", "REDIS"))}
    env.update(ROUTER_JWT_SECRET=SECRET, PYTHONPATH=str(ROOT))
    refused = subprocess.run(
        [sys.executable, "-m", "cli.main", "serve", "--workers", "2"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "REDIS_URL" in refused.stderr

    port = free_port()
    proc = router_process(
        fake_cluster,
        tmp_path,
        port,
        ROUTER_REDIS_PREFIX=f"t-{uuid.uuid4().hex[:10]}",
        workers="2",
    )
    try:
        workers = [c for c in children(proc.pid) if b"spawn_main" in cmdline(c)]
        assert len(workers) == 2
        body = {"prompt": "Summarize the incident timeline", "model": "llama31"}
        responses = asyncio.run(
            burst([f"http://127.0.0.1:{port}"], 40, body, f"w-{uuid.uuid4().hex[:8]}")
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert [r.status_code for r in responses] == [200] * 40


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
