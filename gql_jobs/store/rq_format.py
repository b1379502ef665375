"""RQ's storage format for the jobs we create: the job hash and where the job id goes.

We write new jobs ourselves instead of through RQ's `Job.create` + `Queue.enqueue_job`, for two
reasons measured in the benchmarks (issue #7): building an RQ `Job` (serializer resolution, date
formatting, `to_dict`) was a tenth of a submission's CPU, and RQ can only write through a
*synchronous* pipeline, while the API's hot path runs on the event loop with an async client
(a thread hop per request cost more than the Redis round trip itself).

What we write is what RQ 2.x writes (`Job.to_dict()` with the JSON serializer, the queue list or
the scheduled registry, the `rq:queues` set), less the fields RQ writes as empty strings, plus our
owner field (for jobs that have an owner), which RQ ignores. RQ reads an absent field as an empty
one (`Job.restore` uses `obj.get`), and an empty field costs ~60 bytes of Redis memory for every
job stored (see `compact`). `tests/store/test_rq_format.py` holds this module to RQ's own output for
every option we use, and RQ's workers, `rq info` and `Job.fetch` read these jobs as their own.
Jobs with dependencies still go through RQ (`Queue.enqueue_job`), which must check their
dependencies under WATCH.
"""

from __future__ import annotations

import calendar
import itertools
import json
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from redis.typing import EncodableT, FieldT
from rq.job import Job
from rq.serializers import resolve_serializer

from gql_jobs.constants import OWNER_FIELD, SERIALIZER_NAME
from gql_jobs.domain import JobRecord, JobStatus, PreparedJob
from gql_jobs.store.keys import QUEUES_SET, job_key, queue_key, registry_key
from gql_jobs.store.script_batch import ScriptBatch

#: The serializer of every job we write and read, and of our workers (`rq worker -S json`).
SERIALIZER = resolve_serializer(SERIALIZER_NAME)

#: `rq.utils.utcformat`'s format.
RQ_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_time(text: str) -> datetime:
    """A time RQ wrote (`RQ_TIME_FORMAT`, or its older `%Y-%m-%dT%H:%M:%SZ`), as an aware UTC time.

    What `rq.utils.utcparse` reads, with `fromisoformat` (C, ~0.2 us) instead of `strptime` (~8 us
    in `_strptime`, a job has up to four times); both formats are ISO 8601 with a `Z`."""
    return datetime.fromisoformat(text).astimezone(UTC)


#: Fields `Job.to_dict` always writes, set (if ever) only when the job is created: callbacks and
#: RQ's job groups, which we do not use. Leaving them out when empty is safe on every later save,
#: as no stale value can be left behind (unlike `started_at` & co., which a requeue empties).
SET_ONCE_FIELDS = frozenset(
    {"success_callback_name", "failure_callback_name", "stopped_callback_name", "group_id"}
)


def compact(fields: dict[str, Any]) -> dict[str, Any]:
    """`Job.to_dict()`'s fields less the set-once ones that are empty (for jobs RQ saves again)."""
    return {k: v for k, v in fields.items() if v != "" or k not in SET_ONCE_FIELDS}


class CompactJob(Job):
    """RQ's job, saved without the empty set-once fields: for every RQ call that saves our jobs
    (the dependencies path, requeues, and workers through `worker.EventedJob`).

    `owner`, set on a job we create through RQ (the dependencies path), is saved with the job's
    first write, so the job is never stored without it, and nothing is stored before RQ writes
    the job. A job read back has none: RQ's later saves (HSET) leave the stored field alone."""

    owner: str | None = None

    def to_dict(self, include_meta: bool = True, include_result: bool = True) -> dict[str, Any]:
        fields = compact(super().to_dict(include_meta=include_meta, include_result=include_result))
        if self.owner is not None:
            fields[OWNER_FIELD] = self.owner
        return fields


def job_hash(job: PreparedJob) -> dict[FieldT, EncodableT]:
    """The fields of `rq:job:<id>` for a new job, as `Job.to_dict()` would write them."""
    moment = job.submitted_at.strftime(RQ_TIME_FORMAT)
    data = json.dumps([job.spec.func_path, None, [job.payload], {}])
    # Not written: `started_at`, `ended_at`, `last_heartbeat`, `worker_name` (the worker sets them)
    # and the `SET_ONCE_FIELDS`, all empty strings in RQ's own hash.
    fields: dict[FieldT, EncodableT] = {"created_at": moment, "data": zlib.compress(data.encode())}
    if job.retry_max:
        fields["retries_left"] = job.retry_max
        fields["retry_intervals"] = json.dumps(list(job.retry_intervals) or [0])
    fields["origin"] = job.queue
    fields["description"] = job.description
    if job.run_at is None:
        fields["enqueued_at"] = moment
    fields["timeout"] = job.timeout
    fields["result_ttl"] = job.result_ttl
    fields["failure_ttl"] = job.failure_ttl
    fields["status"] = initial_status(job).value
    fields["meta"] = json.dumps(job.meta)
    if job.owner is not None:
        fields[OWNER_FIELD] = job.owner
    return fields


def initial_status(job: PreparedJob) -> JobStatus:
    return JobStatus.QUEUED if job.run_at is None else JobStatus.SCHEDULED


def stage(jobs: Sequence[PreparedJob], pipe: ScriptBatch) -> None:
    """Add the writes that store jobs without dependencies and make them runnable (or scheduled).

    A hash per job, then per queue one `SADD` and one `RPUSH`/`LPUSH`/`ZADD` for all its jobs, in
    submission order (what RQ does job by job, in fewer commands: a batch costs ~1 per job)."""
    by_queue: dict[str, list[PreparedJob]] = {}
    for job in jobs:
        pipe.hset(job_key(job.job_id), mapping=job_hash(job))
        by_queue.setdefault(job.queue, []).append(job)
    for queue, queued in by_queue.items():
        pipe.sadd(QUEUES_SET, queue_key(queue))
        scheduled = {j.job_id: calendar.timegm(j.run_at.utctimetuple()) for j in queued if j.run_at}
        if scheduled:
            pipe.zadd(registry_key(JobStatus.SCHEDULED, queue), scheduled)
        for at_front, group in itertools.groupby((j for j in queued if not j.run_at), lambda j: j.at_front):
            ids = [j.job_id for j in group]
            if at_front:
                pipe.lpush(queue_key(queue), *ids)
            else:
                pipe.rpush(queue_key(queue), *ids)


def new_record(job: PreparedJob) -> JobRecord:
    """The record of a job just written by `stage`, from what was written (no read back)."""
    status = initial_status(job)
    return JobRecord(
        id=job.job_id,
        status=status,
        raw_status=status.value,
        task=job.spec.name,
        queue=job.queue,
        func_name=job.spec.func_path,
        payload=job.payload,
        meta=job.meta,
        tags=tuple(job.meta["tags"]),
        description=job.description,
        submitted_at=job.submitted_at.isoformat(),
        created_at=job.submitted_at,
        enqueued_at=job.submitted_at if job.run_at is None else None,
        started_at=None,
        ended_at=None,
        result=None,
        error=None,
        progress=None,
        retries_left=job.retry_max or None,
        depends_on=job.depends_on,
        timeout=job.timeout,
        result_ttl=job.result_ttl,
        failure_ttl=job.failure_ttl,
        worker_name=None,
        owner=job.owner,
    )
