"""Concurrency limits per key (RQ 3's `RateLimit`), and their clear refusal on RQ 2.

Run against whichever RQ is installed: on RQ 3 a real worker shows a second job of a key held back
as RATE_LIMITED while the first runs, then run after it; on RQ 2 the same input is an
`InvalidInputError` with code RQ_VERSION_REQUIRED, and nothing is written.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from gql_jobs.auth import ANONYMOUS as ADMIN
from gql_jobs.domain import ConcurrencyLimit, JobStatus, SubmitRequest
from gql_jobs.errors import ErrorCode, InvalidRequestError, RqFeatureUnavailableError
from gql_jobs.graphql.errors import code_of
from gql_jobs.service.jobs import JobService
from gql_jobs.service.submission import prepare
from gql_jobs.store.rq_adapter import HAS_RQ3
from tests.conftest import eventually
from tests.graphql_helpers import gql

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

needs_rq3 = pytest.mark.skipif(not HAS_RQ3, reason="concurrency limits are RQ 3's (RQ 2: the refusal below)")
needs_rq2 = pytest.mark.skipif(HAS_RQ3, reason="the refusal is RQ 2's (RQ 3 runs the limit: above)")

StartWorker = Callable[..., subprocess.Popen[bytes]]

SUBMIT = """
mutation Submit($input: SubmitJobInput!) {
  submitJob(input: $input) {
    __typename
    ... on SubmitJobSuccess { job { id status rawStatus } }
    ... on InvalidInputError { field code message }
    ... on Error { message }
  }
}
"""
QUEUES = "{ queues { name counts { status count } } }"


def limited(task: str, payload: dict[str, Any], key: str = "reports", limit: int = 1) -> SubmitRequest:
    return SubmitRequest(task, payload, concurrency=ConcurrencyLimit(key, limit))


async def status_is(service: JobService, job_id: str, status: JobStatus) -> bool:
    return (await service.get(ADMIN, job_id)).status == status


@needs_rq3
async def test_a_second_job_of_a_key_waits_rate_limited_then_runs_after_the_first(
    service: JobService, worker_process: StartWorker, tmp_path: Path
) -> None:
    worker_process()
    gate = tmp_path / "gate"
    gate.mkdir()
    first = (
        await service.submit(ADMIN, limited("gated_steps", {"gate": str(gate), "steps": 1, "timeout": 300}))
    ).record
    await eventually(lambda: status_is(service, first.id, JobStatus.STARTED))

    second = (await service.submit(ADMIN, limited("echo", {"n": 2}))).record
    assert second.status == JobStatus.RATE_LIMITED
    assert (await service.get(ADMIN, second.id)).raw_status == "rate_limited"
    queue = next(q for q in await service.queues(ADMIN) if q.name == "default")
    assert queue.counts is not None and queue.counts[JobStatus.RATE_LIMITED] == 1

    (gate / "1").touch()  # the first job ends: its slot goes to the second
    await eventually(lambda: status_is(service, second.id, JobStatus.FINISHED))
    done_first, done_second = await service.get_many(ADMIN, [first.id, second.id])
    assert done_first is not None and done_first.status == JobStatus.FINISHED
    assert done_second is not None and done_second.result == {"n": 2}
    assert done_first.ended_at and done_second.started_at and done_second.started_at >= done_first.ended_at


@needs_rq3
async def test_other_keys_are_not_held_back_and_a_held_job_can_be_canceled(
    service: JobService, redis_client: redis.Redis
) -> None:
    running = (await service.submit(ADMIN, limited("echo", {}, key="a"))).record
    held = (await service.submit(ADMIN, limited("echo", {}, key="a"))).record
    elsewhere = (await service.submit(ADMIN, limited("echo", {}, key="b"))).record
    assert (running.status, held.status, elsewhere.status) == (
        JobStatus.QUEUED,  # a free slot: queued at once (RQ's slot is held until it ends)
        JobStatus.RATE_LIMITED,
        JobStatus.QUEUED,
    )
    assert (await service.cancel(ADMIN, held.id)).status == JobStatus.CANCELED
    assert redis_client.zcard("rq:rl:anonymous:a:rate_limited") == 0  # keys are scoped to the owner


@needs_rq3
async def test_a_limited_job_can_be_scheduled(service: JobService) -> None:
    request = SubmitRequest("echo", {}, delay_seconds=300, concurrency=ConcurrencyLimit("later", 2))
    record = (await service.submit(ADMIN, request)).record
    assert record.status == JobStatus.SCHEDULED


@needs_rq3
def test_graphql_submits_a_limited_job_and_shows_the_status(client: TestClient) -> None:
    limit = {"key": "gql", "limit": 1}
    first = gql(client, SUBMIT, input={"task": "echo", "payload": {}, "concurrency": limit})
    second = gql(client, SUBMIT, input={"task": "echo", "payload": {}, "concurrency": limit})
    assert first["data"]["submitJob"]["job"]["status"] == "QUEUED"
    assert second["data"]["submitJob"]["job"] == {
        "id": second["data"]["submitJob"]["job"]["id"],
        "status": "RATE_LIMITED",
        "rawStatus": "rate_limited",
    }
    listed = gql(client, "{ jobs(filter: {status: RATE_LIMITED}) { edges { node { id } } } }")
    assert [e["node"]["id"] for e in listed["data"]["jobs"]["edges"]] == [
        second["data"]["submitJob"]["job"]["id"]
    ]
    counts = gql(client, QUEUES)["data"]["queues"][0]["counts"]
    assert {"status": "RATE_LIMITED", "count": 1} in counts
    assert {"status": "READY_TO_ENQUEUE", "count": 0} in counts
    rest = client.get(f"/job-status/{second['data']['submitJob']['job']['id']}").json()
    assert rest["status"] == "rate_limited"  # the REST route is unchanged: RQ's raw status


@needs_rq3
@pytest.mark.parametrize(
    ("concurrency", "extra", "field"),
    [
        ({"key": "has space", "limit": 1}, {}, "concurrency.key"),
        ({"key": "x" * 65, "limit": 1}, {}, "concurrency.key"),
        ({"key": "k", "limit": 0}, {}, "concurrency.limit"),
        ({"key": "k", "limit": 10_001}, {}, "concurrency.limit"),
        ({"key": "k", "limit": 1}, {"idempotencyKey": "once"}, "concurrency"),
    ],
)
def test_a_bad_limit_is_a_clear_input_error(
    client: TestClient,
    redis_client: redis.Redis,
    concurrency: dict[str, Any],
    extra: dict[str, Any],
    field: str,
) -> None:
    answer = gql(client, SUBMIT, input={"task": "echo", "payload": {}, "concurrency": concurrency, **extra})
    refusal = answer["data"]["submitJob"]
    assert (refusal["__typename"], refusal["field"], refusal["code"]) == (
        "InvalidInputError",
        field,
        ErrorCode.BAD_USER_INPUT.value,
    )
    assert redis_client.llen("rq:queue:default") == 0


@needs_rq2
def test_on_rq2_a_limit_is_refused_with_the_rq_it_needs(
    client: TestClient, redis_client: redis.Redis
) -> None:
    answer = gql(
        client, SUBMIT, input={"task": "echo", "payload": {}, "concurrency": {"key": "k", "limit": 1}}
    )
    refusal = answer["data"]["submitJob"]
    assert refusal["__typename"] == "InvalidInputError"
    assert (refusal["field"], refusal["code"]) == ("concurrency", ErrorCode.RQ_VERSION_REQUIRED.value)
    assert "needs RQ >= 3.0" in refusal["message"] and "this server runs RQ 2.12" in refusal["message"]
    assert redis_client.keys("rq:job:*") == []  # nothing written


@needs_rq2
async def test_on_rq2_the_service_refuses_before_writing(service: JobService) -> None:
    with pytest.raises(RqFeatureUnavailableError) as refused:
        await service.submit(ADMIN, limited("echo", {}))
    assert isinstance(refused.value, InvalidRequestError)
    assert code_of(refused.value) == ErrorCode.RQ_VERSION_REQUIRED


@needs_rq3
async def test_a_key_is_scoped_to_its_submitter(service: JobService) -> None:
    """RQ's limits are global: each principal's keys are its own (`<principal>:<key>` in RQ)."""
    request = limited("echo", {}, key="shared", limit=3)
    alice = prepare(request, service.registry, service.settings, owner="alice")
    anonymous = prepare(request, service.registry, service.settings, owner=None)
    assert alice.concurrency == ConcurrencyLimit("alice:shared", 3)
    assert anonymous.concurrency == ConcurrencyLimit("anonymous:shared", 3)
