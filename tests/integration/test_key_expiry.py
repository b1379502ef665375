"""Every key gql-jobs writes expires or is trimmed by itself (issue #13), tried with the attack.

The attack: one `submitJobs` of many jobs with unique tags and `resultTtl: 1`. Before, once its
jobs had expired, each tag's listing stream stayed forever (500 jobs x 20 tags: 10,000 keys,
44 MB). The README's "Keys gql-jobs writes" says what bounds each key; these tests hold every
key in Redis to it, after real submissions through the API and a real RQ worker.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from redis.exceptions import ConnectionError as RedisConnectionError
from rq import Queue

from gql_jobs.app import create_app
from gql_jobs.auth import Principal, Scope
from gql_jobs.constants import METRICS_TTL, STATS_TTL
from gql_jobs.domain import SubmitRequest
from gql_jobs.errors import ServiceUnavailableError
from gql_jobs.settings import Settings
from tests.auth_helpers import Caller, api_keys_setting, bearer
from tests.conftest import MakeService, make_settings

pytestmark = [pytest.mark.integration, pytest.mark.anyio]

RETENTION = 600
JOBS = 200
TAGS = 20

SUBMIT_MANY = """mutation ($inputs: [SubmitJobInput!]!) {
  submitJobs(inputs: $inputs) { __typename ... on SubmitJobSuccess { job { id } } ... on Error { message } }
}"""
SUBMIT_ONE = """mutation ($tags: [String!]) {
  submitJob(input: {task: "echo", tags: $tags}) { __typename ... on Error { message } }
}"""

#: RQ's keys that carry no TTL, each bounded by a count: the set of queues (bounded by
#: GQL_JOBS_MAX_QUEUES) and a queue's registries of jobs scored by their expiry, which RQ sweeps.
RQ_KEYS_WITHOUT_TTL = re.compile(rb"rq:queues|rq:(finished|failed|deferred|scheduled|canceled|wip):[^:]+")


def ttl_bounds(settings: Settings) -> dict[str, int]:
    """Each family of our keys, and the longest TTL (seconds) it may carry: the README's table."""
    return {
        "gql_jobs:listing:": settings.index_retention,
        "gql_jobs:metrics:": METRICS_TTL,
        "gql_jobs:idempotency:": settings.idempotency_ttl,
        "gql_jobs:rate:": math.ceil(settings.rate_limit_burst / settings.rate_limit) + 1,
        "gql_jobs:persisted:": settings.persisted_query_ttl,
        "gql_jobs:stats:": STATS_TTL,
    }


def unbounded_keys(connection: redis.Redis, settings: Settings, match: str = "*") -> list[tuple[bytes, int]]:
    """Keys (with their TTL in ms) that break the bounds: ours without a TTL, or with a longer one
    than their family's, or of no known family; RQ's without a TTL other than the known ones."""
    keys = list(connection.scan_iter(match, count=1000))
    with connection.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.pttl(key)
        ttls: list[int] = pipe.execute()
    bounds = ttl_bounds(settings)
    wrong = []
    for key, ttl in zip(keys, ttls, strict=True):
        name = key.decode()
        if name.startswith("gql_jobs:"):
            limit = next((s for prefix, s in bounds.items() if name.startswith(prefix)), None)
            if limit is None or not 0 < ttl <= limit * 1000:
                wrong.append((key, ttl))
        elif ttl == -1 and not RQ_KEYS_WITHOUT_TTL.fullmatch(key):
            wrong.append((key, ttl))
    return wrong


