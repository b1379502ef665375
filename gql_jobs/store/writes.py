"""Writing checked jobs to Redis in RQ's own layout, with their index entries, owner and event.

Part of the store (`service.jobs.JobService` drives it). Three paths:

* plain jobs: all in one write script (`script_batch`: atomic as a MULTI/EXEC, cheaper to send;
  written in RQ's format by `rq_format`), so a batch is one round trip, refused whole or stored
  whole (a command failing as it runs is answered "outcome unknown": see `_writing`), sent on the
  event loop with the async client;
* jobs with dependencies or a concurrency limit: RQ must check the dependencies under WATCH,
  and on RQ 3 file a limited job under its key and promote it in a Lua script, so each goes
  through `enqueue_job` (`schedule_job` when scheduled), with RQ's synchronous client on a store
  thread (`threads.in_thread`);
* jobs with an idempotency key: WATCH the key, read it, then MULTI the key and the job together;
  a concurrent twin fails its EXEC, retries, and finds the key (so exactly one job is created).
  On a store thread too: the synchronous client under WATCH raises instead of resending (below).
  Scheduled jobs take this path too, and it never relies on RQ's `unique`, which RQ 2 silently
  ignores for `enqueue_at`/`enqueue_in` (RQ 3 honours it): our key decides, on both.

With `redis_wait_replicas`, every path then sends WAIT on the connection that wrote (`_send_once`,
`Enqueuer._wait_here`): Redis counts the replicas holding that connection's writes.

Every job of a batch gets its own outcome: the job, or the error that kept it out (a key reused
for another request fails that item alone). When Redis fails, what the client is told depends
on whether the write was sent: a failure before (refused, or no connection in time) leaves
nothing written (`ServiceUnavailableError`); one after (a timeout, a connection lost before the
reply, replicas not confirming) may have stored the job (`SubmissionOutcomeUnknownError`, to be
settled by a retry with the same idempotency key). Jobs of the batch after the failure are not
attempted. Nor is a write resent after a timeout: Redis applies a resent write twice when
the first copy was only slow (the synchronous client's retry did so: a 0.7 s stall against a
0.5 s timeout stored a job twice and answered success), so the synchronous paths WATCH (redis-py
then raises instead of resending) and the async client has no read timeout (`deadline` cancels).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.connection import AbstractConnection as AsyncConnection
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelConnectionPool
from redis.client import Pipeline
from redis.exceptions import BusyLoadingError, ReadOnlyError, RedisError, ResponseError, WatchError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.typing import EncodableT
from rq import Queue
from rq.job import Job, Retry

from gql_jobs import tracing
from gql_jobs.auth import ANONYMOUS
from gql_jobs.constants import IDEMPOTENCY_PREFIX, MAX_WATCH_ATTEMPTS
from gql_jobs.domain import JobRecord, Outcome, PreparedJob, Submitted
from gql_jobs.errors import (
    NOT_ATTEMPTED,
    UNAVAILABLE,
    GqlJobsError,
    IdempotencyConflictError,
    ServiceUnavailableError,
    SubmissionOutcomeUnknownError,
)
from gql_jobs.settings import Settings
from gql_jobs.store import events, listing_index, rq_adapter, rq_format, script_batch, stats
from gql_jobs.store.connections import deadline, pack_commands
from gql_jobs.store.guard import REDIS_FAILURES
from gql_jobs.store.reads import read_jobs_on_thread, record_from_job
from gql_jobs.store.rq_format import SERIALIZER
from gql_jobs.store.script_batch import ScriptBatch
from gql_jobs.store.threads import in_thread

log = logging.getLogger(__name__)

#: Why a job was not written when Redis refused it.
REFUSED = "The job store (Redis) refused the write (out of memory, or read-only); nothing was written"
#: Why a write's outcome is unknown when Redis failed one of its commands as it ran them.
FAILED_AS_IT_RAN = "Redis failed part of the write as it ran it; the job may be stored"
#: Why a write's outcome is unknown when replicas did not confirm it.
UNCONFIRMED = "The job was stored on the Redis master but not confirmed by enough replicas in time"


class _DemotedMasterError(Exception):
    """The write went to a master demoted to a replica since its connection was made (raised
    from the refusal): nothing was written, and that connection is closed."""


class _WriteError(Exception):
    """Redis failed while writing `jobs`; `sent` says whether the write may have reached it."""

    def __init__(self, jobs: list[PreparedJob], *, sent: bool, reason: str | None = None) -> None:
        super().__init__(reason)
        self.jobs = jobs
        self.sent = sent
        self.reason = reason

    def settle(self, batch: list[PreparedJob], outcomes: dict[str, Outcome]) -> None:
        """Give every job of `batch` not yet settled its answer: maybe stored, or not written."""
        concerned = {job.job_id for job in self.jobs}
        if self.sent:
            log.warning("Redis failed after %d submitted job(s) were sent: outcome unknown", len(concerned))
        for job in batch:
            if job.job_id in outcomes:
                continue
            if job.job_id not in concerned:
                outcomes[job.job_id] = ServiceUnavailableError(NOT_ATTEMPTED)
            elif self.sent:
                outcomes[job.job_id] = SubmissionOutcomeUnknownError(job.job_id, self.reason)
            else:
                outcomes[job.job_id] = ServiceUnavailableError(self.reason or UNAVAILABLE)


@dataclass
class _Progress:
    """How far a write got: once `sent`, a Redis failure may have left the job stored."""

    sent: bool = False


@contextmanager
def _writing(
    jobs: list[PreparedJob], *, sent: bool = False, reason: str | None = None
) -> Iterator[_Progress]:
    """Turn Redis failing inside into `_WriteError` for `jobs`, sent or not as the caller marked
    it by then (a mark, not a nested block: cleaning up a pipeline may itself fail).

    A refusal (over `maxmemory`, or a read-only replica: `script_batch.refusal`) wrote nothing,
    sent or not; with Sentinel, redis-py words a replica's refusal as a lost connection ("the
    previous master is now a slave"), read here as the refusal it is. Any other error Redis
    answers once the write is sent (a key of the wrong type, put there by something else) may have
    left part of it applied: the job's outcome is unknown, not a server error."""
    progress = _Progress(sent)
    try:
        yield progress
    except (*REDIS_FAILURES, RedisError) as exc:
        if _refusal(exc) is not None:
            raise _WriteError(jobs, sent=False, reason=REFUSED) from exc
        if isinstance(exc, REDIS_FAILURES):
            raise _WriteError(jobs, sent=progress.sent, reason=reason) from exc
        if not progress.sent:
            raise
        log.error("Redis failed a write of %d job(s) as it ran: %r", len(jobs), exc)
        raise _WriteError(jobs, sent=True, reason=FAILED_AS_IT_RAN) from exc


