"""Live job updates inside one API process: one Redis subscription, fanned out to every watcher.

    Redis channel ──(1 pub/sub connection)──> listener ──┐
                                                         ├─> read the job once ─> matching inboxes
    every `poll_interval`: ≤ poll_max_jobs due jobs ─────┘

Watchers are in-process inboxes registered by `watch_job` / `watch_events` (context managers:
leaving them frees everything, even on an abrupt disconnect). Each holds one of its principal's
`subscriptions` slots (`max_subscriptions_per_principal`, whatever the transport); WebSocket
connections hold `connections` slots (see `graphql/router.py`).

The listener turns each event into at most one read of the job, shared by all who care, and offers
it only to watchers that may match it (`watchers.EventWatchers`: by owner, then by one filter
criterion), so an event costs in proportion to its audience, not to every watcher of the process.

The poller catches what publishes no event (a plain `rq worker`, RQ's scheduler moving a job, a
dead worker's job failed by cleanup). Its cost per interval is bounded, whatever the number of
followed jobs: at most `poll_max_jobs` jobs read and as many queues signed, and a job that can
only change through its queue is not read until the queue changes (`polling.PollPlan` says why
that is sound and what it gives up). `poll_once` runs one cycle (tests drive it directly).

Watchers must register *before* reading a job's current state (then nothing is missed) and skip
records they have already shown (`fingerprint`), since the same change may arrive twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from gql_jobs.auth import SYSTEM, Principal
from gql_jobs.constants import MAX_TRACKED_JOBS
from gql_jobs.domain import EventKind, JobEvent, JobFilter, JobRecord
from gql_jobs.errors import GqlJobsError, TooManySubscriptionsError
from gql_jobs.service.jobs import JobService
from gql_jobs.service.polling import PollPlan, PollStats
from gql_jobs.service.watchers import EventWatchers, Inbox, Slots, Update, Watcher, fingerprint
from gql_jobs.settings import Settings
from gql_jobs.store import events
from gql_jobs.store.connections import AsyncClient, close_async
from gql_jobs.store.guard import REDIS_ERRORS
from gql_jobs.store.reads import iso_now

__all__ = ["Inbox", "LiveUpdates", "Update", "fingerprint"]

log = logging.getLogger(__name__)


class LiveUpdates:
    """Fan-out of job events to subscribers of one process. Start lazily; `close()` at shutdown."""

    def __init__(self, service: JobService, redis: AsyncClient, settings: Settings) -> None:
        self.service = service
        self.redis = redis
        self.poll_interval = settings.poll_interval
        self.connections = Slots(settings.ws_max_connections_per_principal)
        self.subscriptions = Slots(settings.max_subscriptions_per_principal)
        self.stats = PollStats()
        self._by_job: dict[str, set[Watcher]] = {}
        self._events = EventWatchers()
        self._plan = PollPlan(settings.poll_max_jobs, MAX_TRACKED_JOBS)
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()
        self._reads = 0

    def next_seq(self) -> int:
        """A sequence number to take *before* reading a job."""
        self._reads += 1
        return self._reads

    # -- watching ---------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def watch_job(self, job_id: str, principal: Principal) -> AsyncIterator[Inbox]:
        """Updates of one job; raises `TooManySubscriptionsError` past the principal's limit."""
        watcher = Watcher(principal)
        async with self._subscription(principal):
            await self._ensure_running()
            self._by_job.setdefault(job_id, set()).add(watcher)
            self._plan.watch(job_id)
            try:
                yield watcher.inbox
            finally:
                watchers = self._by_job.get(job_id, set())
                watchers.discard(watcher)
                if not watchers:
                    self._by_job.pop(job_id, None)
                self._plan.unwatch(job_id)

    @contextlib.asynccontextmanager
    async def watch_events(self, job_filter: JobFilter, principal: Principal) -> AsyncIterator[Inbox]:
        """Events of the jobs `principal` may read that match the filter; limited like `watch_job`."""
        watcher = Watcher(principal, job_filter)
        async with self._subscription(principal):
            await self._ensure_running()
            self._events.add(watcher)
            try:
                yield watcher.inbox
            finally:
                self._events.remove(watcher)
                if not self._events:
                    self._plan.untrack_all()

    @contextlib.asynccontextmanager
    async def _subscription(self, principal: Principal) -> AsyncIterator[None]:
        if not self.subscriptions.acquire(principal.name):
            raise TooManySubscriptionsError(self.subscriptions.limit)
        try:
            yield
        finally:
            self.subscriptions.release(principal.name)

    @property
    def watcher_count(self) -> int:
        return sum(len(w) for w in self._by_job.values()) + len(self._events)

    @property
    def watchers_examined(self) -> int:
        """Event watchers that events have looked at so far (the fan-out's cost)."""
        return self._events.examined

    @property
    def plan(self) -> PollPlan:
        return self._plan

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
        # `asyncio.timeout`, not `wait_for`: on Python 3.11 `wait_for` swallows a cancellation that
        # lands in the loop turn the event is set in, and the stream then outlived its client.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                await self._subscribed.wait()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, *REDIS_ERRORS):
                await task
        self._tasks = []
        await close_async(self.redis)

    async def _listen(self) -> None:
        await events.listen(self.redis, self._subscribed, self._dispatch)

    async def _dispatch(self, event: JobEvent) -> None:
        """An event arrived: read the job once for everyone who may want it, tell those who do.

        Events from the service name the job's owner; our worker's do not, so while tenants
        watch, such an event costs a read to learn whose job it is."""
        deleted = event.kind == EventKind.DELETED
        unsure = event.owner is None and not deleted and self._events.has_tenants
        if not deleted and (unsure or self._events.may_see(event.owner)):
            self._plan.track(event.job_id)
        job_watchers = list(self._by_job.get(event.job_id, ()))
        subscribers = [] if unsure else self._events.matching(event, event.owner)
        if not (job_watchers or subscribers or unsure):
            self._plan.prompt(event.job_id)
            return
        record = None
        seq = self.next_seq()
        if not deleted:
            try:
                [record] = await self.service.get_many(SYSTEM, [event.job_id])
            except GqlJobsError:
                self._plan.prompt(event.job_id)
                return  # Redis is away; the poller catches up once it is back
        owner = record.owner if record is not None else event.owner
        if unsure or owner != event.owner:  # the channel is not ours alone: trust the job's owner
            subscribers = self._events.matching(event, owner)
        self._plan.learn(event.job_id, record, seq)
        update = Update(event, record, seq)
        for watcher in (*job_watchers, *subscribers):
            watcher.inbox.offer(update)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                await self.poll_once()
            except GqlJobsError:
                continue  # Redis is away: try again next time
            except Exception:
                log.exception("job poller failed; it goes on")

    async def poll_once(self) -> None:
        """One cycle: sign up to `poll_max_jobs` queues, read up to `poll_max_jobs` due jobs (one
        round trip each), and report the changes no event announced."""
        self.stats.cycles += 1
        queues = self._plan.queues_to_sign()
        if queues:
            signatures = await self.service.queue_signatures(SYSTEM, queues)
            after = self.next_seq()
            self.stats.queues_signed += len(queues)
            for name, signature in zip(queues, signatures, strict=True):
                self._plan.signed(name, signature, after)
        ids = self._plan.take_due()
        self.stats.count_reads(len(ids))
        if not ids:
            return
        seq = self.next_seq()
        try:
            records = await self.service.get_many(SYSTEM, ids)
        except BaseException:
            self._plan.put_back(ids)
            raise
        for job_id, record in zip(ids, records, strict=True):
            self._deliver_polled(job_id, record, seq)

    def _deliver_polled(self, job_id: str, record: JobRecord | None, seq: int) -> None:
        shown = self._plan.learn(job_id, record, seq)
        status_changed = record is None or not shown or shown[0] != record.raw_status
        event = (
            events.of_record(record, EventKind.STATUS if status_changed else EventKind.PROGRESS)
            if record is not None
            else JobEvent(job_id, EventKind.DELETED, "deleted", "", None, (), iso_now())
        )
        update = Update(event, record, seq)
        for watcher in self._by_job.get(job_id, ()):
            watcher.inbox.offer(update)  # job watchers skip what they have already shown
        if shown is not None and shown != fingerprint(record):
            for watcher in self._events.matching(event, record.owner if record is not None else None):
                watcher.inbox.offer(update)