@pytest.fixture
def settings(redis_client: redis.Redis) -> Settings:
    return make_settings(
        index_retention=RETENTION,
        max_tags=TAGS,
        api_keys=api_keys_setting(),  # so jobs have an owner, and owner streams exist
        rate_limit=1000,
        rate_limit_burst=1000,  # so rate-limit buckets exist
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def unique_tags() -> list[str]:
    return [uuid.uuid4().hex for _ in range(TAGS)]


def test_a_batch_of_unique_tags_leaves_no_key_without_a_bound(
    client: TestClient, settings: Settings, redis_client: redis.Redis, drain: Callable[..., None]
) -> None:
    alice = Caller(client, "key-alice")
    first = alice.submit("echo", {})
    inputs = [{"task": "echo", "resultTtl": 1, "tags": unique_tags()} for _ in range(JOBS)]
    inputs += [{"task": "echo", "resultTtl": 1, "idempotencyKey": f"key-{i}"} for i in range(3)]
    inputs += [{"task": "echo", "resultTtl": 1, "dependsOn": [first], "tags": unique_tags()}]
    inputs += [{"task": "fail", "failureTtl": 1, "queue": "other", "tags": unique_tags()}]
    outcomes = alice.gql(SUBMIT_MANY, inputs=inputs)["data"]["submitJobs"]
    assert {o["__typename"] for o in outcomes} == {"SubmitJobSuccess"}, outcomes[:3]
    rest = client.post("/submit-job", json={"task": "echo", "payload": {}}, headers=bearer("key-alice"))
    assert rest.status_code == 200, rest.text

    persisted = {"version": 1, "sha256Hash": hashlib.sha256(SUBMIT_ONE.encode()).hexdigest()}
    apq = {"query": SUBMIT_ONE, "extensions": {"persistedQuery": persisted}}  # an automatic persisted query
    assert client.post("/graphql", json=apq, headers=bearer("key-alice")).status_code == 200

    # The rate-limit bucket lives a refill time + 1 s (2 s here): look before the worker runs (on a
    # busy machine the drain took longer, and the bucket was gone).
    assert redis_client.exists("gql_jobs:rate:alice") == 1
    drain("default", "other")
    assert client.get("/metrics", headers=bearer("key-root")).status_code == 200  # a scrape, as an admin

    tag_streams = list(redis_client.scan_iter("gql_jobs:listing:tag:*", count=1000))
    assert len(tag_streams) == (JOBS + 2) * TAGS + 2  # the unique tags, and REST's two
    assert redis_client.exists("gql_jobs:metrics:job_outcomes", "gql_jobs:metrics:job_durations") == 2
    assert redis_client.exists("gql_jobs:listing:owner:alice") == 1
    assert list(redis_client.scan_iter("gql_jobs:idempotency:*")) != []
    assert list(redis_client.scan_iter("gql_jobs:persisted:*")) != []
    assert list(redis_client.scan_iter("gql_jobs:stats:*")) != []  # the job history's minutes
    assert unbounded_keys(redis_client, settings) == []


def test_the_default_bound_refuses_the_attacks_twenty_tags(redis_client: redis.Redis) -> None:
    with TestClient(create_app(make_settings())) as client:
        inputs = [{"task": "echo", "tags": unique_tags()}, {"task": "echo", "tags": unique_tags()[:10]}]
        outcomes = client.post("/graphql", json={"query": SUBMIT_MANY, "variables": {"inputs": inputs}})
        single = client.post(
            "/graphql", json={"query": SUBMIT_ONE, "variables": {"tags": unique_tags()[:11]}}
        )
    refused, accepted = outcomes.json()["data"]["submitJobs"]
    assert refused == {"__typename": "InvalidInputError", "message": "tags: at most 10 tags"}
    assert single.json()["data"]["submitJob"] == refused
    assert accepted["__typename"] == "SubmitJobSuccess"
    assert len(list(redis_client.scan_iter("gql_jobs:listing:tag:*"))) == 10


async def test_a_dependent_job_is_stored_with_its_owner_in_rqs_own_write(
    make_service: MakeService, settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing of the job is written before RQ writes it: a failure then leaves no job hash
    (the owner field used to be written first, as a hash of its own with no TTL)."""
    service = make_service(settings)
    alice = Principal("alice", frozenset({Scope.SUBMIT, Scope.READ}))
    first = (await service.submit(alice, SubmitRequest("echo", {}))).record
    dependent = (await service.submit(alice, SubmitRequest("echo", {}, depends_on=(first.id,)))).record
    assert redis_client.hget(f"rq:job:{dependent.id}", "gql_jobs_owner") == b"alice"

    def lose_redis(*args: object, **kwargs: object) -> None:
        raise RedisConnectionError("Redis went away")

    monkeypatch.setattr(Queue, "enqueue_job", lose_redis)
    before = set(redis_client.scan_iter("rq:job:*"))
    with pytest.raises(ServiceUnavailableError):
        await service.submit(alice, SubmitRequest("echo", {}, depends_on=(first.id,)))
    assert set(redis_client.scan_iter("rq:job:*")) == before
    assert unbounded_keys(redis_client, settings, "gql_jobs:*") == []  # (RQ's waiting jobs have no TTL)
