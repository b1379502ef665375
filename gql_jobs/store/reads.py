"""Consistent reads of RQ jobs: one MULTI/EXEC per batch, turned into `JobRecord`s.

The lesson's status route read a job field by field (`get_status()`, then `result`, ...) and could
answer `finished` with `ended_at: null`, because the worker's writes landed between two reads. We
read each job's hash and its latest result in one transaction, so a record is always one moment
of the job.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.client import Pipeline
from rq.job import Job
from rq.results import Result

from gql_jobs.constants import (
    META_PAYLOAD,
    META_PROGRESS,
    META_SUBMITTED_AT,
    META_TAGS,
    META_TASK,
    OWNER_FIELD,
)
from gql_jobs.domain import JobError, JobRecord, JobStatus, Progress
from gql_jobs.store import rq_adapter
from gql_jobs.store.keys import job_key, results_key
from gql_jobs.store.rq_format import SERIALIZER


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


async def read_jobs(
    connection: AsyncRedis, rq_connection: Redis, job_ids: Sequence[str]
) -> list[JobRecord | None]:
    """Read many jobs in one round trip, on the event loop; `None` where a job does not exist (or
    has expired). `rq_connection` is only handed to RQ's objects, never used."""
    if not job_ids:
        return []
    async with connection.pipeline(transaction=True) as pipe:
        stage_reads(pipe, job_ids)
        replies = await pipe.execute()
    return to_records(rq_connection, job_ids, replies)


def read_jobs_on_thread(connection: Redis, job_ids: Sequence[str]) -> list[JobRecord | None]:
    """`read_jobs` for store code already running on a store thread (a listing's pages, the
    idempotency check inside its WATCH), which cannot await: the same staging and parsing."""
    if not job_ids:
        return []
    with connection.pipeline(transaction=True) as pipe:
        stage_reads(pipe, job_ids)
        replies = pipe.execute()
    return to_records(connection, job_ids, replies)


def stage_reads(pipe: Pipeline | AsyncPipeline, job_ids: Sequence[str]) -> None:
    for job_id in job_ids:
        pipe.hgetall(job_key(job_id))
        pipe.xrevrange(results_key(job_id), "+", "-", count=1)


def to_records(connection: Redis, job_ids: Sequence[str], replies: list[Any]) -> list[JobRecord | None]:
    return [
        to_record(connection, job_id, replies[2 * i], replies[2 * i + 1]) for i, job_id in enumerate(job_ids)
    ]


def to_record(
    connection: Redis, job_id: str, raw_hash: dict[bytes, bytes], raw_results: list[Any]
) -> JobRecord | None:
    if not raw_hash or b"data" not in raw_hash:
        return None
    job = Job(job_id, connection=connection, serializer=SERIALIZER)
    job.restore(raw_hash)
    latest = (
        Result.restore(job_id, raw_results[0][0].decode(), raw_results[0][1], connection, SERIALIZER)
        if raw_results
        else None
    )
    owner = raw_hash.get(OWNER_FIELD.encode())
    return _record(job, raw_hash.get(b"status", b"").decode(), latest, owner.decode() if owner else None)


def record_from_job(job: Job, owner: str | None = None) -> JobRecord:
    """The record of a job we just enqueued, from what we wrote (no read back)."""
    return _record(job, job.get_status(refresh=False).value, None, owner)


def _record(job: Job, raw_status: str, latest: Result | None, owner: str | None) -> JobRecord:
    status = JobStatus.parse(raw_status)
    meta: dict[str, Any] = job.meta if isinstance(job.meta, dict) else {}
    result = None
    error = None
    if latest is not None:
        if latest.type == Result.Type.SUCCESSFUL:
            result = latest.return_value
        elif latest.type == Result.Type.FAILED or status in (JobStatus.FAILED, JobStatus.STOPPED):
            error = error_of(latest.exc_string)
    if error is None and status in (JobStatus.FAILED, JobStatus.STOPPED) and rq_adapter.stored_traceback(job):
        error = error_of(rq_adapter.stored_traceback(job))
    return JobRecord(
        id=job.id,
        status=status,
        raw_status=raw_status,
        task=meta.get(META_TASK) if isinstance(meta.get(META_TASK), str) else None,
        queue=job.origin,
        func_name=job.func_name,
        payload=meta[META_PAYLOAD] if META_PAYLOAD in meta else _first_arg(job),
        meta=meta,
        tags=tuple(str(t) for t in meta.get(META_TAGS) or ()),
        description=job.description,
        submitted_at=meta.get(META_SUBMITTED_AT),
        created_at=job.created_at,
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        ended_at=job.ended_at,
        result=result,
        error=error,
        progress=_progress(meta.get(META_PROGRESS)),
        retries_left=job.retries_left,
        depends_on=tuple(rq_adapter.dependency_ids(job)),
        timeout=int(job.timeout) if job.timeout is not None else None,
        result_ttl=job.result_ttl,
        failure_ttl=job.failure_ttl,
        worker_name=job.worker_name,
        result_expires_at=_expires_at(status, job),
        owner=owner,
    )


def _first_arg(job: Job) -> Any:
    try:
        args = job.args
    except Exception:  # a job written by another client with a serializer we cannot read
        return None
    return args[0] if args else None


def error_of(traceback: str | None) -> JobError | None:
    """A traceback as a `JobError`: its last line split into type and message."""
    if not traceback:
        return None
    last = traceback.strip().splitlines()[-1] if traceback.strip() else ""
    exc_type, sep, message = last.partition(": ")
    if not sep or " " in exc_type:
        return JobError(type=None, message=last, traceback=traceback)
    return JobError(type=exc_type, message=message, traceback=traceback)


def _progress(raw: Any) -> Progress | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("current"), int | float):
        return None
    updated = raw.get("updated_at")
    total = raw.get("total")
    message = raw.get("message")
    return Progress(
        current=float(raw["current"]),
        total=float(total) if isinstance(total, int | float) else None,
        message=message if isinstance(message, str) else None,
        updated_at=datetime.fromisoformat(updated) if isinstance(updated, str) else None,
    )


def _expires_at(status: JobStatus, job: Job) -> datetime | None:
    if job.ended_at is None:
        return None
    ttl = job.result_ttl if status == JobStatus.FINISHED else job.failure_ttl
    if status not in (JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED) or ttl is None or ttl < 0:
        return None
    return job.ended_at + timedelta(seconds=ttl)
