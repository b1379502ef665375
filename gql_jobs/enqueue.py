"""Writing checked jobs to Redis in RQ's own layout, with their index entries, owner and event.

Part of the service layer (`JobService` drives it). Three paths:

* plain jobs: all staged on one MULTI/EXEC, so a batch is one round trip and all-or-nothing;
* jobs with dependencies: RQ must check them under WATCH, so each goes through `enqueue_job`;
* jobs with an idempotency key: WATCH the key, read it, then MULTI the key and the job together;
  a concurrent twin fails its EXEC, retries, and finds the key (so exactly one job is created).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError
from rq import Queue
from rq.job import Job, Retry

from gql_jobs import events, index
from gql_jobs.constants import IDEMPOTENCY_PREFIX, OWNER_FIELD
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
    def __init__(self, connection: Redis, settings: Settings) -> None:
        self.connection = connection
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
            )
            self._queues[name] = queue
        return queue

    def enqueue(self, jobs: list[PreparedJob]) -> dict[str, Submitted]:
        """Write the jobs; returns each one's outcome by the job id it was prepared with."""
        plain = [job for job in jobs if not job.depends_on and job.idempotency_key is None]
        outcomes: dict[str, Submitted] = {}
        if plain:
            with self.connection.pipeline(transaction=True) as pipe:
                rq_jobs = [self._stage(job, pipe) for job in plain]
                pipe.execute()
            self._await_replicas()
            outcomes.update(
                (job.job_id, Submitted(record_from_job(rq_job, owner=job.owner)))
                for job, rq_job in zip(plain, rq_jobs, strict=True)
            )
        for job in jobs:
            if job.idempotency_key is not None:
                outcomes[job.job_id] = self._enqueue_once(job)
            elif job.depends_on:
                outcomes[job.job_id] = Submitted(self._enqueue_with_dependencies(job))
        return outcomes

    def _stage(self, job: PreparedJob, pipe: Pipeline) -> Job:
        """Queue every write of one job (RQ's own calls, so RQ's key layout) on `pipe`."""
        queue = self.queue(job.queue)
        rq_job = self._create(queue, job)
        self._stage_extras(job, pipe)
        if job.run_at is not None:
            queue.schedule_job(rq_job, job.run_at, pipeline=pipe)  # registers the queue itself
        else:
            pipe.sadd(Queue.redis_queues_keys, queue.key)  # as enqueue_many does
            queue._enqueue_job(rq_job, pipeline=pipe, at_front=job.at_front)
        events.publish(pipe, events.of_rq_job(rq_job))
        return rq_job

    def _stage_extras(self, job: PreparedJob, pipe: Pipeline) -> None:
        """What RQ does not store: the owner (a field of RQ's job hash) and the index entries."""
        pipe.hset(Job.key_for(job.job_id), OWNER_FIELD, job.owner)
        keys = index.keys_for(job.queue, job.spec.name, job.meta["tags"], job.owner)
        index.add(pipe, job.job_id, job.score, keys, self.settings.index_retention)

    def _enqueue_with_dependencies(self, job: PreparedJob) -> JobRecord:
        queue = self.queue(job.queue)
        with self.connection.pipeline(transaction=True) as pipe:
            self._stage_extras(job, pipe)  # first: the job is never stored without its owner
            pipe.execute()
        rq_job = queue.enqueue_job(self._create(queue, job), at_front=job.at_front)
        events.publish(self.connection, events.of_rq_job(rq_job))
        return record_from_job(rq_job, owner=job.owner)

    def _enqueue_once(self, job: PreparedJob) -> Submitted:
        key = f"{IDEMPOTENCY_PREFIX}{job.owner}:{job.idempotency_key}"
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
                    rq_job = self._stage(job, pipe)
                    pipe.execute()
                    self._await_replicas()
                    return Submitted(record_from_job(rq_job, owner=job.owner))
                except WatchError:
                    continue  # a twin got there first: look again
        raise ServiceUnavailableError("Too much contention on this idempotency key; retry")

    def _await_replicas(self) -> None:
        """With `redis_wait_replicas`, acknowledge only what that many replicas also hold.

        If they do not confirm in time the job may still exist on the master: the client gets a
        503 and must retry with the same idempotency key to be sure of exactly one job.
        """
        wanted = self.settings.redis_wait_replicas
        if wanted and int(self.connection.wait(wanted, self.settings.redis_wait_timeout_ms)) < wanted:
            raise ServiceUnavailableError(
                "The job was not confirmed by enough Redis replicas in time; retry with its idempotency key"
            )

    def _earlier(self, job: PreparedJob, existing: bytes | str) -> JobRecord | None:
        """The job an idempotency key already stands for; `None` if it has since expired."""
        text = existing.decode() if isinstance(existing, bytes) else existing
        fingerprint, _, job_id = text.partition("|")
        if fingerprint != job.fingerprint:
            raise IdempotencyConflictError(job.idempotency_key or "")
        return read_jobs(self.connection, [job_id])[0]

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
            # An empty interval list makes RQ 2.12 fail with IndexError when it retries: say 0 instead.
            retry=Retry(max=job.retry_max, interval=list(job.retry_intervals) or 0)
            if job.retry_max
            else None,
        )
