"""Queues and workers as RQ records them, read in bulk (two round trips each, not one per item).

Synchronous (the service runs them on a store thread, `threads.in_thread`), except the queue
signatures the live poller reads every interval, which are read on the event loop.

Counting never calls RQ's `registry.count`/`get_job_ids`, which run a cleanup (a write) first: a
dashboard that polls must not mutate the store.

A tenant's own queues are read from its listing index instead (`listing.owner_queues`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.client import Pipeline
from rq.utils import utcparse

from gql_jobs.constants import OWNER_FIELD
from gql_jobs.domain import JobStatus, WorkerInfo
from gql_jobs.store import rq_adapter
from gql_jobs.store.keys import (
    QUEUE_KEY_PREFIX,
    QUEUES_SET,
    REGISTRY_KEY_TEMPLATES,
    WORKER_KEY_PREFIX,
    WORKERS_SET,
    intermediate_key,
    job_key,
    queue_key,
    registry_key,
)

#: RQ 3's registry of dependents about to be enqueued (`rq:ready:<queue>`); RQ 2 has none.
_READY_TEMPLATE = rq_adapter.ready_registry_template()
#: Each registry counted per queue, by the status it holds (RQ's own, and RQ 3's ready one).
_COUNTED_REGISTRIES: dict[JobStatus, str] = REGISTRY_KEY_TEMPLATES | (
    {JobStatus.READY_TO_ENQUEUE: _READY_TEMPLATE} if _READY_TEMPLATE else {}
)

#: Statuses whose count `status_counts` gives: one queue or registry size, and on RQ 3 the jobs
#: held back by concurrency limits. RQ files STOPPED jobs in the failed registry, so neither
#: FAILED nor STOPPED can be counted without reading every job there.
COUNTABLE = frozenset(
    {
        JobStatus.QUEUED,
        JobStatus.STARTED,
        JobStatus.FINISHED,
        JobStatus.DEFERRED,
        JobStatus.SCHEDULED,
        JobStatus.CANCELED,
        *((JobStatus.READY_TO_ENQUEUE, JobStatus.RATE_LIMITED) if rq_adapter.HAS_RQ3 else ()),
    }
)


#: What `signatures` holds of a queue (see `gql_jobs.service.polling`): its list's length, head and tail,
#: its intermediate list's length, the sizes of its scheduled, deferred and canceled registries.
QueueSignature = tuple[Any, ...]
_SIGNATURE_LENGTH = 7


def stage_signatures(pipe: Pipeline | AsyncPipeline, names: Sequence[str]) -> None:
    """Stage each queue's signature on a pipeline (sync or async): seven O(1) commands a queue."""
    for name in names:
        key = queue_key(name)
        pipe.llen(key)
        pipe.lindex(key, 0)
        pipe.lindex(key, -1)
        pipe.llen(intermediate_key(name))
        for status in (JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.CANCELED):
            pipe.zcard(registry_key(status, name))


def signatures(names: Sequence[str], replies: list[Any]) -> list[QueueSignature]:
    """The replies of `stage_signatures`, one signature per queue."""
    size = _SIGNATURE_LENGTH
    return [tuple(replies[i * size : (i + 1) * size]) for i in range(len(names))]


async def read_signatures(connection: AsyncRedis, names: Sequence[str]) -> list[QueueSignature]:
    """Each queue's signature, read in one MULTI/EXEC on the event loop, O(1) per queue."""
    async with connection.pipeline(transaction=True) as pipe:
        stage_signatures(pipe, names)
        replies = await pipe.execute()
    return signatures(names, replies)


def queue_position(connection: Redis, queue: str, job_id: str) -> int | None:
    """0-based place of a job in its queue's list (O(queue length)); `None` if it is not there."""
    place = connection.lpos(queue_key(queue), job_id)
    return int(place) if place is not None else None  # type: ignore[arg-type]


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
    keys = connection.smembers(QUEUES_SET)
    return sorted(key.decode().removeprefix(QUEUE_KEY_PREFIX) for key in keys)  # type: ignore[union-attr]