def _refusal(exc: BaseException) -> str | None:
    """How Redis refused the write, if it did (nothing of it applied), however the client words
    it: a refusal's code (`script_batch.refusal`), `LOADING` (Redis still loading its data answers
    so before running anything), or `READONLY` for redis-py's Sentinel connection, which words a
    replica's refusal as a lost connection."""
    if isinstance(exc, BusyLoadingError):
        return "LOADING"
    if isinstance(exc, RedisConnectionError):
        return "READONLY" if isinstance(exc.__context__, ReadOnlyError) else None
    return script_batch.refusal(exc) if isinstance(exc, ResponseError) else None


async def _read_replies(connection: AsyncConnection, count: int) -> list[Any]:
    """The replies to `count` commands sent together, every one read even when one is an error
    (then raised): a reply left unread would be the next caller's."""
    replies: list[Any] = []
    error: ResponseError | None = None
    for _ in range(count):
        try:
            replies.append(await connection.read_response())
        except ResponseError as exc:
            error = error or exc
            replies.append(exc)
    if error is not None:
        raise error
    return replies


class Enqueuer:
    """Writes jobs: plain ones on the event loop with the async client; those that cost round
    trips of their own (dependencies, idempotency keys) with RQ's synchronous client on a store
    thread (`threads.in_thread`), one thread call each."""

    def __init__(self, connection: Redis, async_connection: AsyncRedis, settings: Settings) -> None:
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

    async def enqueue(self, jobs: list[PreparedJob]) -> dict[str, Outcome]:
        """Write the jobs; returns each one's outcome by the job id it was prepared with."""
        plain, special = _split(jobs)
        outcomes: dict[str, Outcome] = {}
        try:
            if plain:
                outcomes.update(await self._enqueue_plain(plain))
            for job in special:
                outcomes[job.job_id] = await self._enqueue_special(job)
        except _WriteError as failure:
            failure.settle(jobs, outcomes)
        return outcomes

    async def _enqueue_plain(self, jobs: list[PreparedJob]) -> dict[str, Outcome]:
        """One write script (`plain_batch`), then WAIT with `redis_wait_replicas`, in one round
        trip (`_send_once`), packed before anything is sent (the largest batch takes ~0.2 s);
        sent once more, on another connection, if a demoted master refused it."""
        records = [rq_format.new_record(job) for job in jobs]
        batch = plain_batch(jobs, records, self.settings.index_retention)
        commands: list[Sequence[EncodableT]] = [batch.command()]
        wanted = self.settings.redis_wait_replicas
        if wanted:
            commands.append(("WAIT", wanted, self.settings.redis_wait_timeout_ms))
        packed = pack_commands(commands)
        wait_seconds = self.settings.redis_wait_timeout_ms / 1000 if wanted else 0.0
        with tracing.redis_call("EVAL", batch.commands):
            try:
                replies = await self._send_once(jobs, packed, len(commands), wait_seconds)
            except _DemotedMasterError:
                await self._find_master(jobs)
                try:
                    replies = await self._send_once(jobs, packed, len(commands), wait_seconds)
                except _DemotedMasterError as demoted:  # the new connection met a replica too
                    raise _WriteError(jobs, sent=False, reason=REFUSED) from demoted.__cause__
        if wanted:
            _check_confirmed(jobs, int(replies[-1]), wanted)
        return {record.id: Submitted(record) for record in records}

    async def _send_once(
        self, jobs: list[PreparedJob], packed: list[bytes], count: int, wait_seconds: float
    ) -> list[Any]:
        """Send `count` packed commands together on one connection of the pool and read their
        replies; never resent (the client's pipeline retries a lost connection, and Redis may then
        apply a write twice: a job queued twice runs twice). WAIT counts the replicas holding the
        writes of the connection it is sent on, hence one connection for both.

        The connection is taken and checked (redis-py's PING when idle long) before anything is
        marked sent; `deadline` bounds the whole, since the async client has no read timeout (a
        cancelled read closes its connection), and the connection goes back to the pool outside it
        (a release cut short would leave the pool a connection short). A master demoted since the
        connection was made refused the write: that connection is closed (with Sentinel the next
        one asks for the master again) and `_DemotedMasterError` says so."""
        pool = self.async_connection.connection_pool
        connection: AsyncConnection | None = None
        try:
            with _writing(jobs) as progress:
                async with deadline(self.settings, extra_seconds=wait_seconds):
                    connection = await pool.get_connection()  # type: ignore[no-untyped-call]
                    await connection.check_health()
                    progress.sent = True
                    try:
                        await connection.send_packed_command(packed, check_health=False)
                        return await _read_replies(connection, count)
                    except (RedisConnectionError, ResponseError) as exc:
                        if _refusal(exc) != "READONLY":  # a master demoted since
                            raise
                        await connection.disconnect(nowait=True)
                        raise _DemotedMasterError from exc
        finally:
            if connection is not None:
                await pool.release(connection)

    async def _find_master(self, jobs: list[PreparedJob]) -> None:
        """With Sentinel, ask it for the master now: when it changed, the pool closes its idle
        connections (to the demoted one), so the next write's connection goes to the new one."""
        pool = self.async_connection.connection_pool
        if isinstance(pool, AsyncSentinelConnectionPool):
            with _writing(jobs):
                async with deadline(self.settings):
                    await pool.get_master_address()  # type: ignore[no-untyped-call]

    async def _enqueue_special(self, job: PreparedJob) -> Outcome:
        """A job that costs round trips of its own (an idempotency key or dependencies); an
        expected refusal (a key reused for another request) is its outcome alone."""
        try:
            if job.idempotency_key is not None:
                return await self._enqueue_once(job)
            return Submitted(await self._enqueue_through_rq(job))
        except GqlJobsError as exc:
            return exc

    async def _enqueue_through_rq(self, job: PreparedJob) -> JobRecord:
        """RQ checks the dependencies under WATCH, or files the job under its concurrency limit
        (`_write_through_rq`, on a thread); the job's event goes out once replicas confirm it, as
        for every other job."""
        rq_job = await in_thread(self._write_through_rq, job)
        try:
            async with deadline(self.settings):
                await events.publish_now(self.async_connection, events.of_rq_job(rq_job))
        except REDIS_FAILURES:  # the job is stored: say so; only live subscribers miss this event
            log.warning("could not publish the event of job %s", job.job_id, exc_info=True)
        return record_from_job(rq_job, owner=job.owner)

    def _write_through_rq(self, job: PreparedJob) -> Job:
        queue = self.queue(job.queue)
        index = ScriptBatch()
        _stage_index([job], index, self.settings.index_retention)
        with _writing([job]) as progress:
            with self.connection.pipeline(transaction=True) as pipe:
                # The index entries first: without the job itself they read as nothing (readers
                # drop entries of missing jobs). The owner is saved in RQ's own write (`_create`).
                # The job's count in the history rides here too: should RQ's write then fail, the
                # history counts one submission that was answered ServiceUnavailableError.
                index.stage_on(pipe)
                pipe.execute()
            progress.sent = True
            rq_job = self._create(queue, job)
            if job.run_at is not None and not job.depends_on:
                rq_job = queue.schedule_job(rq_job, job.run_at)
            else:
                rq_job = queue.enqueue_job(rq_job, at_front=job.at_front)
        self._wait_here([job])
        return rq_job

    async def _enqueue_once(self, job: PreparedJob) -> Submitted:
        """Exactly one job per key (`_claim`, on a thread); a new job is then confirmed by
        replicas like any other (a duplicate was confirmed when it was new)."""
        return await in_thread(self._claim, job)

    def _claim(self, job: PreparedJob) -> Submitted:
        """WATCH the key, read it, MULTI the key with the job; a twin that got there first makes
        the EXEC fail, and we look again (up to `MAX_WATCH_ATTEMPTS` times)."""
        key = f"{IDEMPOTENCY_PREFIX}{job.owner or ANONYMOUS.name}:{job.idempotency_key}"
        claim = f"{job.fingerprint}|{job.job_id}"
        for _ in range(MAX_WATCH_ATTEMPTS):
            with _writing([job]) as progress, self.connection.pipeline(transaction=True) as pipe:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                existing = pipe.get(key)
                if existing is not None:
                    earlier = self._earlier(job, existing)
                    if earlier is not None:
                        return Submitted(earlier, deduplicated=True)
                pipe.multi()
                pipe.set(key, claim, ex=self.settings.idempotency_ttl)
                record = rq_format.new_record(job)
                plain_batch([job], [record], self.settings.index_retention).stage_on(pipe)
                if not _execute_watched(pipe, progress):
                    continue
            self._wait_here([job])
            return Submitted(record)
        raise ServiceUnavailableError("Too much contention on this idempotency key; retry")

    def _wait_here(self, jobs: list[PreparedJob]) -> None:
        """With `redis_wait_replicas`, WAIT from the store thread that has just written: Redis
        counts the replicas holding a connection's own writes, and the synchronous pool (last in,
        first out) hands this thread back the connection it has just released. (Plain jobs send
        their write and WAIT in one round trip on one connection: `_send_once`.)"""
        wanted = self.settings.redis_wait_replicas
        if not wanted:
            return
        with _writing(jobs, sent=True, reason=UNCONFIRMED):
            confirmed = int(self.connection.wait(wanted, self.settings.redis_wait_timeout_ms))
        _check_confirmed(jobs, confirmed, wanted)

    def _earlier(self, job: PreparedJob, existing: bytes | str) -> JobRecord | None:
        """The job an idempotency key already stands for; `None` if it has since expired."""
        text = existing.decode() if isinstance(existing, bytes) else existing
        fingerprint, _, job_id = text.partition("|")
        if fingerprint != job.fingerprint:
            raise IdempotencyConflictError(job.idempotency_key or "")
        return read_jobs_on_thread(self.connection, [job_id])[0]

    def _create(self, queue: Queue, job: PreparedJob) -> Job:
        """An RQ job object, for the path through RQ (dependencies, concurrency limits), saved
        with its owner."""
        limited = job.concurrency
        extra = {"rate_limit": rq_adapter.rate_limit(limited.key, limited.limit)} if limited else {}
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
            **extra,
        )
        assert isinstance(rq_job, rq_format.CompactJob)  # the queue's job class
        rq_job.owner = job.owner
        return rq_job


