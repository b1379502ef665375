"""The job service: the one place that does job work against RQ and Redis.

REST routes, GraphQL resolvers and the CLI call this and nothing else. It takes and returns plain
domain objects (`gql_jobs.domain`) and raises domain exceptions (`gql_jobs.errors`); it knows
nothing of HTTP or GraphQL. Every method is synchronous (RQ is), so async callers hand it to a
thread (`gql_jobs.deps.run_sync`). Any Redis connection failure surfaces as
`ServiceUnavailableError`, raised before anything was half-written (writes are MULTI/EXEC).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, Retry
from rq.registry import CanceledJobRegistry, FailedJobRegistry

from gql_jobs import events, index, inventory
from gql_jobs.constants import INDEX_ALL
from gql_jobs.domain import (
    EventKind,
    JobFilter,
    JobRecord,
    JobStatus,
    Page,
    PageRequest,
    QueueInfo,
    SubmitRequest,
    TaskInfo,
    WorkerInfo,
)
from gql_jobs.errors import (
    BatchTooLargeError,
    GqlJobsError,
    InvalidJobStateError,
    InvalidRequestError,
    JobNotFoundError,
    ServiceUnavailableError,
)
from gql_jobs.settings import Settings
from gql_jobs.snapshots import SERIALIZER, read_jobs, record_from_job, results_key
from gql_jobs.submission import PreparedJob, is_valid_job_id, prepare
from gql_jobs.tasks import TaskRegistry

P = ParamSpec("P")
T = TypeVar("T")

CANCELABLE = frozenset({JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED})
REQUEUEABLE = frozenset({JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})
#: How long `cancel` waits for a worker to confirm it stopped a running job.
STOP_CONFIRM_SECONDS = 3.0
#: How many index entries one page may examine when filters must be checked on the jobs themselves.
SCAN_BUDGET = 2000


def _redis_guard(method: Callable[P, T]) -> Callable[P, T]:
    """Turn "Redis is unreachable" into the domain's `ServiceUnavailableError`."""

    @functools.wraps(method)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            raise ServiceUnavailableError() from exc

    return guarded


