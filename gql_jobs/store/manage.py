"""Managing stored jobs through RQ: cancel a waiting job, stop a running one, requeue, delete.

The service decides whether the caller may and whether the job's status allows it; this module
makes RQ's calls and turns RQ's refusals into domain errors. RQ is synchronous: each function
but `announce` is one call for a store thread (`threads.in_thread`), and fetches the job itself.
Transitions made by RQ calls we cannot pipeline into are announced afterwards (`announce`, on the
event loop); a delete is one MULTI/EXEC with its event.
"""

from __future__ import annotations

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq import Queue
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.registry import CanceledJobRegistry, FailedJobRegistry

from gql_jobs.domain import EventKind, JobRecord, JobStatus
from gql_jobs.errors import InvalidJobStateError, JobNotFoundError
from gql_jobs.store import events, rq_adapter
from gql_jobs.store.keys import results_key
from gql_jobs.store.rq_format import SERIALIZER, CompactJob


def fetch(connection: Redis, job_id: str) -> Job:
    """RQ's job object (to hand to RQ's calls); `JobNotFoundError` if it is gone."""
    try:
        return CompactJob.fetch(job_id, connection=connection, serializer=SERIALIZER)
    except NoSuchJobError:
        raise JobNotFoundError(job_id) from None


def cancel_waiting(connection: Redis, job_id: str) -> None:
    """Cancel a queued, deferred or scheduled job (RQ files it as canceled)."""
    try:
        fetch(connection, job_id).cancel()
    except InvalidJobOperation:
        raise InvalidJobStateError(job_id, JobStatus.CANCELED.value, "cancel") from None


def stop_running(connection: Redis, record: JobRecord) -> None:
    """Ask the worker running the job to kill its work horse (RQ's stop command over pub/sub:
    per execution on RQ 3, per job on RQ 2, see `rq_adapter.stop_running_job`)."""
    fetch(connection, record.id)  # still there
    try:
        rq_adapter.stop_running_job(connection, record.id)
    except InvalidJobOperation:  # no worker has it (any more)
        raise InvalidJobStateError(record.id, record.status.value, "cancel") from None


def requeue(queue: Queue, record: JobRecord) -> None:
    """Put a failed, stopped or canceled job back on `queue` (the job's own)."""
    rq_job = fetch(queue.connection, record.id)
    registry_class = CanceledJobRegistry if record.status == JobStatus.CANCELED else FailedJobRegistry
    registry = registry_class(record.queue, connection=queue.connection, serializer=SERIALIZER)
    try:
        registry.requeue(rq_job)
    except InvalidJobOperation:
        # Not in the registry we expected (e.g. a stopped job RQ left elsewhere): enqueue directly.
        rq_adapter.enqueue_directly(queue, rq_job)


def delete(connection: Redis, record: JobRecord) -> None:
    """Delete the job and its results, with its event, in one MULTI/EXEC."""
    rq_job = fetch(connection, record.id)
    with connection.pipeline(transaction=True) as pipe:
        rq_job.delete(pipeline=pipe)
        pipe.delete(results_key(record.id))
        events.publish(pipe, events.of_record(record, EventKind.DELETED))
        pipe.execute()


async def announce(redis: AsyncRedis, record: JobRecord) -> None:
    """Publish a status event for a transition made by RQ calls we cannot pipeline into."""
    await events.publish_now(redis, events.of_record(record))
