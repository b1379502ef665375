"""The GraphQL API end to end: real app, real Redis, real RQ workers."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from gql_jobs.service.jobs import JobService
from tests.graphql_helpers import client_with, data, gql, job, submit, top_level_error

pytestmark = pytest.mark.integration

Drain = Callable[..., None]
JOB_ID = re.compile(r"^JOB-[0-9a-f-]{36}$")

SUBMIT_ERRORS = """
mutation Submit($input: SubmitJobInput!) {
  submitJob(input: $input) {
    __typename
    ... on Error { message }
    ... on UnknownTaskError { task }
    ... on InvalidPayloadError { fieldErrors { path message code } }
    ... on PayloadTooLargeError { limitBytes actualBytes }
    ... on JobNotFoundError { jobId }
    ... on InvalidInputError { field }
    ... on ServiceUnavailableError { retryAfterSeconds }
  }
}
"""

SUBMIT_MANY = """
mutation SubmitMany($inputs: [SubmitJobInput!]!) {
  submitJobs(inputs: $inputs) {
    __typename
    ... on SubmitJobSuccess { job { id status task } }
    ... on UnknownTaskError { task }
    ... on InvalidPayloadError { fieldErrors { path } }
  }
}
"""

CANCEL = """
mutation Cancel($id: ID!) {
  cancelJob(id: $id) {
    __typename
    ... on CancelJobSuccess { job { id status } }
    ... on InvalidJobStateError { jobId status }
    ... on JobNotFoundError { jobId }
  }
}
"""

REQUEUE = """
mutation Requeue($id: ID!) {
  requeueJob(id: $id) {
    __typename
    ... on RequeueJobSuccess { job { id status } }
    ... on InvalidJobStateError { jobId status }
  }
}
"""

DELETE = """
mutation Delete($id: ID!) {
  deleteJob(id: $id) {
    __typename
    ... on DeleteJobSuccess { jobId }
    ... on JobNotFoundError { jobId }
  }
}
"""


def submit_error(client: TestClient, **job_input: Any) -> dict[str, Any]:
    """Submit a job that must be refused; return the union member."""
    result: dict[str, Any] = data(client, SUBMIT_ERRORS, input=job_input)["submitJob"]
    assert result["__typename"] != "SubmitJobSuccess", result
    return result


# -- submitJob: success ------------------------------------------------------------------------------


def test_submit_job_returns_the_queued_job_with_every_field(client: TestClient) -> None:
    submitted = submit(client, "echo", payload={"x": 1}, tags=["a", "b"], description="hello")

    assert JOB_ID.match(submitted["id"])
    assert submitted["status"] == "QUEUED"
    assert submitted["task"] == "echo"
    assert submitted["payload"] == {"x": 1}
    assert submitted["tags"] == ["a", "b"]
    assert submitted["submittedAt"]
    assert submitted["queue"] == "default"
    assert submitted["description"] == "hello"


def test_submitted_job_finishes_with_its_result_after_a_worker_runs(client: TestClient, drain: Drain) -> None:
    submitted = submit(client, "echo", payload={"x": 1})

    drain()

    finished = job(client, submitted["id"])
    assert finished is not None
    assert finished["status"] == "FINISHED"
    assert finished["result"] == {"x": 1}


def test_task_with_an_input_model_returns_its_output_model_as_json(client: TestClient, drain: Drain) -> None:
    submitted = submit(client, "add", payload={"a": 2, "b": 3})

    drain()

    finished = job(client, submitted["id"])
    assert finished is not None
    assert finished["status"] == "FINISHED"
    assert finished["result"] == {"total": 5}


# -- submitJob: every error member -------------------------------------------------------------------


def test_unknown_task_is_an_unknown_task_error(client: TestClient) -> None:
    error = submit_error(client, task="no_such_task")

    assert error["__typename"] == "UnknownTaskError"
    assert error["task"] == "no_such_task"
    assert error["message"]


def test_payload_failing_the_input_model_is_an_invalid_payload_error_with_field_paths(
    client: TestClient,
) -> None:
    error = submit_error(client, task="add", payload={"a": 1, "b": -1})

    assert error["__typename"] == "InvalidPayloadError"
    assert [e["path"] for e in error["fieldErrors"]] == [["b"]]
    assert error["fieldErrors"][0]["code"] == "greater_than_equal"
    assert error["fieldErrors"][0]["message"]


def test_payload_over_the_size_limit_is_a_payload_too_large_error(client: TestClient) -> None:
    error = submit_error(client, task="echo", payload={"blob": "x" * 70_000})

    assert error["__typename"] == "PayloadTooLargeError"
    assert error["limitBytes"] == 65536
    assert error["actualBytes"] > 65536


def test_missing_dependency_is_a_job_not_found_error(client: TestClient) -> None:
    missing = "JOB-00000000-0000-4000-8000-000000000000"

    error = submit_error(client, task="echo", dependsOn=[missing])

    assert error["__typename"] == "JobNotFoundError"
    assert error["jobId"] == missing


def test_bad_queue_name_is_an_invalid_input_error_naming_the_field(client: TestClient) -> None:
    error = submit_error(client, task="echo", queue="a b")

    assert error["__typename"] == "InvalidInputError"
    assert error["field"] == "queue"


def test_refused_submission_leaves_no_job_behind(client: TestClient) -> None:
    submit_error(client, task="add", payload={"a": 1, "b": -1})

    listed = data(client, "{ jobs { totalCount edges { node { id } } } }")["jobs"]
    assert listed == {"totalCount": 0, "edges": []}


def test_submit_while_redis_is_down_is_a_service_unavailable_error() -> None:
    with client_with(redis_url="redis://127.0.0.1:1/0") as down:
        error = submit_error(down, task="echo")

    assert error["__typename"] == "ServiceUnavailableError"
    assert error["retryAfterSeconds"] >= 1


def test_query_while_redis_is_down_is_a_coded_top_level_error_without_traceback() -> None:
    with client_with(redis_url="redis://127.0.0.1:1/0") as down:
        response = down.post("/graphql", json={"query": '{ job(id: "JOB-x") { id } }'})

    assert response.status_code == 200
    error = top_level_error(response.json())
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert "Traceback" not in response.text
    assert "ConnectionError" not in response.text


# -- submitJob: options ------------------------------------------------------------------------------


def test_job_depending_on_a_waiting_job_is_deferred(client: TestClient) -> None:
    parent = submit(client, "echo")

    child = submit(client, "echo", dependsOn=[parent["id"]])

    assert child["status"] == "DEFERRED"


def test_deferred_job_runs_after_its_dependency_and_lists_it(client: TestClient, drain: Drain) -> None:
    parent = submit(client, "echo", payload={"step": 1})
    child = submit(client, "echo", payload={"step": 2}, dependsOn=[parent["id"]])

    drain()

    finished = job(client, child["id"])
    assert finished is not None
    assert finished["status"] == "FINISHED"
    assert finished["dependsOn"] == [{"id": parent["id"]}]


def test_delayed_job_is_scheduled(client: TestClient) -> None:
    submitted = submit(client, "echo", delaySeconds=3600)

    assert submitted["status"] == "SCHEDULED"


def test_retry_policy_is_accepted_and_sets_retries_left(client: TestClient) -> None:
    submitted = submit(client, "echo", retry={"max": 2, "intervals": [0]})

    assert submitted["retriesLeft"] == 2


def test_failing_task_is_failed_with_its_error(client: TestClient, drain: Drain) -> None:
    submitted = submit(client, "fail", payload={"message": "boom"})

    drain()

    failed = job(client, submitted["id"])
    assert failed is not None
    assert failed["status"] == "FAILED"
    assert failed["result"] is None
    assert failed["error"]["type"].endswith("TaskFailedError")
    assert failed["error"]["message"] == "boom"
    assert "Traceback" in failed["error"]["traceback"]


def test_queued_jobs_report_their_place_in_the_queue(client: TestClient) -> None:
    first, second = submit(client, "echo")["id"], submit(client, "echo")["id"]
    urgent = submit(client, "echo", atFront=True)["id"]

    query = "query($id: ID!) { job(id: $id) { position } }"
    places = [data(client, query, id=job_id)["job"]["position"] for job_id in (urgent, first, second)]

    assert places == [0, 1, 2]


# -- submitJobs --------------------------------------------------------------------------------------


def test_submit_jobs_answers_each_input_in_order_and_enqueues_the_valid_ones(client: TestClient) -> None:
    inputs = [
        {"task": "echo", "payload": {"n": 1}},
        {"task": "no_such_task"},
        {"task": "add", "payload": {"a": 1, "b": -1}},
        {"task": "add", "payload": {"a": 1, "b": 2}},
    ]

    results = data(client, SUBMIT_MANY, inputs=inputs)["submitJobs"]

    assert [r["__typename"] for r in results] == [
        "SubmitJobSuccess",
        "UnknownTaskError",
        "InvalidPayloadError",
        "SubmitJobSuccess",
    ]
    assert results[1]["task"] == "no_such_task"
    assert results[2]["fieldErrors"] == [{"path": ["b"]}]
    for accepted in (results[0], results[3]):
        stored = job(client, accepted["job"]["id"])
        assert stored is not None
        assert stored["status"] == "QUEUED"
    assert data(client, "{ jobs { totalCount } }")["jobs"]["totalCount"] == 2


def test_submit_jobs_over_the_batch_cap_is_a_batch_too_large_error(redis_client: redis.Redis) -> None:
    with client_with(max_batch_size=3) as capped:
        body = gql(capped, SUBMIT_MANY, inputs=[{"task": "echo"}] * 4)

    assert top_level_error(body)["extensions"]["code"] == "BATCH_TOO_LARGE"
    assert redis_client.exists("gql_jobs:listing:all") == 0


def test_submit_jobs_while_redis_is_down_answers_service_unavailable_for_every_input() -> None:
    with client_with(redis_url="redis://127.0.0.1:1/0") as down:
        results = data(down, SUBMIT_MANY, inputs=[{"task": "echo"}, {"task": "echo"}])["submitJobs"]

    assert [r["__typename"] for r in results] == ["ServiceUnavailableError"] * 2


# -- cancelJob, requeueJob, deleteJob ----------------------------------------------------------------


def test_cancel_queued_job_cancels_it(client: TestClient) -> None:
    submitted = submit(client, "echo")

    result = data(client, CANCEL, id=submitted["id"])["cancelJob"]

    assert result == {"__typename": "CancelJobSuccess", "job": {"id": submitted["id"], "status": "CANCELED"}}


def test_cancel_finished_job_is_an_invalid_job_state_error(client: TestClient, drain: Drain) -> None:
    submitted = submit(client, "echo")
    drain()

    result = data(client, CANCEL, id=submitted["id"])["cancelJob"]

    assert result == {"__typename": "InvalidJobStateError", "jobId": submitted["id"], "status": "finished"}


def test_cancel_unknown_job_is_a_job_not_found_error(client: TestClient) -> None:
    missing = "JOB-00000000-0000-4000-8000-000000000000"

    result = data(client, CANCEL, id=missing)["cancelJob"]

    assert result == {"__typename": "JobNotFoundError", "jobId": missing}


def test_requeue_failed_job_puts_it_back_on_its_queue(client: TestClient, drain: Drain) -> None:
    submitted = submit(client, "fail")
    drain()

    result = data(client, REQUEUE, id=submitted["id"])["requeueJob"]

    assert result == {"__typename": "RequeueJobSuccess", "job": {"id": submitted["id"], "status": "QUEUED"}}


def test_requeue_queued_job_is_an_invalid_job_state_error(client: TestClient) -> None:
    submitted = submit(client, "echo")

    result = data(client, REQUEUE, id=submitted["id"])["requeueJob"]

    assert result == {"__typename": "InvalidJobStateError", "jobId": submitted["id"], "status": "queued"}


def test_delete_job_removes_it(client: TestClient) -> None:
    submitted = submit(client, "echo")

    result = data(client, DELETE, id=submitted["id"])["deleteJob"]

    assert result == {"__typename": "DeleteJobSuccess", "jobId": submitted["id"]}
    assert job(client, submitted["id"]) is None


# -- job(id) -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_id", ["../x", "a" * 500, "JOB-*", "rq:job:x"], ids=["dots", "long", "glob", "key"]
)
def test_job_with_a_malformed_id_is_null(client: TestClient, bad_id: str) -> None:
    assert job(client, bad_id) is None


def test_job_with_an_unknown_id_is_null(client: TestClient) -> None:
    assert job(client, "JOB-00000000-0000-4000-8000-000000000000") is None


# -- tasks, queues, workers --------------------------------------------------------------------------


def test_tasks_lists_builtin_and_configured_tasks_with_input_schemas(client: TestClient) -> None:
    tasks = data(client, "{ tasks { name description inputSchema } }")["tasks"]

    by_name = {t["name"]: t for t in tasks}
    assert {"echo", "sleep", "fail", "heavy_compute", "add"} <= set(by_name)
    assert {"a", "b"} <= set(by_name["add"]["inputSchema"]["properties"])
    assert by_name["add"]["description"] == "Adds two numbers."


def test_queues_counts_jobs_per_queue_and_status(client: TestClient, drain: Drain) -> None:
    submit(client, "echo")
    submit(client, "echo")
    submit(client, "echo", queue="other")
    submit(client, "fail", queue="other")
    drain("other")

    queues = data(client, "{ queues { name queued started failed counts { status count } } }")["queues"]

    by_name = {q["name"]: q for q in queues}
    assert set(by_name) == {"default", "other"}
    assert (by_name["default"]["queued"], by_name["default"]["failed"]) == (2, 0)
    assert (by_name["other"]["queued"], by_name["other"]["failed"]) == (0, 1)
    other_counts = {c["status"]: c["count"] for c in by_name["other"]["counts"]}
    assert other_counts["FINISHED"] == 1
    assert other_counts["FAILED"] == 1


def test_workers_lists_a_running_worker_with_its_state_and_queues(
    client: TestClient, worker_process: Callable[..., subprocess.Popen[bytes]]
) -> None:
    process = worker_process("high", "default")

    workers = data(client, "{ workers { name state queues pid } }")["workers"]

    assert len(workers) == 1
    assert workers[0]["queues"] == ["high", "default"]
    assert workers[0]["state"]
    assert workers[0]["pid"] == process.pid


# -- REST and GraphQL share one store ----------------------------------------------------------------


def test_job_submitted_over_rest_is_readable_over_graphql_with_the_lesson_tags(client: TestClient) -> None:
    response = client.post("/submit-job", json={"task": "echo", "payload": {"x": 1}})
    assert response.status_code == 200
    job_id = response.json()["job_id"]

    found = job(client, job_id)

    assert found is not None
    assert found["tags"] == ["api", "v1"]
    assert found["payload"] == {"x": 1}
    assert found["status"] == "QUEUED"


def test_job_submitted_over_graphql_is_readable_over_rest(client: TestClient) -> None:
    submitted = submit(client, "echo", payload={"x": 1})

    response = client.get(f"/job-status/{submitted['id']}")

    assert response.status_code == 200
    body = response.json()
    assert body["job_id"] == submitted["id"]
    assert body["status"] == "queued"
    assert body["meta"]["payload"] == {"x": 1}


# -- error masking -----------------------------------------------------------------------------------


def test_unexpected_resolver_exception_is_masked(
    client: TestClient, service: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode() -> list[object]:
        raise RuntimeError("secret")

    monkeypatch.setattr(service, "tasks", explode)

    response = client.post("/graphql", json={"query": "{ tasks { name } }"})

    assert response.status_code == 200
    assert top_level_error(response.json())["message"] == "Unexpected error."
    assert "secret" not in response.text


def test_syntax_error_is_not_masked(client: TestClient) -> None:
    error = top_level_error(gql(client, "{ job( }"))

    assert error["message"].startswith("Syntax Error")


def test_unknown_field_error_is_not_masked(client: TestClient) -> None:
    error = top_level_error(gql(client, "{ jobz }"))

    assert "Cannot query field 'jobz'" in error["message"]
