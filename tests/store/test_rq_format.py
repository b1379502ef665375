"""We write new jobs ourselves (`gql_jobs.store.rq_format`): hold that to what RQ itself writes.

For each option we use, the same job is written once by RQ (`Queue.create_job` + `enqueue_job` /
`schedule_job`) and once by the service; the hashes must hold the same fields and values (ids and
timestamps aside; RQ's empty fields left out, see `rq_format`), the job id must land in the same RQ
structure, and RQ must read and run it.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from rq import Queue
from rq.job import Job, Retry
from rq.registry import ScheduledJobRegistry

from gql_jobs.auth import ANONYMOUS as ADMIN
from gql_jobs.constants import OWNER_FIELD
from gql_jobs.domain import JobStatus, RetryPolicy, SubmitRequest
from gql_jobs.service.jobs import JobService
from gql_jobs.store.rq_format import RQ_TIME_FORMAT, SERIALIZER, SET_ONCE_FIELDS

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

VOLATILE = {b"created_at", b"enqueued_at", b"description", b"meta", b"data"}


def by_rq(connection: redis.Redis, submitted: Job, **create: Any) -> dict[bytes, bytes]:
    """Write `submitted`'s job again through RQ's own calls, with the same options."""
    run_at = create.pop("run_at", None)
    at_front = create.pop("at_front", False)
    queue = Queue(submitted.origin, connection=connection, serializer=SERIALIZER)
    job = queue.create_job(
        str(submitted.func_name),
        args=submitted.args,
        timeout=int(submitted.timeout or 0) or None,
        result_ttl=submitted.result_ttl,
        failure_ttl=submitted.failure_ttl,
        description=submitted.description,
        job_id="RQ-" + submitted.id,
        meta=submitted.meta,
        **create,
    )
    if run_at is not None:
        queue.schedule_job(job, run_at)
    else:
        queue.enqueue_job(job, at_front=at_front)
    written: dict[bytes, bytes] = connection.hgetall(job.key)  # type: ignore[assignment]
    return {field: value for field, value in written.items() if value != b""}


CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "plain": ({}, {}),
    "ttls and timeout": ({"timeout": 7, "result_ttl": 60, "failure_ttl": 3600}, {}),
    "keep result forever": ({"result_ttl": -1}, {}),
    "retry with intervals": (
        {"retry": RetryPolicy(max=3, intervals=(1, 5))},
        {"retry": Retry(max=3, interval=[1, 5])},
    ),
    "retry without intervals": ({"retry": RetryPolicy(max=2)}, {"retry": Retry(max=2, interval=0)}),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_job_hash_is_the_one_rq_writes(
    case: str, service: JobService, redis_client: redis.Redis
) -> None:
    ours, theirs = CASES[case]
    record = (await service.submit(ADMIN, SubmitRequest(task="echo", payload={"n": 1}, **ours))).record
    our_hash: dict[bytes, bytes] = redis_client.hgetall(f"rq:job:{record.id}")  # type: ignore[assignment]
    stored = Job.fetch(record.id, connection=redis_client, serializer=SERIALIZER)
    rq_hash = by_rq(redis_client, stored, **theirs)

    assert OWNER_FIELD.encode() not in our_hash  # an open API's jobs have no owner (`auth.owner_of`)
    assert set(our_hash) == set(rq_hash)
    assert {k: v for k, v in our_hash.items() if k not in VOLATILE} == {
        k: v for k, v in rq_hash.items() if k not in VOLATILE
    }
    assert json.loads(zlib.decompress(our_hash[b"data"])) == json.loads(zlib.decompress(rq_hash[b"data"]))
    assert json.loads(our_hash[b"meta"]) == json.loads(rq_hash[b"meta"])
    for field in (b"created_at", b"enqueued_at"):
        datetime.strptime(our_hash[field].decode(), RQ_TIME_FORMAT)  # RQ's own format
    assert stored.get_status(refresh=False).value == JobStatus.QUEUED.value
    assert stored.created_at is not None and stored.created_at == record.created_at
    assert stored.enqueued_at == record.enqueued_at
    assert stored.retries_left == record.retries_left
    theirs_read = Job.fetch("RQ-" + record.id, connection=redis_client, serializer=SERIALIZER)
    for attribute in ("worker_name", "started_at", "ended_at", "last_heartbeat", "group_id", "origin"):
        assert getattr(stored, attribute) == getattr(theirs_read, attribute), attribute
    for attribute in ("success_callback", "failure_callback", "stopped_callback"):
        assert getattr(stored, attribute) is getattr(theirs_read, attribute) is None, attribute


async def test_jobs_go_on_the_queue_in_order_and_at_the_front_when_asked(
    service: JobService, redis_client: redis.Redis
) -> None:
    outcomes = await service.submit_many(
        ADMIN,
        [
            SubmitRequest(task="echo", payload={"n": 1}),
            SubmitRequest(task="echo", payload={"n": 2}),
            SubmitRequest(task="echo", payload={"n": 3}, at_front=True),
            SubmitRequest(task="echo", payload={"n": 4}, queue="other"),
        ],
    )
    first, second, urgent, elsewhere = (o.record.id for o in outcomes)  # type: ignore[union-attr]
    queue = Queue("default", connection=redis_client, serializer=SERIALIZER)
    assert queue.get_job_ids() == [urgent, first, second]
    assert Queue("other", connection=redis_client, serializer=SERIALIZER).get_job_ids() == [elsewhere]
    assert {q.name for q in Queue.all(connection=redis_client, serializer=SERIALIZER)} >= {"default", "other"}


async def test_a_scheduled_job_is_where_rq_looks_for_it(
    service: JobService, redis_client: redis.Redis
) -> None:
    when = datetime.now(UTC) + timedelta(minutes=5)
    record = (await service.submit(ADMIN, SubmitRequest(task="echo", payload={}, scheduled_at=when))).record
    assert record.status == JobStatus.SCHEDULED and record.enqueued_at is None

    stored = Job.fetch(record.id, connection=redis_client, serializer=SERIALIZER)
    rq_hash = by_rq(redis_client, stored, run_at=when)
    our_hash: dict[bytes, bytes] = redis_client.hgetall(f"rq:job:{record.id}")  # type: ignore[assignment]
    assert set(our_hash) == set(rq_hash)
    registry = ScheduledJobRegistry("default", connection=redis_client, serializer=SERIALIZER)  # type: ignore[no-untyped-call]
    assert registry.get_scheduled_time(record.id) == registry.get_scheduled_time("RQ-" + record.id)
    assert Queue("default", connection=redis_client).get_job_ids() == []


async def test_rq_runs_what_we_wrote(
    service: JobService, redis_client: redis.Redis, drain: Callable[..., None]
) -> None:
    record = (await service.submit(ADMIN, SubmitRequest(task="echo", payload={"hello": "rq"}))).record
    drain()
    job = Job.fetch(record.id, connection=redis_client, serializer=SERIALIZER)
    assert job.get_status().value == JobStatus.FINISHED.value
    assert job.return_value() == {"hello": "rq"}
    finished: dict[bytes, bytes] = redis_client.hgetall(job.key)  # type: ignore[assignment]
    assert b"" not in finished.values()  # the worker's saves stay compact too (`EventedJob`)
    assert finished[b"worker_name"] and finished[b"ended_at"]


async def test_jobs_rq_saves_for_us_stay_compact(
    service: JobService, redis_client: redis.Redis, drain: Callable[..., None]
) -> None:
    """The dependencies path and requeues save through RQ (`CompactJob`): no empty set-once fields."""
    first = (await service.submit(ADMIN, SubmitRequest(task="fail", payload={}))).record
    second = (
        await service.submit(ADMIN, SubmitRequest(task="echo", payload={}, depends_on=(first.id,)))
    ).record
    drain()
    await service.requeue(ADMIN, first.id)
    for job_id in (first.id, second.id):
        stored: dict[bytes, bytes] = redis_client.hgetall(f"rq:job:{job_id}")  # type: ignore[assignment]
        assert not {f.encode() for f in SET_ONCE_FIELDS} & set(stored), job_id
        assert stored[b"status"]
