"""The job service's logic on fakeredis: metadata, validation, batching, reads, listing."""

from __future__ import annotations

import inspect
import json
import re
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from rq import SimpleWorker

from gql_jobs.auth import ANONYMOUS as ADMIN
from gql_jobs.domain import JobFilter, JobStatus, PageRequest, RetryPolicy, SubmitRequest
from gql_jobs.errors import (
    BatchTooLargeError,
    InvalidCursorError,
    InvalidJobStateError,
    InvalidPayloadError,
    InvalidRequestError,
    JobNotFoundError,
    PayloadTooLargeError,
    UnknownTaskError,
)
from gql_jobs.service.jobs import JobService
from gql_jobs.store.rq_format import SERIALIZER

pytestmark = pytest.mark.anyio


#: What a client sends for its connection (a new connection's handshake, a health check), not
#: for the operation under test.
CONNECTION_UPKEEP = {"HELLO", "CLIENT", "SELECT", "AUTH", "PING"}


@contextmanager
def counted_round_trips(service: JobService) -> Iterator[list[str]]:
    """Record each round trip the service makes, on either client: the async one on the event
    loop, RQ's synchronous one on store threads. Counted on the wire (each packet a connection
    sends): a single command by its name, several sent together as "PIPELINE"."""
    calls: list[str] = []
    with ExitStack() as stack:
        for client in (service.connection, service.async_connection):
            stack.enter_context(_counting(client.connection_pool.connection_class, calls))
        yield calls


