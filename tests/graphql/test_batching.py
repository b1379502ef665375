"""Batched requests (a JSON array of operations, as Apollo's BatchHttpLink sends): off unless
`GQL_JOBS_MAX_BATCH_OPERATIONS` is set, bounded in size, each operation checked on its own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from tests.graphql_helpers import client_with

TYPENAME = {"query": "{ __typename }"}
SUBMIT = {"query": 'mutation { submitJob(input: {task: "echo", payload: {}}) { __typename } }'}


@pytest.fixture
def batching(redis_client: redis.Redis) -> Iterator[TestClient]:
    with client_with(max_batch_operations=3) as client:
        yield client


def codes(body: Any) -> list[str]:
    return [e["extensions"]["code"] for e in body["errors"]]


def test_a_batch_is_refused_clearly_while_batching_is_off(client: TestClient) -> None:
    response = client.post("/graphql", json=[TYPENAME, TYPENAME])
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert codes(response.json()) == ["BATCHING_DISABLED"]
    assert "GQL_JOBS_MAX_BATCH_OPERATIONS" in response.json()["errors"][0]["message"]


def test_a_batch_answers_each_operation_in_order(batching: TestClient) -> None:
    response = batching.post("/graphql", json=[TYPENAME, {"query": "{ tasks { name } }"}, SUBMIT])
    assert response.status_code == 200
    first, second, third = response.json()
    assert first == {"data": {"__typename": "Query"}}
    assert {"name": "echo"} in second["data"]["tasks"]
    assert third == {"data": {"submitJob": {"__typename": "SubmitJobSuccess"}}}


def test_each_operation_of_a_batch_is_checked_against_the_limits(batching: TestClient) -> None:
    deep = {"query": "{ job(id: 1) " + "{ dependsOn " * 11 + "{ id }" + " }" * 11 + " }"}
    first, second = batching.post("/graphql", json=[deep, TYPENAME]).json()
    assert codes(first) == ["QUERY_TOO_DEEP"]
    assert second == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("size", [0, 4])
def test_a_batch_holds_one_to_the_maximum_operations(batching: TestClient, size: int) -> None:
    response = batching.post("/graphql", json=[TYPENAME] * size)
    assert response.status_code == 400
    assert codes(response.json()) == ["TOO_MANY_OPERATIONS"]


@pytest.mark.parametrize(
    "member", [1, "query", None, {"query": 1}, {"query": "{ __typename }", "variables": []}]
)
def test_a_malformed_member_is_a_400_not_a_server_error(batching: TestClient, member: object) -> None:
    response = batching.post("/graphql", json=[TYPENAME, member])
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_REQUEST"]


def test_a_subscription_in_a_batch_is_refused(batching: TestClient) -> None:
    subscription = {"query": 'subscription { jobUpdates(id: "JOB-x") { id } }'}
    response = batching.post("/graphql", json=[TYPENAME, subscription])
    assert response.status_code == 400
    assert codes(response.json()) == ["STREAMING_REQUIRED"]


def test_a_batch_cannot_stream(batching: TestClient) -> None:
    response = batching.post("/graphql", json=[TYPENAME], headers={"accept": "text/event-stream"})
    assert response.status_code == 400
    assert codes(response.json()) == ["BAD_REQUEST"]
