"""`gql_jobs.client` against a real server and worker (`gql-jobs dev`, tests/client/conftest.py):
every method, over both transports it uses (HTTP for queries and mutations, a WebSocket for
`follow`, `events` and `wait`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from gql_jobs.client import (
    AsyncGqlJobsClient,
    BatchSubmitError,
    GqlJobsClient,
    InvalidJobStateError,
    InvalidPayloadError,
    JobFailedError,
    JobNotFoundError,
    JobStatus,
    ServerUnreachableError,
    UnauthorizedError,
    UnknownTaskError,
    job_input,
)
from gql_jobs.dev import free_port
from gql_jobs.errors import ErrorCode
from tests.client.conftest import Server
from tests.server_helpers import running_server

pytestmark = pytest.mark.integration


@pytest.fixture
def client(server: Server) -> Iterator[GqlJobsClient]:
    with GqlJobsClient(server.url, api_key=server.key) as client:
        yield client


def test_submit_then_wait_returns_the_result(client: GqlJobsClient, tag: str) -> None:
    job = client.submit("add", {"a": 2, "b": 3}, tags=[tag])
    assert job.status is JobStatus.QUEUED
    assert job.tags == [tag]
    assert client.wait(job.id, timeout=60) == {"total": 5}
    assert client.get(job.id).status is JobStatus.FINISHED


def test_wait_raises_the_failing_jobs_error(client: GqlJobsClient) -> None:
    job = client.submit("fail", {"message": "boom"})
    with pytest.raises(JobFailedError) as failed:
        client.wait(job.id, timeout=60)
    assert failed.value.job.status is JobStatus.FAILED
    assert failed.value.error_type is not None and failed.value.error_type.endswith("TaskFailedError")
    assert failed.value.traceback is not None and "boom" in failed.value.traceback
    assert "boom" in str(failed.value)


def test_wait_gives_up_after_its_timeout(client: GqlJobsClient, tmp_path: Path) -> None:
    held = client.submit("gated_steps", {"gate": str(tmp_path), "steps": 1})  # never released
    with pytest.raises(TimeoutError):
        client.wait(held.id, timeout=0.5)
    client.cancel(held.id)


def test_follow_sees_each_progress_step_to_the_end(client: GqlJobsClient, tmp_path: Path) -> None:
    job = client.submit("gated_steps", {"gate": str(tmp_path), "steps": 3})
    (tmp_path / "1").touch()
    steps_seen = []
    last = None
    for update in client.follow(job.id):
        last = update
        if update.progress is not None and update.progress.current not in steps_seen:
            steps_seen.append(update.progress.current)
            (tmp_path / str(int(update.progress.current) + 1)).touch()  # release the next step
    assert steps_seen == [1, 2, 3]
    assert last is not None and last.status is JobStatus.FINISHED
    assert last.result == {"steps": 3}
    assert last.progress is not None and last.progress.message == "step 3 of 3"


def test_jobs_iterates_across_pages(client: GqlJobsClient, tag: str) -> None:
    submitted = [client.submit("add", {"a": i, "b": 0}, tags=[tag]).id for i in range(5)]
    page, cursor, total = client.list_page(job_filter_for(tag), first=2)
    assert len(page) == 2 and cursor is not None and total == 5
    listed = [job.id for job in client.jobs(tag=tag, page_size=2)]
    assert listed == submitted[::-1]  # newest first, all five, over three pages
    assert [job.id for job in client.jobs(tag=tag, page_size=2, limit=3)] == submitted[::-1][:3]


def job_filter_for(tag: str) -> Any:
    from gql_jobs.client import JobFilter

    return JobFilter(tag=tag)


def test_submit_many_gives_each_job_a_key_and_reports_refusals(client: GqlJobsClient, tag: str) -> None:
    jobs = client.submit_many([job_input("add", {"a": 1, "b": 1}, tags=[tag]) for _ in range(3)])
    assert len({job.id for job in jobs}) == 3
    with pytest.raises(BatchSubmitError) as refused:
        client.submit_many([job_input("add", {"a": 1, "b": 1}), job_input("no_such_task")])
    first, second = refused.value.results
    assert not isinstance(first, Exception) and first.task == "add"
    assert isinstance(second, UnknownTaskError) and second.task == "no_such_task"


def test_union_members_are_raised_as_exceptions_of_the_same_names(client: GqlJobsClient) -> None:
    with pytest.raises(UnknownTaskError) as unknown:
        client.submit("no_such_task")
    assert unknown.value.task == "no_such_task"
    assert unknown.value.code is ErrorCode.BAD_USER_INPUT  # the member's `code`
    with pytest.raises(InvalidPayloadError) as invalid:
        client.submit("add", {"a": "x", "b": -1})
    assert [error.path for error in invalid.value.field_errors] == [("a",), ("b",)]
    assert "a: " in str(invalid.value) and "b: " in str(invalid.value)
    with pytest.raises(JobNotFoundError) as missing:
        client.get("JOB-00000000-0000-0000-0000-000000000000")
    assert missing.value.code is ErrorCode.NOT_FOUND


def test_cancel_requeue_and_delete(client: GqlJobsClient) -> None:
    waiting = client.submit("add", {"a": 1, "b": 1}, delay_seconds=3600)
    assert waiting.status is JobStatus.SCHEDULED
    assert client.cancel(waiting.id).status is JobStatus.CANCELED
    with pytest.raises(InvalidJobStateError) as refused:
        client.cancel(waiting.id)
    assert refused.value.job_id == waiting.id
    assert refused.value.code is ErrorCode.INVALID_JOB_STATE
    assert client.requeue(waiting.id).status is JobStatus.QUEUED
    client.wait(waiting.id, timeout=60)
    assert client.delete(waiting.id) == waiting.id
    with pytest.raises(JobNotFoundError):
        client.get(waiting.id)


def test_tasks_queues_and_workers(client: GqlJobsClient) -> None:
    client.wait(client.submit("add", {"a": 1, "b": 1}).id, timeout=60)
    tasks = {task.name: task for task in client.tasks()}
    assert tasks["add"].description == "Adds two numbers."
    assert tasks["add"].input_schema["required"] == ["a", "b"]
    queues = {queue.name: queue for queue in client.queues()}
    assert queues["default"].counts is not None  # an admin key sees the counts
    workers = client.workers()
    assert workers and "default" in workers[0].queues


def test_the_same_idempotency_key_returns_the_same_job(client: GqlJobsClient) -> None:
    first = client.submit("add", {"a": 1, "b": 2}, idempotency_key="client-test-key")
    again = client.submit("add", {"a": 1, "b": 2}, idempotency_key="client-test-key")
    assert again.id == first.id


def test_a_bad_key_is_unauthorized_over_http_and_websocket(server: Server) -> None:
    with GqlJobsClient(server.url, api_key="gqljobs_wrong", retries=0) as client:
        with pytest.raises(UnauthorizedError) as over_http:
            client.get("JOB-00000000-0000-0000-0000-000000000000")
        assert over_http.value.code is ErrorCode.UNAUTHENTICATED
        with pytest.raises(UnauthorizedError) as over_websocket:
            list(client.follow("JOB-00000000-0000-0000-0000-000000000000"))
        assert over_websocket.value.code is ErrorCode.UNAUTHENTICATED


def test_an_unreachable_server_says_so(server: Server) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with GqlJobsClient(url, retries=1, backoff=0) as client:
        with pytest.raises(ServerUnreachableError, match=r"cannot reach http://127\.0\.0\.1"):
            client.tasks()
        with pytest.raises(ServerUnreachableError):
            list(client.follow("JOB-1"))


def test_arguments_fall_back_to_environment_variables(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GQL_JOBS_URL", server.url)
    monkeypatch.setenv("GQL_JOBS_API_KEY", server.key)
    monkeypatch.setenv("GQL_JOBS_TIMEOUT", "12.5")
    monkeypatch.setenv("GQL_JOBS_RETRIES", "7")
    with GqlJobsClient() as client:
        assert (client.config.url, client.config.timeout, client.config.retries) == (server.url, 12.5, 7)
        assert "add" in {task.name for task in client.tasks()}


# -- a 503 from in front of the server, after the server took the job ----------------------------


class LosesTheFirstAnswer:
    """A proxy (a load balancer that timed out, say) that forwards every request to the server but
    answers the first submission with a 503 and `Retry-After: 0`, dropping the server's answer (or,
    `as_outcome_unknown`, with the union member the server gives when Redis failed mid-write)."""

    def __init__(self, upstream: str, as_outcome_unknown: bool = False) -> None:
        self.upstream = upstream
        self.as_outcome_unknown = as_outcome_unknown
        self.bodies: list[dict[str, Any]] = []
        self.lost: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k in ("authorization", "content-type")}
        async with httpx.AsyncClient() as upstream:
            answer = await upstream.post(f"{self.upstream}{request.url.path}", content=body, headers=headers)
        self.bodies.append(json.loads(body))
        if not self.lost:
            self.lost.append(answer.json())
            response = self._outcome_unknown(answer.json()) if self.as_outcome_unknown else self._timed_out()
        else:
            response = Response(answer.content, answer.status_code, media_type="application/json")
        await response(scope, receive, send)

    def _timed_out(self) -> Response:
        return Response("upstream timed out", status_code=503, headers={"Retry-After": "0"})

    def _outcome_unknown(self, stored: dict[str, Any]) -> Response:
        member = {
            "__typename": "SubmissionOutcomeUnknownError",
            "message": "Redis failed after the job was sent",
            "code": ErrorCode.SUBMISSION_OUTCOME_UNKNOWN.value,
            "jobId": stored["data"]["submitJob"]["job"]["id"],
            "outcomeIdempotencyKey": self.bodies[0]["variables"]["input"]["idempotencyKey"],
            "retryAfterSeconds": 0,
        }
        return Response(json.dumps({"data": {"submitJob": member}}), media_type="application/json")


def test_a_retry_after_a_503_reuses_the_idempotency_key(
    server: Server, tag: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = LosesTheFirstAnswer(server.url)
    caplog.set_level(logging.INFO, logger="gql_jobs.client")
    # A backoff of a minute: only the server's Retry-After (0) makes this retry come at once.
    with (
        running_server(proxy) as proxy_url,
        GqlJobsClient(proxy_url, api_key=server.key, retries=2, backoff=60) as client,
    ):
        job = client.submit("add", {"a": 1, "b": 1}, tags=[tag])
    keys = [body["variables"]["input"]["idempotencyKey"] for body in proxy.bodies]
    assert len(keys) == 2 and keys[0] == keys[1] and keys[0]
    stored = proxy.lost[0]["data"]["submitJob"]["job"]["id"]
    assert job.id == stored  # the job the lost answer carried, not a second one
    with GqlJobsClient(server.url, api_key=server.key) as direct:
        assert [j.id for j in direct.jobs(tag=tag)] == [stored]
    delays = [record.__dict__["retry_delay"] for record in caplog.records if "retry_delay" in record.__dict__]
    assert delays == [0.0]


def test_a_submission_outcome_unknown_is_retried_with_the_same_key(server: Server, tag: str) -> None:
    proxy = LosesTheFirstAnswer(server.url, as_outcome_unknown=True)
    with (
        running_server(proxy) as proxy_url,
        GqlJobsClient(proxy_url, api_key=server.key, backoff=60) as client,
    ):
        job = client.submit("add", {"a": 2, "b": 2}, tags=[tag])
    keys = {body["variables"]["input"]["idempotencyKey"] for body in proxy.bodies}
    assert len(proxy.bodies) == 2 and len(keys) == 1
    assert job.id == proxy.lost[0]["data"]["submitJob"]["job"]["id"]
    with GqlJobsClient(server.url, api_key=server.key) as direct:
        assert [j.id for j in direct.jobs(tag=tag)] == [job.id]


# -- the async client ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_client_submits_follows_events_and_pages(server: Server, tag: str) -> None:
    async with AsyncGqlJobsClient(server.url, api_key=server.key) as client:
        seen: list[str] = []
        submitted: list[str] = []

        async def listen() -> None:
            async for event in client.events(tag=tag):
                seen.append(event.job_id)
                return

        async with anyio.create_task_group() as group:
            group.start_soon(listen)
            # The subscription starts at some moment we cannot observe: submit until it sees one.
            with anyio.fail_after(60):
                while not seen:
                    submitted.append((await client.submit("add", {"a": 1, "b": 2}, tags=[tag])).id)
                    await anyio.sleep(0.1)
        assert seen[0] in submitted
        assert await client.wait(submitted[-1], timeout=60) == {"total": 3}
        updates = [job.status async for job in client.follow(submitted[-1])]
        assert updates == [JobStatus.FINISHED]
        listed = [job.id async for job in client.jobs(tag=tag, page_size=1)]
        assert listed == submitted[::-1]


def test_a_nested_json_payload_and_result_round_trip(client: GqlJobsClient) -> None:
    job = client.submit("echo", {"nested": {"list": [1, "two", None]}})
    assert client.wait(job.id, timeout=60) == {"nested": {"list": [1, "two", None]}}
