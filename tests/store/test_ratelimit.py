"""The per-principal submission rate limit (token bucket in Redis)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from gql_jobs.app import create_app
from tests.auth_helpers import SUBMIT, Caller, api_keys_setting, bearer
from tests.conftest import make_settings

pytestmark = pytest.mark.integration

SUBMIT_MANY = """mutation ($inputs: [SubmitJobInput!]!) {
  submitJobs(inputs: $inputs) { __typename ... on RateLimitedError { retryAfterSeconds } }
}"""


@pytest.fixture
def client(redis_client: redis.Redis) -> Iterator[TestClient]:
    settings = make_settings(api_keys=api_keys_setting(), rate_limit=0.5, rate_limit_burst=3)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_rest_answers_429_with_retry_after_past_the_burst(client: TestClient) -> None:
    codes = [
        client.post(
            "/submit-job", json={"task": "echo", "payload": {}}, headers=bearer("key-alice")
        ).status_code
        for _ in range(4)
    ]
    assert codes == [200, 200, 200, 429]
    refused = client.post("/submit-job", json={"task": "echo", "payload": {}}, headers=bearer("key-alice"))
    assert int(refused.headers["retry-after"]) >= 1
    assert "retry" in refused.json()["detail"]


def test_graphql_answers_rate_limited_error(client: TestClient) -> None:
    alice = Caller(client, "key-alice")
    results = [alice.gql(SUBMIT, input={"task": "echo"})["data"]["submitJob"] for _ in range(4)]
    assert [r["__typename"] for r in results] == ["SubmitJobSuccess"] * 3 + ["RateLimitedError"]
    assert 0 < results[-1]["retryAfterSeconds"] <= 2


def test_each_principal_has_its_own_bucket(client: TestClient) -> None:
    alice, bob = Caller(client, "key-alice"), Caller(client, "key-bob")
    for _ in range(3):
        alice.submit()
    assert alice.gql(SUBMIT, input={"task": "echo"})["data"]["submitJob"]["__typename"] == "RateLimitedError"
    assert bob.gql(SUBMIT, input={"task": "echo"})["data"]["submitJob"]["__typename"] == "SubmitJobSuccess"


def test_a_batch_takes_one_token_per_job_all_or_nothing(
    client: TestClient, redis_client: redis.Redis
) -> None:
    alice = Caller(client, "key-alice")
    two = alice.gql(SUBMIT_MANY, inputs=[{"task": "echo"}] * 2)["data"]["submitJobs"]
    assert [r["__typename"] for r in two] == ["SubmitJobSuccess"] * 2
    three = alice.gql(SUBMIT_MANY, inputs=[{"task": "echo"}] * 3)["data"]["submitJobs"]
    assert [r["__typename"] for r in three] == ["RateLimitedError"] * 3
    assert redis_client.llen("rq:queue:default") == 2


def test_no_limit_when_switched_off(redis_client: redis.Redis) -> None:
    with TestClient(create_app(make_settings(rate_limit=0))) as client:
        codes = {client.post("/submit-job", json={"task": "echo"}).status_code for _ in range(20)}
    assert codes == {200}
