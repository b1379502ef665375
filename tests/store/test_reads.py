"""Records are decoded from the raw job hash (`gql_jobs.store.reads.to_record`), not through RQ's
`Job.restore`: hold each field to what RQ's own objects read from the same job, for jobs in every
state a worker leaves them in."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
from rq import Queue
from rq.job import Job
from rq.results import Result

from gql_jobs.auth import ANONYMOUS as ADMIN
from gql_jobs.domain import SUMMARY_FIELDS, JobRecord, JobStatus, RetryPolicy, SubmitRequest
from gql_jobs.service.jobs import JobService
from gql_jobs.store.keys import job_key
from gql_jobs.store.reads import read_jobs, read_jobs_on_thread
from gql_jobs.store.rq_format import RQ_TIME_FORMAT, SERIALIZER, parse_time

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def assert_read_as_rq_reads(connection: redis.Redis, record: JobRecord) -> None:
    job = Job.fetch(record.id, connection=connection, serializer="json")
    latest = job.latest_result()
    assert record.status.value == job.get_status(refresh=False).value
    assert record.queue == job.origin
    assert record.func_name == job.func_name
    assert record.meta == job.meta
    assert record.description == job.description
    for attribute in ("created_at", "enqueued_at", "started_at", "ended_at"):
        assert getattr(record, attribute) == getattr(job, attribute), attribute
    assert record.retries_left == job.retries_left
    assert record.timeout == job.timeout
    assert (record.result_ttl, record.failure_ttl) == (job.result_ttl, job.failure_ttl)
    assert record.worker_name == job.worker_name
    if latest is not None and latest.type == Result.Type.SUCCESSFUL:
        assert record.result == latest.return_value
    if latest is not None and latest.type == Result.Type.FAILED:
        assert record.error is not None and record.error.traceback == latest.exc_string


async def test_records_hold_what_rq_reads_from_the_same_jobs(
    service: JobService, redis_client: redis.Redis, drain: Callable[..., None]
) -> None:
    requests = [
        SubmitRequest(task="echo", payload={"n": 1}, tags=("a", "b"), description="an echo"),
        SubmitRequest(task="fail", payload={"message": "boom"}),
        SubmitRequest(task="echo", payload={"n": 2}, timeout=7, result_ttl=-1, failure_ttl=60),
        SubmitRequest(task="fail", payload={}, retry=RetryPolicy(max=2, intervals=(0,))),
    ]
    ids = [(await service.submit(ADMIN, request)).record.id for request in requests]
    drain()
    queued = (await service.submit(ADMIN, SubmitRequest(task="echo", payload={"n": 3}))).record.id
    later = SubmitRequest(task="echo", payload={}, delay_seconds=600)
    scheduled = (await service.submit(ADMIN, later)).record
    dependent = (await service.submit(ADMIN, SubmitRequest(task="echo", depends_on=(queued,)))).record.id

    records = read_jobs_on_thread(redis_client, [*ids, queued, scheduled.id, dependent, "JOB-gone"])

    assert records[-1] is None
    for record in records[:-1]:
        assert record is not None
        assert_read_as_rq_reads(redis_client, record)
    finished, failed, kept, retried, *_ = records
    assert finished is not None and finished.result == {"n": 1} and finished.tags == ("a", "b")
    assert finished.payload == {"n": 1} and finished.task == "echo"
    assert finished.ended_at is not None
    assert finished.result_ttl is not None and finished.result_ttl > 0
    assert finished.result_expires_at == finished.ended_at + timedelta(seconds=finished.result_ttl)
    assert kept is not None and kept.result_expires_at is None  # kept forever
    assert failed is not None and failed.status == JobStatus.FAILED
    assert failed.error is not None and failed.error.message.endswith("boom")
    assert retried is not None and retried.retries_left == 0 and retried.error is not None
    assert records[5] is not None and records[5].status == JobStatus.SCHEDULED
    assert records[6] is not None and records[6].depends_on == (queued,)
    assert records[6].status == JobStatus.DEFERRED


async def test_a_summary_is_the_whole_record_without_arguments_and_outcome(
    service: JobService, redis_client: redis.Redis, drain: Callable[..., None]
) -> None:
    requests = [
        SubmitRequest(task="echo", payload={"n": 1}, tags=("a",), description="an echo"),
        SubmitRequest(task="fail", payload={"message": "boom"}),
        SubmitRequest(task="fail", payload={}, retry=RetryPolicy(max=1, intervals=(0,))),
    ]
    ids = [(await service.submit(ADMIN, request)).record.id for request in requests]
    drain()
    queued = (await service.submit(ADMIN, SubmitRequest(task="echo", payload={"n": 3}))).record.id
    dependent = (await service.submit(ADMIN, SubmitRequest(task="echo", depends_on=(queued,)))).record.id
    foreign = Queue("default", connection=redis_client, serializer=SERIALIZER).enqueue("builtins.len", [1, 2])
    redis_client.hset(job_key("JOB-stub"), "last_heartbeat", "2026-12-02T01:02:03Z")  # no `data`: no job
    wanted = [*ids, queued, dependent, foreign.id, "JOB-stub", "JOB-gone"]

    whole = await read_jobs(service.async_connection, wanted)
    summaries = await read_jobs(service.async_connection, wanted, summary=SUMMARY_FIELDS)

    assert whole[-2:] == summaries[-2:] == [None, None]
    for record, summary in zip(whole[:-2], summaries[:-2], strict=True):
        assert record is not None and summary is not None and summary.summary
        payload = record.payload if record.task is not None else None  # ours keep it in the meta
        expected = record._replace(func_name=None, result=None, error=None, payload=payload, summary=True)
        assert summary == expected
    # A summary of some fields holds each of them as the whole summary does (what a listing reads
    # of every job too); the others are left unread.
    for name in sorted(SUMMARY_FIELDS):
        some = await read_jobs(service.async_connection, wanted, summary=frozenset({name}))
        for record, summary in zip(whole[:-2], some[:-2], strict=True):
            assert record is not None and summary is not None and summary.summary
            full = record._replace(payload=record.payload if record.task is not None else None)
            assert getattr(summary, name) == getattr(full, name) or name == "summary", name
            assert (summary.status, summary.task, summary.queue, summary.owner) == (
                record.status,
                record.task,
                record.queue,
                record.owner,
            )
            assert summary.created_at == record.created_at
    lean = await read_jobs(service.async_connection, wanted, summary=frozenset({"status"}))
    assert lean[0] is not None and whole[0] is not None and whole[0].ended_at is not None
    assert lean[0].ended_at is None and lean[0].worker_name is None  # not read
    assert whole[0] is not None and whole[0].result == {"n": 1}  # what the summary left out
    assert whole[1] is not None and whole[1].error is not None
    assert whole[-3] is not None and whole[-3].payload == [1, 2]


def test_times_are_read_as_rq_reads_them() -> None:
    moment = datetime(2026, 12, 2, 1, 2, 3, 456789, tzinfo=UTC)
    assert parse_time(moment.strftime(RQ_TIME_FORMAT)) == moment
    assert parse_time("2026-12-02T01:02:03Z") == moment.replace(microsecond=0)  # RQ's older format
    assert parse_time(moment.strftime(RQ_TIME_FORMAT)).tzinfo is not None
