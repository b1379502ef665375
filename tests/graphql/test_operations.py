"""Operating jobs over GraphQL (issue #17): filters, bulk actions, attempts, queue and worker control.

Real app, real Redis, real RQ workers (burst in-process, or `gql-jobs worker` subprocesses)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from tests.conftest import wait_for
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
