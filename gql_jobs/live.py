"""Live job updates inside one API process: one Redis subscription, fanned out to every watcher.

    Redis channel ──(1 pub/sub connection)──> listener ──┐
                                                         ├─> read the job once ─> each watcher's queue
    every `poll_interval`: watched jobs, 1 round trip ───┘

Watchers are in-process queues registered by `watch_job` / `watch_events` (context managers: leaving
them frees everything, even on an abrupt disconnect). The listener turns each event into one read
of the job, shared by all who care. The poller catches what publishes no event (a plain `rq
worker`, RQ's scheduler moving a job, a dead worker's job failed by cleanup): it re-reads watched
jobs in one pipelined round trip and reports those whose state changed.

Watchers must register *before* reading a job's current state (then nothing is missed) and skip
records they have already shown (`fingerprint`), since the same change may arrive twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from gql_jobs import events
from gql_jobs.auth import SYSTEM, Principal
from gql_jobs.connections import close_async
from gql_jobs.constants import EVENTS_CHANNEL
from gql_jobs.domain import EventKind, JobEvent, JobFilter, JobRecord
from gql_jobs.errors import GqlJobsError
from gql_jobs.service import JobService
from gql_jobs.snapshots import iso_now

log = logging.getLogger(__name__)

#: How many not-yet-final jobs seen in events the poller keeps following for event watchers.
MAX_TRACKED_JOBS = 10_000
RECONNECT_DELAY_SECONDS = 1.0
QUEUE_SIZE = 1000


@dataclass(frozen=True)
class Update:
    """What a watcher receives: the event and the job as read after it (`None` once deleted).

    `seq` orders reads: a watcher never shows a read older than one it has shown (two reads in
    flight, say an event's and the poller's, may finish in either order).
    """

    event: JobEvent
    record: JobRecord | None
    seq: int


def fingerprint(record: JobRecord | None) -> tuple[Any, ...]:
    """What makes two reads of a job different to a client."""
    if record is None:
        return ("gone",)
    progress = record.progress.updated_at if record.progress else None
    return (record.raw_status, progress, record.started_at, record.ended_at, record.enqueued_at)


@dataclass(eq=False)
class _Watcher:
    queue: asyncio.Queue[Update] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    job_filter: JobFilter | None = None
    principal: Principal = SYSTEM

    def wants(self, event: JobEvent, record: JobRecord | None) -> bool:
        """An event watcher sees events of jobs it may read that match its filter."""
        if self.job_filter is not None and not event.matches(self.job_filter):
            return False
        return self.principal.owns(record.owner if record is not None else event.owner)

    def offer(self, update: Update) -> None:
        if self.queue.full():  # a client too slow to read: drop the oldest, keep the newest
            self.queue.get_nowait()
        self.queue.put_nowait(update)


class LiveUpdates:
    """Fan-out of job events to subscribers of one process. Start lazily; `close()` at shutdown."""

    def __init__(self, service: JobService, redis: AsyncRedis, poll_interval: float) -> None:
        self.service = service
        self.redis = redis
        self.poll_interval = poll_interval
        self._by_job: dict[str, set[_Watcher]] = {}
        self._by_filter: set[_Watcher] = set()
        self._tracked: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self._reads = 0

    def next_seq(self) -> int:
        """A sequence number to take *before* reading a job."""
        self._reads += 1
        return self._reads

    # -- watching ---------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def watch_job(self, job_id: str) -> AsyncIterator[asyncio.Queue[Update]]:
        watcher = _Watcher()
        await self._ensure_running()
        self._by_job.setdefault(job_id, set()).add(watcher)
        try:
            yield watcher.queue
        finally:
            watchers = self._by_job.get(job_id, set())
            watchers.discard(watcher)
            if not watchers:
                self._by_job.pop(job_id, None)

    @contextlib.asynccontextmanager
    async def watch_events(
        self, job_filter: JobFilter, principal: Principal
    ) -> AsyncIterator[asyncio.Queue[Update]]:
        watcher = _Watcher(job_filter=job_filter, principal=principal)
        await self._ensure_running()
        self._by_filter.add(watcher)
        try:
            yield watcher.queue
        finally:
            self._by_filter.discard(watcher)
            if not self._by_filter:
                self._tracked.clear()

    @property
    def watcher_count(self) -> int:
        return sum(len(w) for w in self._by_job.values()) + len(self._by_filter)

    # -- the background tasks ---------------------------------------------------------------------

    async def _ensure_running(self) -> None:
        if not self._tasks or any(task.done() for task in self._tasks):
            for task in self._tasks:
                task.cancel()
            self._tasks = [
                asyncio.create_task(self._listen(), name="gql-jobs-events-listener"),
                asyncio.create_task(self._poll(), name="gql-jobs-events-poller"),
            ]
        # Register only once the channel is subscribed, so no event published after we return is missed.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout=2.0)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, RedisError):
                await task
        self._tasks = []
        await close_async(self.redis)

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(EVENTS_CHANNEL)
                    self._subscribed.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            for event in events.decode(message["data"]):
                                await self._dispatch(event)
            except (RedisError, OSError) as exc:
                self._subscribed.clear()
                log.warning("job event subscription lost (%s); retrying", exc)
                await asyncio.sleep(RECONNECT_DELAY_SECONDS)
            except Exception:  # a bug must not silence every subscriber of the process for good
                self._subscribed.clear()
                log.exception("job event listener failed; restarting it")
                await asyncio.sleep(RECONNECT_DELAY_SECONDS)

    async def _dispatch(self, event: JobEvent) -> None:
        """An event arrived: read the job once for everyone who watches it."""
        if self._by_filter and event.kind != EventKind.DELETED:
            self._track(event.job_id)
        job_watchers = list(self._by_job.get(event.job_id, ()))
        filter_watchers = [w for w in self._by_filter if w.job_filter is None or event.matches(w.job_filter)]
        if not job_watchers and not filter_watchers:
            return
        record = None
        seq = self.next_seq()
        if event.kind != EventKind.DELETED:
            try:
                [record] = await self.service.get_many_async(SYSTEM, [event.job_id])
            except GqlJobsError:
                return  # Redis is away; the poller catches up once it is back
        self._remember(event.job_id, record)
        update = Update(event, record, seq)
        for watcher in job_watchers:
            watcher.offer(update)
        for watcher in filter_watchers:
            if watcher.wants(event, record):
                watcher.offer(update)

    def _track(self, job_id: str) -> None:
        self._tracked.setdefault(job_id, ())
        self._tracked.move_to_end(job_id)
        while len(self._tracked) > MAX_TRACKED_JOBS:
            self._tracked.popitem(last=False)

    def _remember(self, job_id: str, record: JobRecord | None) -> None:
        """Note what event watchers last saw of a tracked job; stop tracking it once final."""
        if job_id not in self._tracked:
            return
        if record is None or record.status.is_final:
            del self._tracked[job_id]
        else:
            self._tracked[job_id] = fingerprint(record)

    async def _poll(self) -> None:
        """Re-read watched jobs (one round trip) and report changes no event announced."""
        while True:
            await asyncio.sleep(self.poll_interval)
            ids = list(dict.fromkeys([*self._by_job, *self._tracked]))
            if not ids:
                continue
            seq = self.next_seq()
            try:
                records = await self.service.get_many_async(SYSTEM, ids)
                for job_id, record in zip(ids, records, strict=True):
                    self._deliver_polled(job_id, record, seq)
            except GqlJobsError:
                continue  # Redis is away: try again next time
            except Exception:
                log.exception("job poller failed; it goes on")

    def _deliver_polled(self, job_id: str, record: JobRecord | None, seq: int) -> None:
        previous = self._tracked.get(job_id)
        status_changed = record is None or not previous or previous[0] != record.raw_status
        event = (
            events.of_record(record, EventKind.STATUS if status_changed else EventKind.PROGRESS)
            if record is not None
            else JobEvent(job_id, EventKind.DELETED, "deleted", "", None, (), iso_now())
        )
        update = Update(event, record, seq)
        for watcher in self._by_job.get(job_id, ()):
            watcher.offer(update)  # job watchers skip what they have already shown
        if previous is not None and previous != fingerprint(record):
            self._remember(job_id, record)
            for watcher in self._by_filter:
                if watcher.wants(event, record):
                    watcher.offer(update)