class JobService:
    """Submit, read, list and manage jobs. One instance per process; thread-safe."""

    def __init__(self, connection: Redis, registry: TaskRegistry, settings: Settings) -> None:
        self.connection = connection
        self.registry = registry
        self.settings = settings
        self._queues: dict[str, Queue] = {}

    # -- submitting -------------------------------------------------------------------------------

    @_redis_guard
    def submit(self, request: SubmitRequest) -> JobRecord:
        """Validate and enqueue one job (one round trip unless it has dependencies)."""
        result = self.submit_many([request])[0]
        if isinstance(result, GqlJobsError):
            raise result
        return result

    @_redis_guard
    def submit_many(self, requests: Sequence[SubmitRequest]) -> list[JobRecord | GqlJobsError]:
        """Validate each request; enqueue the valid ones together (one MULTI/EXEC round trip).

        Returns one outcome per request, in order: the job, or the error that kept it out. Jobs
        with dependencies are the exception to the single round trip: RQ checks dependencies
        under WATCH, so each costs its own.
        """
        if len(requests) > self.settings.max_batch_size:
            raise BatchTooLargeError(self.settings.max_batch_size, len(requests))
        slots: list[PreparedJob | GqlJobsError] = []
        for request in requests:
            try:
                slots.append(prepare(request, self.registry, self.settings))
            except GqlJobsError as exc:
                slots.append(exc)
        prepared = [slot for slot in slots if isinstance(slot, PreparedJob)]
        missing = self._missing_dependencies(prepared)
        records = {
            record.id: record for record in self._enqueue([j for j in prepared if j.job_id not in missing])
        }
        return [
            (records[slot.job_id] if slot.job_id in records else JobNotFoundError(missing[slot.job_id]))
            if isinstance(slot, PreparedJob)
            else slot
            for slot in slots
        ]

    def _missing_dependencies(self, prepared: list[PreparedJob]) -> dict[str, str]:
        """Job id -> the first dependency of it that does not exist."""
        wanted = sorted({dep for job in prepared for dep in job.depends_on})
        if not wanted:
            return {}
        with self.connection.pipeline(transaction=False) as pipe:
            for dep in wanted:
                pipe.exists(Job.key_for(dep))
            found = dict(zip(wanted, pipe.execute(), strict=True))
        missing = {}
        for job in prepared:
            absent = next((dep for dep in job.depends_on if not found[dep]), None)
            if absent is not None:
                missing[job.job_id] = absent
        return missing

    def _enqueue(self, jobs: list[PreparedJob]) -> list[JobRecord]:
        simple = [job for job in jobs if not job.depends_on]
        records: list[JobRecord] = []
        if simple:
            with self.connection.pipeline(transaction=True) as pipe:
                rq_jobs = [self._stage(job, pipe) for job in simple]
                pipe.execute()
            records.extend(record_from_job(rq_job) for rq_job in rq_jobs)
        for job in jobs:
            if job.depends_on:
                records.append(self._enqueue_with_dependencies(job))
        return records

    def _stage(self, job: PreparedJob, pipe: Pipeline) -> Job:
        """Queue the writes for one job (RQ's own calls, so RQ's key layout) on `pipe`."""
        queue = self._queue(job.queue)
        rq_job = self._create(queue, job)
        index.add(pipe, job.job_id, _score(job), self._index_keys(job), self.settings.index_retention)
        if job.run_at is not None:
            queue.schedule_job(rq_job, job.run_at, pipeline=pipe)  # registers the queue itself
        else:
            pipe.sadd(Queue.redis_queues_keys, queue.key)  # as enqueue_many does
            queue._enqueue_job(rq_job, pipeline=pipe, at_front=job.at_front)
        events.publish(pipe, events.of_rq_job(rq_job))
        return rq_job

    def _enqueue_with_dependencies(self, job: PreparedJob) -> JobRecord:
        queue = self._queue(job.queue)
        with self.connection.pipeline(transaction=True) as pipe:
            index.add(pipe, job.job_id, _score(job), self._index_keys(job), self.settings.index_retention)
            pipe.execute()
        rq_job = queue.enqueue_job(self._create(queue, job), at_front=job.at_front)
        events.publish(self.connection, events.of_rq_job(rq_job))
        return record_from_job(rq_job)

    def _create(self, queue: Queue, job: PreparedJob) -> Job:
        return queue.create_job(
            job.spec.func_path,
            args=(job.payload,),
            timeout=job.timeout,
            result_ttl=job.result_ttl,
            failure_ttl=job.failure_ttl,
            description=job.description,
            depends_on=list(job.depends_on) or None,
            job_id=job.job_id,
            meta=job.meta,
            retry=Retry(max=job.retry_max, interval=list(job.retry_intervals)) if job.retry_max else None,
        )

    def _index_keys(self, job: PreparedJob) -> list[str]:
        return index.keys_for(job.queue, job.spec.name, job.meta["tags"])

    def _queue(self, name: str) -> Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = Queue(
                name,
                connection=self.connection,
                serializer=SERIALIZER,
                default_timeout=self.settings.default_timeout,
            )
            self._queues[name] = queue
        return queue

    # -- reading ----------------------------------------------------------------------------------

    @_redis_guard
    def get(self, job_id: str) -> JobRecord:
        record = self.get_many([job_id])[0]
        if record is None:
            raise JobNotFoundError(job_id)
        return record

    @_redis_guard
    def get_many(self, job_ids: Sequence[str]) -> list[JobRecord | None]:
        """Read jobs in one round trip; malformed ids are simply not found (they never reach Redis)."""
        valid = [job_id for job_id in dict.fromkeys(job_ids) if is_valid_job_id(job_id)]
        found = dict(zip(valid, read_jobs(self.connection, valid), strict=True))
        return [found.get(job_id) for job_id in job_ids]

    @_redis_guard
    def list_jobs(self, job_filter: JobFilter, page: PageRequest) -> Page:
        """One page of jobs, newest first. See `gql_jobs.index` for the cost model."""
        backwards = page.last is not None and page.first is None
        size = self._page_size(page.last if backwards else page.first)
        cursor = page.before if backwards else page.after
        start = index.Position.decode(cursor) if cursor else None
        key = index.base_key(job_filter)
        matches: list[tuple[index.Position, JobRecord]] = []
        examined = 0
        exhausted = False
        while len(matches) <= size and examined < SCAN_BUDGET:
            want = size + 1 - len(matches)
            fetch = index.newer_than if backwards else index.older_than
            positions = fetch(self.connection, key, start, want)
            if not positions:
                exhausted = True
                break
            records = read_jobs(self.connection, [p.job_id for p in positions])
            self._prune(key, [p for p, r in zip(positions, records, strict=True) if r is None])
            matches.extend(
                (p, r)
                for p, r in zip(positions, records, strict=True)
                if r is not None and _matches(r, job_filter)
            )
            examined += len(positions)
            start = positions[-1]
            if len(positions) < want:
                exhausted = True
                break
        more = len(matches) > size or not exhausted
        window = matches[:size]
        if backwards:
            window.reverse()
        items = [(p.encode(), r) for p, r in window]
        return Page(
            items=items,
            has_next_page=(cursor is not None) if backwards else more,
            has_previous_page=more if backwards else (cursor is not None),
            total_count=None,
        )

    def _page_size(self, requested: int | None) -> int:
        size = self.settings.max_page_size if requested is None else requested
        if not 0 <= size <= self.settings.max_page_size:
            raise InvalidRequestError("first/last", f"must be between 0 and {self.settings.max_page_size}")
        return size

    def _prune(self, key: str, gone: list[index.Position]) -> None:
        if gone:
            with self.connection.pipeline(transaction=False) as pipe:
                for position in gone:
                    index.remove(pipe, position.job_id, [key, INDEX_ALL])
                pipe.execute()

    @_redis_guard
    def count_jobs(self, job_filter: JobFilter) -> int | None:
        """Count matching jobs where that is cheap; `None` where it would mean reading every job."""
        if job_filter.status is None:
            if sum(1 for v in (job_filter.queue, job_filter.task, job_filter.tag) if v) > 1:
                return None
            return int(self.connection.zcard(index.base_key(job_filter)))
        if job_filter.task or job_filter.tag or job_filter.status not in inventory.COUNTABLE:
            return None
        queues = [job_filter.queue] if job_filter.queue else inventory.queue_names(self.connection)
        counts = inventory.status_counts(self.connection, queues)
        return sum(per_queue.get(job_filter.status, 0) for per_queue in counts.values())

    @_redis_guard
    def position(self, record: JobRecord) -> int | None:
        """0-based place of a queued job in its queue (O(queue length): ask only when shown)."""
        if record.status != JobStatus.QUEUED:
            return None
        place = self.connection.lpos(self._queue(record.queue).key, record.id)
        return int(place) if place is not None else None  # type: ignore[arg-type]

    # -- managing ---------------------------------------------------------------------------------

    @_redis_guard
    def cancel(self, job_id: str) -> JobRecord:
        """Cancel a waiting job; stop a running one (its worker kills the work horse)."""
        record = self.get(job_id)
        rq_job = self._fetch(job_id)
        if record.status in CANCELABLE:
            try:
                rq_job.cancel()
            except InvalidJobOperation:
                raise InvalidJobStateError(job_id, JobStatus.CANCELED.value, "cancel") from None
        elif record.status == JobStatus.STARTED:
            try:
                send_stop_job_command(self.connection, job_id, serializer=SERIALIZER)
            except InvalidJobOperation:
                raise InvalidJobStateError(job_id, record.status.value, "cancel") from None
            return self._await_final(job_id)
        else:
            raise InvalidJobStateError(job_id, record.status.value, "cancel")
        return self._announce(self.get(job_id))

    def _announce(self, record: JobRecord) -> JobRecord:
        """Publish a status event for a transition made by RQ calls we cannot pipeline into."""
        events.publish(self.connection, events.of_record(record))
        return record

    def _await_final(self, job_id: str) -> JobRecord:
        deadline = time.monotonic() + STOP_CONFIRM_SECONDS
        record = self.get(job_id)
        while not record.status.is_final and time.monotonic() < deadline:
            time.sleep(0.05)
            record = self.get(job_id)
        return record

    @_redis_guard
    def requeue(self, job_id: str) -> JobRecord:
        """Put a failed, stopped or canceled job back on its queue."""
        record = self.get(job_id)
        if record.status not in REQUEUEABLE:
            raise InvalidJobStateError(job_id, record.status.value, "requeue")
        rq_job = self._fetch(job_id)
        registry_class = CanceledJobRegistry if record.status == JobStatus.CANCELED else FailedJobRegistry
        registry = registry_class(record.queue, connection=self.connection, serializer=SERIALIZER)
        try:
            registry.requeue(rq_job)
        except InvalidJobOperation:
            # Not in the registry we expected (e.g. a stopped job RQ left elsewhere): enqueue directly.
            self._queue(record.queue)._enqueue_job(rq_job)
        return self._announce(self.get(job_id))

    @_redis_guard
    def delete(self, job_id: str) -> str:
        """Delete a job that is not running, with its results and index entries."""
        record = self.get(job_id)
        if record.status == JobStatus.STARTED:
            raise InvalidJobStateError(job_id, record.status.value, "delete")
        rq_job = self._fetch(job_id)
        with self.connection.pipeline(transaction=True) as pipe:
            rq_job.delete(pipeline=pipe)
            pipe.delete(results_key(job_id))
            index.remove(pipe, job_id, index.keys_for(record.queue, record.task, record.tags))
            events.publish(pipe, events.of_record(record, EventKind.DELETED))
            pipe.execute()
        return job_id

    def _fetch(self, job_id: str) -> Job:
        try:
            return Job.fetch(job_id, connection=self.connection, serializer=SERIALIZER)
        except NoSuchJobError:
            raise JobNotFoundError(job_id) from None

    # -- the system around the jobs -----------------------------------------------------------------

    def tasks(self) -> list[TaskInfo]:
        return [TaskInfo(s.name, s.description, s.input_schema()) for s in self.registry.specs()]

    @_redis_guard
    def queues(self) -> list[QueueInfo]:
        names = inventory.queue_names(self.connection)
        counts = inventory.status_counts(self.connection, names)
        return [QueueInfo(name, counts[name]) for name in names]

    @_redis_guard
    def workers(self) -> list[WorkerInfo]:
        return inventory.workers(self.connection)

    @_redis_guard
    def ping(self) -> bool:
        return bool(self.connection.ping())


def _score(job: PreparedJob) -> int:
    return int(job.submitted_at.timestamp() * 1_000_000)


def _matches(record: JobRecord, job_filter: JobFilter) -> bool:
    return (
        (job_filter.status is None or record.status == job_filter.status)
        and (job_filter.queue is None or record.queue == job_filter.queue)
        and (job_filter.task is None or record.task == job_filter.task)
        and (job_filter.tag is None or job_filter.tag in record.tags)
    )
