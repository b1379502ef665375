"""The bound on distinct queues (`gql_jobs.store.queue_quota`): an allow-list, or `max_queues` (issue #13).

RQ never forgets a queue (`rq:queues`), and each is a `/metrics` label value: a client naming a
new queue per job must be refused, on every path, without costing known queues a round trip.
"""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
import redis
from fastapi.testclient import TestClient

from gql_jobs.app import create_app
from gql_jobs.store.queue_quota import KNOWN_SECONDS, QueueQuota
from tests.conftest import make_settings

SUBMIT_MANY = """mutation ($inputs: [SubmitJobInput!]!) {
  submitJobs(inputs: $inputs) {
    __typename ... on SubmitJobSuccess { job { queue } } ... on InvalidInputError { field message }
  }
}"""

SUBMIT_ONE = """mutation ($queue: String) {
  submitJob(input: {task: "echo", queue: $queue}) { __typename ... on InvalidInputError { field message } }
}"""


def submit_many(client: TestClient, *queues: str | None) -> list[dict[str, Any]]:
    """Submit one echo job per queue (`None`: no queue named) in one `submitJobs`."""
    inputs = [{"task": "echo"} if q is None else {"task": "echo", "queue": q} for q in queues]
    response = client.post("/graphql", json={"query": SUBMIT_MANY, "variables": {"inputs": inputs}})
    assert response.status_code == 200, response.text
    outcomes: list[dict[str, Any]] = response.json()["data"]["submitJobs"]
    return outcomes


def accepted(outcomes: list[dict[str, Any]]) -> list[str | None]:
    """Each outcome's queue, `None` for a refusal."""
    return [o["job"]["queue"] if o["__typename"] == "SubmitJobSuccess" else None for o in outcomes]


def known_queues(connection: redis.Redis) -> set[str]:
    return {key.decode().removeprefix("rq:queue:") for key in connection.smembers("rq:queues")}  # type: ignore[union-attr]


def script_calls(connection: redis.Redis) -> int:
    stats: dict[str, dict[str, int]] = connection.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


@pytest.mark.integration
def test_an_allow_list_refuses_any_other_queue_and_names_the_allowed_ones(redis_client: redis.Redis) -> None:
    with TestClient(create_app(make_settings(queues=["high", "low"]))) as client:
        outcomes = submit_many(client, "high", "elsewhere", None)
        single = client.post("/graphql", json={"query": SUBMIT_ONE, "variables": {"queue": "nope"}})
        before = script_calls(redis_client)
        rest = client.post("/submit-job", json={"task": "echo", "payload": {}})
        assert script_calls(redis_client) == before  # nothing is looked up with an allow-list

    assert accepted(outcomes) == ["high", None, "default"]
    assert outcomes[1] == {
        "__typename": "InvalidInputError",
        "field": "queue",
        "message": "queue: must be one of default, high, low",
    }
    assert single.json()["data"]["submitJob"] == {
        "__typename": "InvalidInputError",
        "field": "queue",
        "message": "queue: must be one of default, high, low",
    }
    assert rest.status_code == 200
    assert known_queues(redis_client) == {"high", "default"}
    assert not redis_client.exists("gql_jobs:listing:queue:elsewhere")


@pytest.mark.integration
def test_new_queues_stop_at_max_queues_even_across_api_processes(redis_client: redis.Redis) -> None:
    settings = make_settings(max_queues=3)
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        first = submit_many(one, "q0", "q1")
        second = submit_many(two, "q1", "q2", "q3", "q4")  # two processes, one bound
        third = submit_many(one, "q3", "q0", None)  # `one` has not seen q3, and knows q0
        rest = one.post("/submit-job", json={"task": "echo", "payload": {}})  # the default queue, always

    assert accepted(first) == ["q0", "q1"]
    assert accepted(second) == ["q1", "q2", None, None]
    assert second[2] == {
        "__typename": "InvalidInputError",
        "field": "queue",
        "message": "queue: is not in use, and no more than 3 queues may be (see `queues`)",
    }
    assert accepted(third) == [None, "q0", "default"]
    assert rest.status_code == 200
    assert known_queues(redis_client) == {"q0", "q1", "q2", "default"}
    assert redis_client.llen("rq:queue:q3") == 0


@pytest.mark.integration
def test_only_a_queue_the_process_has_not_seen_costs_a_round_trip(redis_client: redis.Redis) -> None:
    with TestClient(create_app(make_settings(max_queues=10))) as client:
        submit_many(client, "warm-up")  # loads the script
        before = script_calls(redis_client)
        submit_many(client, None, None, "warm-up")
        client.post("/submit-job", json={"task": "echo", "payload": {}})
        assert script_calls(redis_client) == before
        submit_many(client, "new-1", "new-2", "new-1")
        assert script_calls(redis_client) == before + 1  # one for the batch
        submit_many(client, "new-2")
        assert script_calls(redis_client) == before + 1


@pytest.mark.anyio
async def test_a_process_forgets_the_queues_it_admitted_after_a_while() -> None:
    """So a queue an operator deleted counts against the bound again (no sleeping: a fake clock)."""
    connection = fakeredis.FakeAsyncRedis()
    now = [1000.0]
    quota = QueueQuota(connection, make_settings(max_queues=1), clock=lambda: now[0])
    assert quota.to_check(["a", "default"]) == ["a"]
    assert await quota.admit(["a"]) == set()
    assert quota.to_check(["a"]) == []
    await connection.srem("rq:queues", "rq:queue:a")
    await connection.sadd("rq:queues", "rq:queue:b")  # someone else took the last place meanwhile
    now[0] += KNOWN_SECONDS
    assert quota.to_check(["a"]) == ["a"]
    assert await quota.admit(["a"]) == {"a"}
