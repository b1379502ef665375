"""Queues and workers as RQ records them, read in bulk (two round trips each, not one per item).

Counting never calls RQ's `registry.count`/`get_job_ids`, which run a cleanup (a write) first: a
dashboard that polls must not mutate the store.

A tenant's own queues are read from its listing index (`owner_queues`): the queue of each of its
newest jobs, one XREVRANGE and one pipelined HGET per job, bounded by the number of jobs looked at.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis import Redis
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.client import Pipeline
from rq import Queue
from rq.job import Job
from rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.utils import utcparse
from rq.worker_registration import REDIS_WORKER_KEYS

from gql_jobs.constants import INDEX_BY_OWNER, OWNER_FIELD
from gql_jobs.domain import JobStatus, WorkerInfo
from gql_jobs.store import index

_REGISTRIES = {
    JobStatus.STARTED: StartedJobRegistry.key_template,
    JobStatus.FINISHED: FinishedJobRegistry.key_template,
    JobStatus.FAILED: FailedJobRegistry.key_template,
    JobStatus.DEFERRED: DeferredJobRegistry.key_template,
    JobStatus.SCHEDULED: ScheduledJobRegistry.key_template,
    JobStatus.CANCELED: CanceledJobRegistry.key_template,
}


#: Statuses whose count is one queue or registry size. RQ files STOPPED jobs in the failed
#: registry, so neither FAILED nor STOPPED can be counted without reading every job there.
COUNTABLE = frozenset(
    {
        JobStatus.QUEUED,
        JobStatus.STARTED,
        JobStatus.FINISHED,
        JobStatus.DEFERRED,
        JobStatus.SCHEDULED,
        JobStatus.CANCELED,
    }
)


#: RQ's list of jobs a worker has taken off a queue but not yet started (still QUEUED to RQ).
INTERMEDIATE_SUFFIX = ":intermediate"


#: What `signatures` holds of a queue (see `gql_jobs.service.polling`): its list's length, head and tail,
#: its intermediate list's length, the sizes of its scheduled, deferred and canceled registries.
QueueSignature = tuple[Any, ...]
_SIGNATURE_LENGTH = 7


def stage_signatures(pipe: Pipeline | AsyncPipeline, names: Sequence[str]) -> None:
    """Stage each queue's signature on a pipeline (sync or async): seven O(1) commands a queue."""
    for name in names:
        key = Queue.redis_queue_namespace_prefix + name
        pipe.llen(key)
        pipe.lindex(key, 0)
        pipe.lindex(key, -1)
        pipe.llen(key + INTERMEDIATE_SUFFIX)
        for status in (JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.CANCELED):
            pipe.zcard(_REGISTRIES[status].format(name))


def signatures(names: Sequence[str], replies: list[Any]) -> list[QueueSignature]:
    """The replies of `stage_signatures`, one signature per queue."""
    size = _SIGNATURE_LENGTH
    return [tuple(replies[i * size : (i + 1) * size]) for i in range(len(names))]


def may_have_left(before: QueueSignature | None, after: QueueSignature) -> bool:
    """Whether a job can have left the queue's list or its registries between two signatures.

    Jobs join a list at its tail (at its head when `at_front`). They leave it from the head (a
    worker moves them to the intermediate list), from anywhere (a cancel, a delete: LREM; a cancel
    also files it as canceled), or leave a scheduled or deferred registry (for the list). So a list
    that kept its head and only grew, its intermediate list and registries unchanged, lost nothing
    (a growing queue no worker serves costs no reads), unless a removal from its middle without a
    registry (RQ's own `delete`, bypassing our service) was made up by pushes within the interval.
    """
    if before is None:
        return True
    length, head, tail, *rest = before
    new_length, new_head, new_tail, *new_rest = after
    if head != new_head or rest != new_rest:
        return True
    return bool(new_length < length or (new_length == length and tail != new_tail))


def queue_names(connection: Redis) -> list[str]:
    prefix = Queue.redis_queue_namespace_prefix
    keys = connection.smembers(Queue.redis_queues_keys)
    return sorted(key.decode().removeprefix(prefix) for key in keys)  # type: ignore[union-attr]


def status_counts(connection: Redis, names: list[str]) -> dict[str, dict[JobStatus, int]]:
    """Jobs per status per queue: LLEN of the queue and ZCARD of each registry, pipelined."""
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(Queue.redis_queue_namespace_prefix + name)
            pipe.llen(Queue.redis_queue_namespace_prefix + name + INTERMEDIATE_SUFFIX)
            for template in _REGISTRIES.values():
                pipe.zcard(template.format(name))
        replies = iter(pipe.execute())
    counts: dict[str, dict[JobStatus, int]] = {}
    for name in names:
        per_status = {JobStatus.QUEUED: int(next(replies)) + int(next(replies))}
        for status in _REGISTRIES:
            per_status[status] = int(next(replies))
        counts[name] = per_status
    return counts


def workers(connection: Redis) -> list[WorkerInfo]:
    keys = sorted(k.decode() for k in connection.smembers(REDIS_WORKER_KEYS))  # type: ignore[union-attr]
    with connection.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(key)
        hashes = pipe.execute()
    infos = []
    for key, raw in zip(keys, hashes, strict=True):
        if not raw:
            continue  # registered but its hash expired: a dead worker RQ has not swept yet
        data = {k.decode(): v.decode() for k, v in raw.items()}
        infos.append(
            WorkerInfo(
                name=key.removeprefix("rq:worker:"),
                state=data.get("state", "?"),
                queues=[q for q in data.get("queues", "").split(",") if q],
                current_job_id=data.get("current_job") or None,
                last_heartbeat=utcparse(data["last_heartbeat"]) if data.get("last_heartbeat") else None,
                birth=utcparse(data["birth"]) if data.get("birth") else None,
                successful_job_count=int(data.get("successful_job_count") or 0),
                failed_job_count=int(data.get("failed_job_count") or 0),
                pid=int(data["pid"]) if data.get("pid") else None,
                hostname=data.get("hostname") or None,
            )
        )
    return infos


def owner_queues(connection: Redis, owner: str, newest: int) -> list[str]:
    """The queues of `owner`'s `newest` most recent listable jobs (expired ones are skipped)."""
    entries = index.older_than(connection, INDEX_BY_OWNER + owner, None, newest)
    with connection.pipeline(transaction=False) as pipe:
        for entry in entries:
            pipe.hget(Job.key_for(entry.job_id), "origin")
        origins = pipe.execute()
    return sorted({origin.decode() for origin in origins if origin})


def job_owners(connection: Redis, job_ids: list[str]) -> dict[str, str | None]:
    """Who owns each job (`None`: nobody, or the job is gone), one pipelined HGET each."""
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(Job.key_for(job_id), OWNER_FIELD)
        owners = pipe.execute()
    return {job_id: owner.decode() if owner else None for job_id, owner in zip(job_ids, owners, strict=True)}