@contextmanager
def _counting(connection_class: Any, calls: list[str]) -> Iterator[None]:
    original = connection_class.send_packed_command

    def record(command: Any) -> None:
        packet = b"".join(command) if isinstance(command, list) else bytes(command)
        names = _command_names(packet)
        if set(names) <= CONNECTION_UPKEEP:
            return
        calls.append(names[0] if len(names) == 1 else "PIPELINE")

    if inspect.iscoroutinefunction(original):

        async def counted_async(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
            record(command)
            return await original(self, command, *args, **kwargs)

        connection_class.send_packed_command = counted_async
    else:

        def counted(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
            record(command)
            return original(self, command, *args, **kwargs)

        connection_class.send_packed_command = counted
    try:
        yield
    finally:
        connection_class.send_packed_command = original


def _command_names(packet: bytes) -> list[str]:
    """The command names in a packet of RESP arrays of bulk strings (what clients send)."""
    names, at = [], 0
    while at < len(packet):
        end = packet.index(b"\r\n", at)
        words = int(packet[at + 1 : end])
        at = end + 2
        for word in range(words):
            end = packet.index(b"\r\n", at)
            size = int(packet[at + 1 : end])
            if word == 0:
                names.append(packet[end + 2 : end + 2 + size].decode().upper())
            at = end + 2 + size + 2
    return names


def drain(service: JobService) -> None:
    SimpleWorker(["default"], connection=service.connection, serializer=SERIALIZER).work(
        burst=True, logging_level="WARNING"
    )


async def test_submit_stamps_the_lesson_metadata(fake_service: JobService) -> None:
    record = (await fake_service.submit(ADMIN, SubmitRequest("echo", {"x": 1}, tags=("api", "v1")))).record
    assert re.fullmatch(r"JOB-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", record.id)
    assert record.status == JobStatus.QUEUED
    assert record.meta == {
        "job_id": record.id,
        "submitted_at": record.submitted_at,
        "payload": {"x": 1},
        "task_name": "echo",
        "tags": ["api", "v1"],
    }
    assert record.description == f"echo submitted at {record.submitted_at}"


async def test_jobs_are_stored_as_json_never_pickle(fake_service: JobService) -> None:
    record = (await fake_service.submit(ADMIN, SubmitRequest("echo", {"x": 1}))).record
    raw = fake_service.connection.hget(f"rq:job:{record.id}", "data")
    assert isinstance(raw, bytes)
    func, _instance, args, _kwargs = json.loads(zlib.decompress(raw))
    assert (func, args) == ("gql_jobs.builtin_tasks.echo", [{"x": 1}])


async def test_submit_is_one_round_trip(fake_service: JobService) -> None:
    await fake_service.submit(ADMIN, SubmitRequest("echo", {}))  # first call learns the server version
    with counted_round_trips(fake_service) as calls:
        await fake_service.submit(ADMIN, SubmitRequest("echo", {"x": 1}))
    assert calls == ["EVAL"]  # `script_batch.SCRIPT`: the job, its listing entries and its event


async def test_submit_many_is_one_round_trip_and_reports_each_item(fake_service: JobService) -> None:
    await fake_service.submit(ADMIN, SubmitRequest("echo", {}))
    requests = [SubmitRequest("echo", {"i": i}) for i in range(50)]
    requests.insert(3, SubmitRequest("nope"))
    requests.insert(7, SubmitRequest("add", {"a": 1, "b": -5}))
    with counted_round_trips(fake_service) as calls:
        outcomes = await fake_service.submit_many(ADMIN, requests)
    assert calls == ["EVAL"]
    assert isinstance(outcomes[3], UnknownTaskError)
    assert isinstance(outcomes[7], InvalidPayloadError)
    assert sum(1 for o in outcomes if not isinstance(o, Exception)) == 50


async def test_batch_size_is_capped(fake_service: JobService) -> None:
    too_many = [SubmitRequest("echo", {})] * (fake_service.settings.max_batch_size + 1)
    with pytest.raises(BatchTooLargeError):
        await fake_service.submit_many(ADMIN, too_many)


async def test_oversized_payload_is_refused_and_nothing_is_stored(fake_service: JobService) -> None:
    big = {"blob": "x" * fake_service.settings.max_payload_bytes}
    with pytest.raises(PayloadTooLargeError) as raised:
        await fake_service.submit(ADMIN, SubmitRequest("echo", big))
    assert raised.value.actual_bytes > raised.value.limit_bytes
    assert fake_service.connection.keys("*") == []


@pytest.mark.parametrize(
    "request_",
    [
        SubmitRequest("echo", {}, queue="bad queue"),
        SubmitRequest("echo", {}, tags=("ok", "not ok")),
        SubmitRequest("echo", {}, timeout=0),
        SubmitRequest("echo", {}, delay_seconds=-1),
        SubmitRequest("echo", {}, retry=RetryPolicy(max=1000)),
    ],
)
async def test_out_of_range_options_are_refused(fake_service: JobService, request_: SubmitRequest) -> None:
    with pytest.raises(InvalidRequestError):
        await fake_service.submit(ADMIN, request_)
    assert fake_service.connection.keys("*") == []


async def test_missing_dependency_is_reported_as_not_found(fake_service: JobService) -> None:
    with pytest.raises(JobNotFoundError) as raised:
        await fake_service.submit(ADMIN, SubmitRequest("echo", {}, depends_on=("JOB-missing",)))
    assert raised.value.job_id == "JOB-missing"


async def test_dependent_job_waits_then_runs(fake_service: JobService) -> None:
    first = (await fake_service.submit(ADMIN, SubmitRequest("echo", {"n": 1}))).record
    second = (
        await fake_service.submit(ADMIN, SubmitRequest("echo", {"n": 2}, depends_on=(first.id,)))
    ).record
    assert second.status == JobStatus.DEFERRED
    drain(fake_service)
    assert (await fake_service.get(ADMIN, second.id)).status == JobStatus.FINISHED


async def test_delayed_job_is_scheduled(fake_service: JobService) -> None:
    record = (await fake_service.submit(ADMIN, SubmitRequest("echo", {}, delay_seconds=60))).record
    assert record.status == JobStatus.SCHEDULED
    assert (await fake_service.get(ADMIN, record.id)).status == JobStatus.SCHEDULED


async def test_finished_job_reads_with_its_result(fake_service: JobService) -> None:
    record = (await fake_service.submit(ADMIN, SubmitRequest("add", {"a": 2, "b": 3}))).record
    drain(fake_service)
    finished = await fake_service.get(ADMIN, record.id)
    assert finished.status == JobStatus.FINISHED
    assert finished.result == {"total": 5}
    assert finished.ended_at is not None and finished.result_expires_at is not None


async def test_failed_job_reads_with_its_error(fake_service: JobService) -> None:
    record = (await fake_service.submit(ADMIN, SubmitRequest("fail", {"message": "boom"}))).record
    drain(fake_service)
    failed = await fake_service.get(ADMIN, record.id)
    assert failed.status == JobStatus.FAILED
    assert failed.error is not None
    assert (failed.error.type, failed.error.message) == ("gql_jobs.builtin_tasks.TaskFailedError", "boom")
    assert "Traceback" in (failed.error.traceback or "")


async def test_get_many_is_one_round_trip(fake_service: JobService) -> None:
    ids = [(await fake_service.submit(ADMIN, SubmitRequest("echo", {"i": i}))).record.id for i in range(5)]
    with counted_round_trips(fake_service) as calls:
        records = await fake_service.get_many(ADMIN, [*ids, "JOB-missing", "../../etc"])
    assert calls == ["EVAL"]  # `reads.READ_SCRIPT`: every job and its latest result at once
    assert [r.id if r else None for r in records] == [*ids, None, None]


@pytest.mark.parametrize("job_id", ["../x", "a" * 129, "JOB-1 2", "*", "rq:job:x", ""])
async def test_malformed_ids_never_reach_redis(fake_service: JobService, job_id: str) -> None:
    with counted_round_trips(fake_service) as calls, pytest.raises(JobNotFoundError):
        await fake_service.get(ADMIN, job_id)
    assert calls == []


async def test_cancel_queued_job(fake_service: JobService) -> None:
    record = (await fake_service.submit(ADMIN, SubmitRequest("echo", {}))).record
    assert (await fake_service.cancel(ADMIN, record.id)).status == JobStatus.CANCELED


async def test_cancel_finished_job_is_refused(fake_service: JobService) -> None:
    record = (await fake_service.submit(ADMIN, SubmitRequest("echo", {}))).record
    drain(fake_service)
    with pytest.raises(InvalidJobStateError) as raised:
        await fake_service.cancel(ADMIN, record.id)
    assert raised.value.status == "finished"


async def test_requeue_failed_job_then_refuse_a_queued_one(fake_service: JobService) -> None:
    failed = (await fake_service.submit(ADMIN, SubmitRequest("fail", {}))).record
    drain(fake_service)
    assert (await fake_service.requeue(ADMIN, failed.id)).status == JobStatus.QUEUED
    with pytest.raises(InvalidJobStateError):
        await fake_service.requeue(ADMIN, failed.id)


async def test_requeue_canceled_job(fake_service: JobService) -> None:
    record = (await fake_service.submit(ADMIN, SubmitRequest("echo", {}))).record
    await fake_service.cancel(ADMIN, record.id)
    assert (await fake_service.requeue(ADMIN, record.id)).status == JobStatus.QUEUED
    drain(fake_service)
    assert (await fake_service.get(ADMIN, record.id)).status == JobStatus.FINISHED


async def test_delete_removes_job_and_result_and_listings_drop_its_entries(fake_service: JobService) -> None:
    """The delete leaves the job's listing entries: their stream IDs are Redis's, kept nowhere by
    job id, so finding them would mean scanning the streams. A listing drops the entries of gone
    jobs as it walks past them (`listing._prune`), and retention trims the rest."""
    record = (await fake_service.submit(ADMIN, SubmitRequest("echo", {}, tags=("t",)))).record
    drain(fake_service)
    assert await fake_service.delete(ADMIN, record.id) == record.id
    with pytest.raises(JobNotFoundError):
        await fake_service.get(ADMIN, record.id)
    assert not [k for k in fake_service.connection.keys("*") if record.id.encode() in k]
    assert (await fake_service.list_jobs(ADMIN, JobFilter(), PageRequest(first=10))).items == []


async def test_listing_is_newest_first_with_working_cursors(fake_service: JobService) -> None:
    ids = [(await fake_service.submit(ADMIN, SubmitRequest("echo", {"i": i}))).record.id for i in range(7)]
    first = await fake_service.list_jobs(ADMIN, JobFilter(), PageRequest(first=3))
    second = await fake_service.list_jobs(ADMIN, JobFilter(), PageRequest(first=3, after=first.end_cursor))
    third = await fake_service.list_jobs(ADMIN, JobFilter(), PageRequest(first=3, after=second.end_cursor))
    seen = [r.id for page in (first, second, third) for _, r in page.items]
    assert seen == list(reversed(ids))
    assert (first.has_next_page, second.has_next_page, third.has_next_page) == (True, True, False)


async def test_listing_backwards_from_a_cursor(fake_service: JobService) -> None:
    ids = [(await fake_service.submit(ADMIN, SubmitRequest("echo", {"i": i}))).record.id for i in range(6)]
    oldest = await fake_service.list_jobs(ADMIN, JobFilter(), PageRequest(last=2))
    newer = await fake_service.list_jobs(ADMIN, JobFilter(), PageRequest(last=2, before=oldest.start_cursor))
    assert [r.id for _, r in oldest.items] == [ids[1], ids[0]]
    assert [r.id for _, r in newer.items] == [ids[3], ids[2]]
    assert newer.has_previous_page


async def test_listing_filters_by_status_task_queue_and_tag(fake_service: JobService) -> None:
    done = (await fake_service.submit(ADMIN, SubmitRequest("echo", {}, tags=("a",)))).record
    drain(fake_service)
    waiting = (
        await fake_service.submit(ADMIN, SubmitRequest("add", {"a": 1, "b": 1}, queue="other", tags=("b",)))
    ).record

    async def ids(**criteria: Any) -> list[str]:
        return [
            r.id
            for _, r in (
                await fake_service.list_jobs(ADMIN, JobFilter(**criteria), PageRequest(first=10))
            ).items
        ]

    assert await ids(status=JobStatus.FINISHED) == [done.id]
    assert await ids(status=JobStatus.QUEUED) == [waiting.id]
    assert await ids(task="add") == [waiting.id]
    assert await ids(queue="other") == [waiting.id]
    assert await ids(tag="a") == [done.id]
    assert await ids(tag="a", status=JobStatus.QUEUED) == []


async def test_listing_drops_entries_of_expired_jobs(fake_service: JobService) -> None:
    kept = (await fake_service.submit(ADMIN, SubmitRequest("echo", {}))).record
    gone = (await fake_service.submit(ADMIN, SubmitRequest("echo", {}))).record
    fake_service.connection.delete(f"rq:job:{gone.id}")  # as RQ's TTL expiry would
    page = await fake_service.list_jobs(ADMIN, JobFilter(), PageRequest(first=10))
    assert [r.id for _, r in page.items] == [kept.id]
    assert await fake_service.count_jobs(ADMIN, JobFilter()) == 1


async def test_invalid_cursor_is_refused(fake_service: JobService) -> None:
    with pytest.raises(InvalidCursorError):
        await fake_service.list_jobs(ADMIN, JobFilter(), PageRequest(first=1, after="not-a-cursor"))


async def test_page_size_is_capped(fake_service: JobService) -> None:
    with pytest.raises(InvalidRequestError):
        await fake_service.list_jobs(
            ADMIN, JobFilter(), PageRequest(first=fake_service.settings.max_page_size + 1)
        )


async def test_counts(fake_service: JobService) -> None:
    await fake_service.submit(ADMIN, SubmitRequest("echo", {}, tags=("x",)))
    await fake_service.submit(ADMIN, SubmitRequest("fail", {}))
    drain(fake_service)
    await fake_service.submit(ADMIN, SubmitRequest("echo", {}))
    assert await fake_service.count_jobs(ADMIN, JobFilter()) == 3
    assert await fake_service.count_jobs(ADMIN, JobFilter(tag="x")) == 1
    assert await fake_service.count_jobs(ADMIN, JobFilter(status=JobStatus.FINISHED)) == 1
    assert (
        await fake_service.count_jobs(ADMIN, JobFilter(status=JobStatus.FAILED)) is None
    )  # RQ mixes in STOPPED
    assert await fake_service.count_jobs(ADMIN, JobFilter(status=JobStatus.QUEUED, queue="default")) == 1
    assert await fake_service.count_jobs(ADMIN, JobFilter(status=JobStatus.QUEUED, tag="x")) is None


async def test_a_failing_job_with_retries_runs_again_then_fails(fake_service: JobService) -> None:
    record = (await fake_service.submit(ADMIN, SubmitRequest("fail", {}, retry=RetryPolicy(max=2)))).record
    assert record.retries_left == 2
    drain(fake_service)
    failed = await fake_service.get(ADMIN, record.id)
    assert failed.status == JobStatus.FAILED
    assert failed.retries_left == 0
