"""Writing checked jobs to Redis in RQ's own layout, with their index entries, owner and event.

Part of the service layer (`JobService` drives it). Three paths:

* plain jobs: all staged on one MULTI/EXEC (written in RQ's format by `rq_format`), so a batch is
  one round trip and all-or-nothing; on the event loop this path uses the async client;
* jobs with dependencies: RQ must check them under WATCH, so each goes through `enqueue_job`;
* jobs with an idempotency key: WATCH the key, read it, then MULTI the key and the job together;
  a concurrent twin fails its EXEC, retries, and finds the key (so exactly one job is created).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.client import Pipeline
from redis.exceptions import WatchError
from rq import Queue
from rq.job import Job, Retry

from gql_jobs import events, index, rq_format
from gql_jobs.auth import ANONYMOUS
from gql_jobs.concurrency import run_sync
from gql_jobs.connections import deadline
from gql_jobs.constants import IDEMPOTENCY_PREFIX
from gql_jobs.domain import JobRecord
from gql_jobs.errors import IdempotencyConflictError, ServiceUnavailableError
from gql_jobs.settings import Settings
from gql_jobs.snapshots import SERIALIZER, read_jobs, record_from_job
from gql_jobs.submission import PreparedJob

#: Attempts at an idempotent submission before giving up (each lost race costs one).
MAX_WATCH_ATTEMPTS = 20


@dataclass(frozen=True)
class Submitted:
    """A submission's outcome: the job, and whether it is an earlier one returned again."""

    record: JobRecord
    deduplicated: bool = False