def status_counts(connection: Redis, names: list[str]) -> dict[str, dict[JobStatus, int]]:
    """Jobs per status per queue: LLEN of the queue and ZCARD of each registry, pipelined (and,
    on RQ 3, the jobs held back by concurrency limits: `rate_limited_by_queue`)."""
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(queue_key(name))
            pipe.llen(intermediate_key(name))
            for template in _COUNTED_REGISTRIES.values():
                pipe.zcard(template.format(name))
        replies = iter(pipe.execute())
    counts: dict[str, dict[JobStatus, int]] = {}
    for name in names:
        per_status = {JobStatus.QUEUED: int(next(replies)) + int(next(replies))}
        for status in _COUNTED_REGISTRIES:
            per_status[status] = int(next(replies))
        counts[name] = per_status
    if rq_adapter.HAS_RQ3:
        held = rate_limited_by_queue(connection)
        for name in names:
            counts[name][JobStatus.RATE_LIMITED] = held.get(name, 0)
    return counts


def rate_limited_by_queue(connection: Redis) -> dict[str, int]:
    """RATE_LIMITED jobs per queue. RQ 3 files them per concurrency key, not per queue, so this
    reads the held-back ids of every key, then each one's queue (`origin`): two pipelined round
    trips after the key set, O(keys + held-back jobs). Fine for an admin's `queues`; the live
    poller never calls it (`stage_signatures` stays O(1) a queue)."""
    sets = [held for _, held in rq_adapter.rate_limited_keys(connection)]
    if not sets:
        return {}
    with connection.pipeline(transaction=False) as pipe:
        for held in sets:
            pipe.zrange(held, 0, -1)
        job_ids = [job_id.decode() for members in pipe.execute() for job_id in members]
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(job_key(job_id), "origin")
        origins = pipe.execute()
    counts: dict[str, int] = {}
    for origin in origins:
        if origin:
            counts[origin.decode()] = counts.get(origin.decode(), 0) + 1
    return counts


def workers(connection: Redis) -> list[WorkerInfo]:
    keys = sorted(k.decode() for k in connection.smembers(WORKERS_SET))  # type: ignore[union-attr]
    names = [key.removeprefix(WORKER_KEY_PREFIX) for key in keys]
    indexed = rq_adapter.HAS_RQ3  # RQ 3 keeps a worker's current job in its executions index
    with connection.pipeline(transaction=False) as pipe:
        for key, name in zip(keys, names, strict=True):
            pipe.hgetall(key)
            if (executions := rq_adapter.worker_executions_key(name)) is not None:
                pipe.smembers(executions)
        replies = pipe.execute()
    step = 2 if indexed else 1
    infos = []
    for index, name in enumerate(names):
        raw = replies[index * step]
        if not raw:
            continue  # registered but its hash expired: a dead worker RQ has not swept yet
        data = {k.decode(): v.decode() for k, v in raw.items()}
        if indexed and replies[index * step + 1]:
            data["current_job"] = rq_adapter.job_id_of_execution(min(replies[index * step + 1]))
        infos.append(
            WorkerInfo(
                name=name,
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


def heartbeats(connection: Redis) -> list[datetime]:
    """The last heartbeat of each registered worker whose hash has not expired (two round trips:
    the set, then one pipelined HGET each): what `/metrics` shows of workers, without their names."""
    keys = sorted(connection.smembers(WORKERS_SET))
    with connection.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hget(key, "last_heartbeat")
        replies = pipe.execute()
    return [utcparse(reply.decode()) for reply in replies if reply]


def job_owners(connection: Redis, job_ids: list[str]) -> dict[str, str | None]:
    """Who owns each job (`None`: nobody, or the job is gone), one pipelined HGET each."""
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(job_key(job_id), OWNER_FIELD)
        owners = pipe.execute()
    return {job_id: owner.decode() if owner else None for job_id, owner in zip(job_ids, owners, strict=True)}