def plain_batch(jobs: list[PreparedJob], records: list[JobRecord], retention_seconds: int) -> ScriptBatch:
    """Every write of jobs without dependencies, as one write script (`script_batch`): our
    listing entries and counts, RQ's layout (`rq_format.stage`), and the jobs' event. `records`
    are the jobs' `rq_format.new_record`s, for their events.

    The jobs' own writes come after the index entries: a script stopped by a command failing as it
    runs keeps the ones before (`script_batch`), and entries without their job read as nothing."""
    batch = ScriptBatch()
    _stage_index(jobs, batch, retention_seconds)  # first: should a later command fail, see below
    rq_format.stage(jobs, batch)
    events.publish(batch, *(events.of_record(record) for record in records))
    return batch


def _stage_index(jobs: list[PreparedJob], batch: ScriptBatch, retention_seconds: int) -> None:
    """The whole batch's index entries, one `XADDS` per stream (`listing_index.append`), and its
    counts in the job history (`stats.count_submitted`: a command per queue and task)."""
    stats.count_submitted(
        batch, Counter((job.queue, job.spec.name) for job in jobs), jobs[0].submitted_at.timestamp()
    )
    entries: dict[str, list[bytes]] = {}
    for job in jobs:
        member = listing_index.member(job.job_id)
        for key in listing_index.streams_for(job.queue, job.spec.name, job.meta["tags"], job.owner):
            entries.setdefault(key, []).append(member)
    listing_index.append(batch, entries, retention_seconds)