class Enqueuer:
    """Writes jobs. `enqueue` is synchronous; `enqueue_async` does the same on the event loop,
    with the async client, for the jobs that take one MULTI/EXEC (the rest go to a thread)."""

    def __init__(
        self, connection: Redis, settings: Settings, async_connection: AsyncRedis | None = None
    ) -> None:
        self.connection = connection
        self.async_connection = async_connection
        self.settings = settings
        self._queues: dict[str, Queue] = {}

    def queue(self, name: str) -> Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = Queue(
                name,
                connection=self.connection,
                serializer=SERIALIZER,
                default_timeout=self.settings.default_timeout,
                job_class=rq_format.CompactJob,
            )
            self._queues[name] = queue
        return queue

    def enqueue(self, jobs: list[PreparedJob]) -> dict[str, Submitted]:
        """Write the jobs; returns each one's outcome by the job id it was prepared with."""
        plain, special = _split(jobs)
        outcomes: dict[str, Submitted] = {}
        if plain:
            records = [rq_format.new_record(job) for job in plain]
            with self.connection.pipeline(transaction=True) as pipe:
                self._stage(plain, records, pipe)
                pipe.execute()
            self._await_replicas()
            outcomes.update((record.id, Submitted(record)) for record in records)
        outcomes.update(self._enqueue_special(special))
        return outcomes

    async def enqueue_async(self, jobs: list[PreparedJob]) -> dict[str, Submitted]:
        """`enqueue` without blocking the event loop (no thread at all for plain jobs)."""
        if self.async_connection is None:
            return await run_sync(self.enqueue, jobs)
        plain, special = _split(jobs)
        outcomes: dict[str, Submitted] = {}
        if plain:
            records = [rq_format.new_record(job) for job in plain]
            async with deadline(self.settings), self.async_connection.pipeline(transaction=True) as pipe:
                self._stage(plain, records, pipe)
                await pipe.execute()
            wanted = self.settings.redis_wait_replicas
            if wanted:
                waited = self.settings.redis_wait_timeout_ms / 1000
                async with deadline(self.settings, extra_seconds=waited):
                    confirmed = await self.async_connection.wait(wanted, self.settings.redis_wait_timeout_ms)
                _check_replicas(int(confirmed), wanted)
            outcomes.update((record.id, Submitted(record)) for record in records)
        if special:
            outcomes.update(await run_sync(self._enqueue_special, special))
        return outcomes

    def _enqueue_special(self, jobs: list[PreparedJob]) -> dict[str, Submitted]:
        """Jobs that cost round trips of their own: idempotency keys and dependencies."""
        outcomes: dict[str, Submitted] = {}
        for job in jobs:
            if job.idempotency_key is not None:
                outcomes[job.job_id] = self._enqueue_once(job)
            else:
                outcomes[job.job_id] = Submitted(self._enqueue_with_dependencies(job))
        return outcomes

    def _stage(
        self, jobs: list[PreparedJob], records: list[JobRecord], pipe: Pipeline | AsyncPipeline
    ) -> None:
        """Queue every write of jobs without dependencies on `pipe` (RQ's layout, our extras);
        `records` are the jobs' `rq_format.new_record`s, for their events."""
        rq_format.stage(jobs, pipe)
        self._stage_index(jobs, pipe)
        events.publish(pipe, *(events.of_record(record) for record in records))

    def _stage_index(self, jobs: list[PreparedJob], pipe: Pipeline | AsyncPipeline) -> None:
        """The whole batch's index entries, in one command (`index.append`)."""
        entries: dict[str, list[bytes]] = {}
        for job in jobs:
            member = index.member(job.job_id)
            for key in index.streams_for(job.queue, job.spec.name, job.meta["tags"], job.owner):
                entries.setdefault(key, []).append(member)
        index.append(pipe, entries, self.settings.index_retention)

    def _enqueue_with_dependencies(self, job: PreparedJob) -> JobRecord:
        queue = self.queue(job.queue)
        with self.connection.pipeline(transaction=True) as pipe:
            self._stage_index([job], pipe)
            pipe.execute()
        rq_job = queue.enqueue_job(self._create(queue, job), at_front=job.at_front)
        events.publish(self.connection, events.of_rq_job(rq_job))
        return record_from_job(rq_job, owner=job.owner)

    def _enqueue_once(self, job: PreparedJob) -> Submitted:
        key = f"{IDEMPOTENCY_PREFIX}{job.owner or ANONYMOUS.name}:{job.idempotency_key}"
        claim = f"{job.fingerprint}|{job.job_id}"
        for _ in range(MAX_WATCH_ATTEMPTS):
            with self.connection.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    existing = pipe.get(key)
                    if existing is not None:
                        earlier = self._earlier(job, existing)
                        if earlier is not None:
                            return Submitted(earlier, deduplicated=True)
                    pipe.multi()
                    pipe.set(key, claim, ex=self.settings.idempotency_ttl)
                    record = rq_format.new_record(job)
                    self._stage([job], [record], pipe)
                    pipe.execute()
                    self._await_replicas()
                    return Submitted(record)
                except WatchError:
                    continue  # a twin got there first: look again
        raise ServiceUnavailableError("Too much contention on this idempotency key; retry")

    def _await_replicas(self) -> None:
        """With `redis_wait_replicas`, acknowledge only what that many replicas also hold.

        If they do not confirm in time the job may still exist on the master: the client gets a
        503 and must retry with the same idempotency key to be sure of exactly one job.
        """
        wanted = self.settings.redis_wait_replicas
        if wanted:
            _check_replicas(int(self.connection.wait(wanted, self.settings.redis_wait_timeout_ms)), wanted)

    def _earlier(self, job: PreparedJob, existing: bytes | str) -> JobRecord | None:
        """The job an idempotency key already stands for; `None` if it has since expired."""
        text = existing.decode() if isinstance(existing, bytes) else existing
        fingerprint, _, job_id = text.partition("|")
        if fingerprint != job.fingerprint:
            raise IdempotencyConflictError(job.idempotency_key or "")
        return read_jobs(self.connection, [job_id])[0]

    def _create(self, queue: Queue, job: PreparedJob) -> Job:
        """An RQ job object, for the dependencies path (RQ checks them), saved with its owner."""
        rq_job = queue.create_job(
            job.spec.func_path,
            args=(job.payload,),
            timeout=job.timeout,
            result_ttl=job.result_ttl,
            failure_ttl=job.failure_ttl,
            description=job.description,
            depends_on=list(job.depends_on) or None,
            job_id=job.job_id,
            meta=job.meta,
            # An empty interval list makes RQ 2.12 fail with IndexError when it retries: say 0 instead.
            retry=Retry(max=job.retry_max, interval=list(job.retry_intervals) or 0)
            if job.retry_max
            else None,
        )
        assert isinstance(rq_job, rq_format.CompactJob)  # the queue's job class
        rq_job.owner = job.owner
        return rq_job


def _split(jobs: list[PreparedJob]) -> tuple[list[PreparedJob], list[PreparedJob]]:
    """Jobs that go in one MULTI/EXEC, and those that need round trips of their own."""
    plain = [job for job in jobs if not job.depends_on and job.idempotency_key is None]
    return plain, [job for job in jobs if job.depends_on or job.idempotency_key is not None]


def _check_replicas(confirmed: int, wanted: int) -> None:
    if confirmed < wanted:
        raise ServiceUnavailableError(
            "The job was not confirmed by enough Redis replicas in time; retry with its idempotency key"
        )
