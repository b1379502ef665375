"""Operating jobs over GraphQL (issue #17): filters, bulk actions, attempts, queue and worker control.

Real app, real Redis, real RQ workers (burst in-process, or `gql-jobs worker` subprocesses)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from gql_jobs.app import create_app
from tests.auth_helpers import Caller, api_keys_setting, bearer
from tests.conftest import make_settings, wait_for
from tests.graphql_helpers import data, submit

pytestmark = pytest.mark.integration

Drain = Callable[..., None]

BULK = """
mutation Bulk($filter: JobFilter!, $after: String) {
  cancelJobs(filter: $filter, after: $after) { ...Outcome }
}
fragment Outcome on BulkResult {
  __typename
  ... on BulkActionResult { matched acted actedIds truncated cursor skipped { id reason status message } }
  ... on Error { message }
  ... on InvalidInputError { field }
}
"""

LIST = """
query List($filter: JobFilter, $order: JobOrder!, $first: Int, $after: String) {
  jobs(filter: $filter, order: $order, first: $first, after: $after) {
    edges { node { id status } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def _ids(client: TestClient, **variables: Any) -> list[str]:
    page = data(client, LIST, **variables)["jobs"]
    return [edge["node"]["id"] for edge in page["edges"]]


def test_cancel_jobs_by_filter_then_by_ids_and_list_them_oldest_first(
    client: TestClient, drain: Drain
) -> None:
    done = submit(client, tags=["ops"])["id"]
    drain()
    waiting = [submit(client, tags=["ops"])["id"] for _ in range(3)]

    result = data(client, BULK, filter={"tags": ["ops", "other"]})["cancelJobs"]
    assert result["__typename"] == "BulkActionResult"
    assert (result["matched"], result["acted"], result["truncated"], result["skipped"]) == (3, 3, False, [])
    assert sorted(result["actedIds"]) == sorted(waiting)

    again = data(client, BULK, filter={"ids": [done, waiting[0]]})["cancelJobs"]
    assert again["acted"] == 0
    assert [(s["id"], s["reason"], s["status"]) for s in again["skipped"]] == [
        (done, "INVALID_STATE", "FINISHED"),
        (waiting[0], "INVALID_STATE", "CANCELED"),
    ]
    assert _ids(client, filter={"status": "CANCELED"}, order="OLDEST_FIRST") == waiting


def test_a_bulk_action_over_its_bound_is_an_invalid_input_error(client: TestClient) -> None:
    too_many = [f"JOB-{i}" for i in range(1001)]
    result = data(client, BULK, filter={"ids": too_many})["cancelJobs"]
    assert (result["__typename"], result["field"]) == ("InvalidInputError", "ids")


ATTEMPTS = """
query Attempts($id: ID!) {
  job(id: $id) {
    status result error { message }
    attempts {
      outcome returnValue workerName startedAt endedAt durationSeconds error { type message traceback }
    }
  }
}
"""


def _flaky_job_runs_three_times(client: TestClient, run: Callable[[], object]) -> dict[str, Any]:
    job_id = submit(client, "flaky", payload={"failures": 2}, retry={"max": 2})["id"]
    run()
    wait_for(lambda: data(client, ATTEMPTS, id=job_id)["job"]["status"] == "FINISHED")
    found: dict[str, Any] = data(client, ATTEMPTS, id=job_id)["job"]
    return found


def _assert_three_attempts_in_order(found: dict[str, Any]) -> None:
    attempts = found["attempts"]
    assert [a["outcome"] for a in attempts] == ["RETRIED", "RETRIED", "SUCCESSFUL"]
    assert [a["error"]["message"] if a["error"] else None for a in attempts] == [
        "try 1 failed",
        "try 2 failed",
        None,
    ]
    assert attempts[0]["error"]["type"] == "RuntimeError"
    assert "Traceback" in attempts[0]["error"]["traceback"]
    assert attempts[2]["returnValue"] == 3
    assert all(a["workerName"] for a in attempts)
    assert (found["result"], found["error"]) == (3, None)  # the job itself reads as before


def test_attempts_of_a_job_retried_by_a_real_worker_say_why_each_try_failed(
    client: TestClient, worker_process: Callable[..., subprocess.Popen[bytes]]
) -> None:
    found = _flaky_job_runs_three_times(client, lambda: worker_process("default"))
    _assert_three_attempts_in_order(found)
    assert all(a["startedAt"] and a["endedAt"] and a["durationSeconds"] >= 0 for a in found["attempts"])


def test_attempts_with_an_in_process_burst_worker(client: TestClient, drain: Drain) -> None:
    _assert_three_attempts_in_order(_flaky_job_runs_three_times(client, drain))


def test_attempts_of_a_page_are_one_read(client: TestClient, drain: Drain, redis_client: redis.Redis) -> None:
    for _ in range(5):
        submit(client, "fail", tags=["attempts"])
    drain()
    before = int(redis_client.info("commandstats").get("cmdstat_xrange", {}).get("calls", 0))
    page = data(client, '{ jobs(filter: {tag: "attempts"}) { edges { node { attempts { outcome } } } } }')
    after = int(redis_client.info("commandstats").get("cmdstat_xrange", {}).get("calls", 0))
    assert [[a["outcome"] for a in e["node"]["attempts"]] for e in page["jobs"]["edges"]] == [["FAILED"]] * 5
    assert after - before == 5  # one XRANGE per job, all in one pipeline (the page's own read is XREVRANGE)


CONTROL = """
mutation Suspend { suspendWorkers { ...Suspension } }
mutation Resume { resumeWorkers { ...Suspension } }
mutation Empty($queue: String!) {
  emptyQueue(queue: $queue) {
    __typename
    ... on EmptyQueueSuccess { queue deleted }
    ... on Error { message }
    ... on InvalidInputError { field }
    ... on UnauthorizedError { requiredScope }
  }
}
fragment Suspension on SuspensionResult {
  __typename
  ... on WorkersSuspension { suspended }
  ... on UnauthorizedError { requiredScope }
}
"""


def _control(client: TestClient, operation: str, **variables: Any) -> dict[str, Any]:
    response = client.post(
        "/graphql", json={"query": CONTROL, "operationName": operation, "variables": variables}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    result: dict[str, Any] = next(iter(body["data"].values()))
    return result


def test_a_burst_worker_takes_no_job_while_workers_are_suspended(client: TestClient, drain: Drain) -> None:
    assert _control(client, "Suspend") == {"__typename": "WorkersSuspension", "suspended": True}
    assert data(client, "{ workersSuspended }")["workersSuspended"] is True
    job_id = submit(client)["id"]
    drain()  # RQ: a burst worker that finds workers suspended exits without taking a job
    assert data(client, ATTEMPTS, id=job_id)["job"]["status"] == "QUEUED"

    assert _control(client, "Resume") == {"__typename": "WorkersSuspension", "suspended": False}
    assert data(client, "{ workersSuspended }")["workersSuspended"] is False
    drain()
    assert data(client, ATTEMPTS, id=job_id)["job"]["status"] == "FINISHED"


def test_a_running_worker_shows_suspended_and_resumes(
    client: TestClient, worker_process: Callable[..., subprocess.Popen[bytes]]
) -> None:
    _control(client, "Suspend")
    worker_process("default")
    wait_for(lambda: [w["state"] for w in data(client, "{ workers { state } }")["workers"]] == ["suspended"])
    job_id = submit(client)["id"]
    assert data(client, ATTEMPTS, id=job_id)["job"]["status"] == "QUEUED"  # it is suspended: it takes none
    _control(client, "Resume")
    wait_for(lambda: data(client, ATTEMPTS, id=job_id)["job"]["status"] == "FINISHED")
    worker = data(client, "{ workers { state successfulJobCount failedJobCount lastHeartbeat } }")["workers"][
        0
    ]
    assert worker["successfulJobCount"] == 1 and worker["failedJobCount"] == 0 and worker["lastHeartbeat"]


def test_empty_queue_deletes_its_waiting_jobs_and_listings_drop_them(client: TestClient) -> None:
    dropped = [submit(client, queue="drop")["id"] for _ in range(3)]
    kept = submit(client)["id"]
    assert _control(client, "Empty", queue="drop") == {
        "__typename": "EmptyQueueSuccess",
        "queue": "drop",
        "deleted": 3,
    }
    assert _ids(client, filter={"queue": "drop"}, order="NEWEST_FIRST") == []
    assert all(data(client, ATTEMPTS, id=job_id)["job"] is None for job_id in dropped)
    assert _ids(client, order="NEWEST_FIRST") == [kept]
    unknown = _control(client, "Empty", queue="no-such-queue")
    assert (unknown["__typename"], unknown["field"]) == ("InvalidInputError", "queue")


def test_queue_and_worker_control_is_for_admins_only() -> None:
    with TestClient(create_app(make_settings(api_keys=api_keys_setting()))) as test_client:
        tenant = Caller(test_client, "key-alice")
        for operation, variables in (("Suspend", {}), ("Resume", {}), ("Empty", {"queue": "default"})):
            body = tenant.client.post(
                "/graphql",
                json={"query": CONTROL, "operationName": operation, "variables": variables},
                headers=bearer(tenant.key),
            ).json()
            result = next(iter(body["data"].values()))
            assert (result["__typename"], result["requiredScope"]) == ("UnauthorizedError", "admin"), (
                operation
            )
        assert tenant.gql("{ workersSuspended }")["data"]["workersSuspended"] is False


def test_a_time_range_without_a_time_zone_is_a_coded_error_and_with_one_it_bounds_the_page(
    client: TestClient,
) -> None:
    job_id = submit(client)["id"]
    body = client.post(
        "/graphql",
        json={
            "query": LIST,
            "variables": {"filter": {"submittedAfter": "2026-01-01T00:00:00"}, "order": "NEWEST_FIRST"},
        },
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "submittedAfter" in body["errors"][0]["message"]
    everything = {"submittedAfter": "2000-01-01T00:00:00Z", "submittedBefore": "2100-01-01T00:00:00Z"}
    assert _ids(client, filter=everything, order="OLDEST_FIRST") == [job_id]
    assert _ids(client, filter={"submittedBefore": "2000-01-01T00:00:00+02:00"}, order="NEWEST_FIRST") == []