def _execute_watched(pipe: Pipeline, progress: _Progress) -> bool:
    """EXEC a transaction under WATCH; False when a watched key changed (nothing was written).

    When Redis fails during EXEC, redis-py raises `WatchError` too, instead of resending (it does
    resend a transaction without WATCH, which Redis may then apply twice): that one, with the
    failure as its context, means the write may have been applied, and is raised as the failure.
    """
    progress.sent = True
    try:
        pipe.execute()
    except WatchError as exc:
        if isinstance(exc.__context__, REDIS_FAILURES):
            pipe.watching = False  # its connection is gone, and the WATCH with it: no UNWATCH
            raise exc.__context__ from exc
        return False
    return True


def _check_confirmed(jobs: list[PreparedJob], confirmed: int, wanted: int) -> None:
    """Fewer replicas than wanted hold the jobs: they may still be on the master, and run, so the
    client is told the outcome is unknown (a retry with the same idempotency key settles it)."""
    if confirmed < wanted:
        raise _WriteError(jobs, sent=True, reason=UNCONFIRMED)


def _split(jobs: list[PreparedJob]) -> tuple[list[PreparedJob], list[PreparedJob]]:
    """Jobs that go in one write script, and those that need round trips of their own."""
    plain = [job for job in jobs if _is_plain(job)]
    return plain, [job for job in jobs if not _is_plain(job)]


def _is_plain(job: PreparedJob) -> bool:
    return not job.depends_on and job.idempotency_key is None and job.concurrency is None
