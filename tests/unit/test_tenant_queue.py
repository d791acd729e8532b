"""The queue as a tenant sees it: its own jobs, under its own job ids, and only the depth of
everyone else's."""

from __future__ import annotations

from cluster.scheduler import QueueEntry
from graph.records import job_of, reservation_key
from service.responses import tenant_queue_json


def entry(key: str) -> QueueEntry:
    return QueueEntry(
        job_id=key, priority=3, effective_priority=3.0, models=["llama31"], waiting_s=1.0
    )


def test_a_tenant_sees_its_own_jobs_by_their_ids_and_their_place_in_the_queue() -> None:
    queue = [
        entry(reservation_key("globex", "job-1")),
        entry(reservation_key("acme", "job-1")),
        entry(reservation_key("acme/eu", "job-2")),
    ]
    shown = tenant_queue_json(queue, "acme")
    assert [(e["job_id"], e["position"]) for e in shown] == [("job-1", 1)]
    assert [e["job_id"] for e in tenant_queue_json(queue, "acme/eu")] == ["job-2"]
    assert tenant_queue_json(queue, "initech") == []


def test_a_reservation_key_names_its_tenant_and_job() -> None:
    assert job_of(reservation_key("acme", "j"), "acme") == "j"
    assert job_of(reservation_key("acme", "j"), "acm") is None
    assert job_of("unkeyed", "acme") is None
