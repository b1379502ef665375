"""Idempotent submission: retries return the first job; twins racing create exactly one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from fastapi.testclient import TestClient

from gql_jobs.app import create_app
from gql_jobs.auth import ANONYMOUS, Principal, Scope
from gql_jobs.domain import JobFilter, JobStatus, PageRequest, SubmitRequest
from gql_jobs.errors import IdempotencyConflictError, InvalidRequestError
from gql_jobs.service.jobs import JobService
from tests.auth_helpers import SUBMIT, Caller, api_keys_setting, bearer
from tests.conftest import make_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_client: redis.Redis) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(api_keys=api_keys_setting()))) as test_client:
        yield test_client


def test_a_retry_with_the_same_key_returns_the_first_job(client: TestClient) -> None:
    alice = Caller(client, "key-alice")
    request = {"task": "echo", "payload": {"n": 1}, "idempotencyKey": "order-42"}
    first = alice.gql(SUBMIT, input=request)["data"]["submitJob"]
    again = alice.gql(SUBMIT, input=request)["data"]["submitJob"]
    assert first["job"]["id"] == again["job"]["id"]
    assert (first["deduplicated"], again["deduplicated"]) == (False, True)


def test_the_same_key_with_another_payload_is_a_conflict(client: TestClient) -> None:
    alice = Caller(client, "key-alice")
    alice.gql(SUBMIT, input={"task": "echo", "payload": {"n": 1}, "idempotencyKey": "k"})
    other = alice.gql(SUBMIT, input={"task": "echo", "payload": {"n": 2}, "idempotencyKey": "k"})
    assert other["data"]["submitJob"]["__typename"] == "IdempotencyConflictError"


def test_rest_idempotency_key_header(client: TestClient) -> None:
    headers = {**bearer("key-alice"), "Idempotency-Key": "abc"}
    first = client.post("/submit-job", json={"task": "echo", "payload": {"n": 1}}, headers=headers)
    again = client.post("/submit-job", json={"task": "echo", "payload": {"n": 1}}, headers=headers)
    clash = client.post("/submit-job", json={"task": "echo", "payload": {"n": 2}}, headers=headers)
    assert first.json()["job_id"] == again.json()["job_id"]
    assert list(again.json()) == ["job_id", "status", "submitted_at"]
    assert clash.status_code == 409
    assert "idempotency key" in clash.json()["detail"]


def test_keys_are_scoped_per_principal(client: TestClient) -> None:
    request = {"task": "echo", "payload": {}, "idempotencyKey": "shared-name"}
    alices = Caller(client, "key-alice").gql(SUBMIT, input=request)["data"]["submitJob"]
    bobs = Caller(client, "key-bob").gql(SUBMIT, input=request)["data"]["submitJob"]
    assert alices["job"]["id"] != bobs["job"]["id"]
    assert not bobs["deduplicated"]


@pytest.mark.anyio
async def test_fifty_concurrent_identical_submissions_create_one_job(
    service: JobService, redis_client: redis.Redis
) -> None:
    """Fifty at once on one event loop: their WATCH loops race on fifty store threads."""
    caller = Principal("racer", frozenset({Scope.SUBMIT, Scope.READ}))
    request = SubmitRequest("echo", {"x": 1}, idempotency_key="race")
    outcomes = await asyncio.gather(*(service.submit(caller, request) for _ in range(50)))
    assert len(outcomes) == 50
    assert len({o.record.id for o in outcomes}) == 1
    assert sum(1 for o in outcomes if not o.deduplicated) == 1
    assert len((await service.list_jobs(ANONYMOUS, JobFilter(), PageRequest(first=100))).items) == 1
    assert redis_client.llen("rq:queue:default") == 1


def test_fifty_concurrent_http_submissions_create_one_job(
    client: TestClient, redis_client: redis.Redis
) -> None:
    headers = {**bearer("key-alice"), "Idempotency-Key": "http-race"}
    ids: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(50)

    def submit() -> None:
        start.wait()
        response = client.post("/submit-job", json={"task": "echo", "payload": {}}, headers=headers)
        with lock:
            ids.append(response.json()["job_id"])

    threads = [threading.Thread(target=submit) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ids) == 50
    assert len(set(ids)) == 1
    assert redis_client.llen("rq:queue:default") == 1


@pytest.mark.anyio
async def test_an_expired_original_lets_the_key_make_a_new_job(
    service: JobService, redis_client: redis.Redis
) -> None:
    request = SubmitRequest("echo", {}, idempotency_key="again")
    first = await service.submit(ANONYMOUS, request)
    redis_client.delete(f"rq:job:{first.record.id}")  # as RQ's result TTL would
    second = await service.submit(ANONYMOUS, request)
    assert second.record.id != first.record.id
    assert not second.deduplicated


@pytest.mark.anyio
async def test_conflict_raises_in_the_service(service: JobService, redis_client: redis.Redis) -> None:
    await service.submit(ANONYMOUS, SubmitRequest("echo", {"a": 1}, idempotency_key="k"))
    with pytest.raises(IdempotencyConflictError):
        await service.submit(ANONYMOUS, SubmitRequest("echo", {"a": 1}, queue="other", idempotency_key="k"))


@pytest.mark.anyio
async def test_idempotency_with_dependencies_is_refused_clearly(
    service: JobService, redis_client: redis.Redis
) -> None:
    parent = (await service.submit(ANONYMOUS, SubmitRequest("echo", {}))).record
    with pytest.raises(InvalidRequestError, match="dependsOn"):
        await service.submit(
            ANONYMOUS, SubmitRequest("echo", {}, depends_on=(parent.id,), idempotency_key="k")
        )


@pytest.mark.anyio
@pytest.mark.parametrize("when", ["delay", "at"])
async def test_scheduled_jobs_are_idempotent_on_every_rq(
    service: JobService, redis_client: redis.Redis, when: str
) -> None:
    """RQ 2 silently ignores `unique` for `enqueue_at`/`enqueue_in` (RQ 3 honours it): our key,
    not RQ's, makes scheduled submissions happen once, whichever RQ is installed."""
    at = datetime.now(UTC) + timedelta(hours=1)
    request = (
        SubmitRequest("echo", {}, delay_seconds=600, idempotency_key="later")
        if when == "delay"
        else SubmitRequest("echo", {}, scheduled_at=at, idempotency_key="later")
    )
    outcomes = await asyncio.gather(*(service.submit(ANONYMOUS, request) for _ in range(20)))
    assert len({o.record.id for o in outcomes}) == 1
    assert sum(1 for o in outcomes if not o.deduplicated) == 1
    assert {o.record.status for o in outcomes} == {JobStatus.SCHEDULED}
    assert redis_client.zcard("rq:scheduled:default") == 1
    assert redis_client.llen("rq:queue:default") == 0
