"""The job service: the one entry point for job work.

REST routes, GraphQL resolvers and the live updates call this and nothing else. It takes and
returns plain domain objects (`gql_jobs.domain`) and raises domain exceptions (`gql_jobs.errors`);
it knows nothing of HTTP or GraphQL, nor of Redis or RQ: the store (`gql_jobs.store`: `writes`,
`reads`, `listing`, `inventory`, `manage`, `ratelimit`, `queue_quota`, `figures`, `stats`) does that work.

Every operation takes the caller (`Principal`, or `None` for a caller without a valid key) and
enforces scopes and ownership here, so every transport behaves the same: another tenant's job is
simply "not found". Following a job and streams of events are in `service.follow`.

Every operation is a coroutine. The hot ones (submit, read, the poller's queue signatures, the
readiness ping) talk to Redis on the event loop with the async client, each bounded by
`connections.deadline`. What only RQ's synchronous calls can do (listing pages and counts, queue
and worker inventories, cancel/requeue/delete, jobs with dependencies or idempotency keys) runs on
a store thread (`store.threads.in_thread`); the expensive reads among them also within the
caller's `read_slots`, so one principal cannot take every thread of the process.

A Redis connection failure surfaces as `ServiceUnavailableError`; a submission's writes are
MULTI/EXEC, so each job is stored whole or not at all, and one whose write was sent before Redis
failed is answered `SubmissionOutcomeUnknownError` (see `store.writes`), never "nothing written".
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import ParamSpec, TypeVar

import anyio

from gql_jobs import metrics
from gql_jobs.auth import SYSTEM, Principal, Scope, owner_of
from gql_jobs.concurrency import ReadSlots
from gql_jobs.constants import NAME_PATTERN, SCAN_BUDGET, STATS_MAX_WINDOW, STOP_CONFIRM_SECONDS
from gql_jobs.domain import (
    Attempt,
    BulkAction,
    BulkOutcome,
    BulkSkip,
    BulkSkipReason,
    JobFilter,
    JobRecord,
    JobStats,
    JobStatus,
    Outcome,
    Page,
    PageRequest,
    PreparedJob,
    QueueInfo,
    SubmitRequest,
    Submitted,
    TaskInfo,
    WorkerInfo,
)
from gql_jobs.errors import (
    BatchTooLargeError,
    ForbiddenError,
    GqlJobsError,
    InvalidCursorError,
    InvalidJobStateError,
    InvalidRequestError,
    JobNotFoundError,
    UnauthenticatedError,
)
from gql_jobs.service.persisted import PersistedQueries
from gql_jobs.service.submission import is_valid_job_id, prepare
from gql_jobs.settings import Settings
from gql_jobs.store import attempts, connections, control, figures, inventory, listing, manage, stats
from gql_jobs.store.connections import AsyncClient, Client, deadline
from gql_jobs.store.guard import redis_guard
from gql_jobs.store.inventory import QueueSignature
from gql_jobs.store.queue_quota import QueueQuota
from gql_jobs.store.ratelimit import RateLimiter
from gql_jobs.store.reads import read_jobs
from gql_jobs.store.threads import in_operator_thread, in_thread
from gql_jobs.store.writes import Enqueuer
from gql_jobs.tasks import TaskRegistry

P = ParamSpec("P")
T = TypeVar("T")

#: How often a stop is checked for while `cancel` waits for a running job to end.
STOP_CHECK_SECONDS = 0.05

#: Why `stats` is for admins only.
STATS_ADMINS_ONLY = "the job history counts every tenant's jobs, so only admins may read it"

CANCELABLE = frozenset({JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED})
REQUEUEABLE = frozenset({JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})
#: The statuses each action applies to (cancel stops a running job; delete takes any but running).
APPLIES_TO = {
    BulkAction.CANCEL: CANCELABLE | {JobStatus.STARTED},
    BulkAction.REQUEUE: REQUEUEABLE,
    BulkAction.DELETE: frozenset(JobStatus) - {JobStatus.STARTED},
}

__all__ = ["JobService", "Submitted"]


def _require(caller: Principal | None, scope: Scope) -> Principal:
    if caller is None:
        raise UnauthenticatedError()
    if not caller.can(scope):
        raise ForbiddenError(scope.value)
    return caller


@dataclass
class _Batch:
    """A submission batch between checking and writing."""

    submitter: str  # the principal's name: its rate limit
    slots: list[PreparedJob | GqlJobsError]
    missing: dict[str, str] = field(default_factory=dict)  # job id -> its first missing dependency

    @property
    def prepared(self) -> list[PreparedJob]:
        return [slot for slot in self.slots if isinstance(slot, PreparedJob)]

    @property
    def ready(self) -> list[PreparedJob]:
        return [job for job in self.prepared if job.job_id not in self.missing]

    def refuse_queues(self, refused: set[str], limit: int) -> None:
        """Turn the jobs bound for queues over the `max_queues` bound into their error."""
        if not refused:
            return
        error = InvalidRequestError(
            "queue", f"is not in use, and no more than {limit} queues may be (see `queues`)"
        )
        self.slots = [
            error if isinstance(slot, PreparedJob) and slot.queue in refused else slot for slot in self.slots
        ]

    def outcomes(self, done: dict[str, Outcome]) -> list[Outcome]:
        """One outcome per request, in order; counts what was newly submitted."""
        metrics.count_submitted(
            o.record.task or "?" for o in done.values() if isinstance(o, Submitted) and not o.deduplicated
        )
        return [
            (done[slot.job_id] if slot.job_id in done else JobNotFoundError(self.missing[slot.job_id]))
            if isinstance(slot, PreparedJob)
            else slot
            for slot in self.slots
        ]


class JobService:
    """Submit, read, list and manage jobs. One instance per process, used from its event loop.

    `async_connection` serves every operation that runs on the loop; `connection`, the
    synchronous client, is only handed to the store's RQ calls on store threads."""

    def __init__(
        self,
        connection: Client,
        registry: TaskRegistry,
        settings: Settings,
        async_connection: AsyncClient,
    ) -> None:
        self.connection = connection
        self.async_connection = async_connection
        self.registry = registry
        self.settings = settings
        self._enqueuer = Enqueuer(connection, async_connection, settings)
        self._rate = RateLimiter(async_connection, settings.rate_limit, settings.rate_limit_burst)
        self._quota = QueueQuota(async_connection, settings)
        self._labels = metrics.LabelBounds(
            tasks=frozenset(registry.names()),
            default_queue=settings.queue_name,
            allowed_queues=settings.allowed_queues if settings.queues else None,
            max_queues=settings.max_queues,
        )
        self.read_slots = ReadSlots(settings.max_concurrent_reads_per_principal, settings.read_slot_wait)
        self._pseudonym_key = pseudonym_key(settings)
        #: Documents registered by automatic persisted queries (`service.persisted`).
        self.persisted = PersistedQueries(async_connection, settings)
        #: The clock of the `stats` window (seconds since the epoch); tests may set their own.
        self.clock: Callable[[], float] = time.time

    def authorize(self, caller: Principal | None, scope: Scope) -> Principal:
        """The caller, if it holds `scope`; for transports that must check before streaming."""
        return _require(caller, scope)

    # -- submitting -------------------------------------------------------------------------------

    @redis_guard
    async def submit(self, caller: Principal | None, request: SubmitRequest) -> Submitted:
        """Validate and enqueue one job (one round trip unless it has dependencies or a key)."""
        return _single(await self.submit_many(caller, [request]))

    @redis_guard
    async def submit_many(self, caller: Principal | None, requests: Sequence[SubmitRequest]) -> list[Outcome]:
        """Validate each request; enqueue the valid ones together (one MULTI/EXEC round trip).

        Returns one outcome per request, in order: the job, or the error that kept it out. Jobs
        with dependencies or idempotency keys cost round trips of their own, on a store thread
        (see `store.writes`), and a batch naming a queue this process has not seen costs one more
        (see `queue_quota`).
        """
        batch = self._prepare(caller, requests)
        batch.missing = await self._missing_dependencies(batch.prepared)
        new_queues = self._quota.to_check(job.queue for job in batch.ready)
        if new_queues:
            async with deadline(self.settings):
                refused = await self._quota.admit(new_queues)
            batch.refuse_queues(refused, self._quota.limit)
        await self._take_tokens(batch.submitter, len(batch.ready))
        return batch.outcomes(await self._enqueuer.enqueue(batch.ready))

    def _prepare(self, caller: Principal | None, requests: Sequence[SubmitRequest]) -> _Batch:
        """Check the caller and each request (no Redis)."""
        submitter = _require(caller, Scope.SUBMIT)
        owner = owner_of(submitter)
        if len(requests) > self.settings.max_batch_size:
            raise BatchTooLargeError(self.settings.max_batch_size, len(requests))
        slots: list[PreparedJob | GqlJobsError] = []
        for request in requests:
            try:
                slots.append(prepare(request, self.registry, self.settings, owner))
            except GqlJobsError as exc:
                slots.append(exc)
        return _Batch(submitter.name, slots)

    async def _missing_dependencies(self, prepared: list[PreparedJob]) -> dict[str, str]:
        """Job id -> the first of its dependencies that does not exist (or is another tenant's)."""
        wanted = sorted({dep for job in prepared for dep in job.depends_on})
        if not wanted:
            return {}
        async with deadline(self.settings):
            records = await read_jobs(self.async_connection, self.connection, wanted)
        found = dict(zip(wanted, records, strict=True))
        missing = {}
        for job in prepared:
            for dep in job.depends_on:
                record = found[dep]
                if record is None or record.owner != job.owner:
                    missing[job.job_id] = dep
                    break
        return missing

    async def _take_tokens(self, principal: str, cost: int) -> None:
        """Take from the principal's rate limit, or raise `RateLimitedError`."""
        async with deadline(self.settings):
            await self._rate.take(principal, cost)

    # -- reading ----------------------------------------------------------------------------------

    @redis_guard
    async def get(self, caller: Principal | None, job_id: str) -> JobRecord:
        return _found(job_id, (await self.get_many(caller, [job_id]))[0])

    @redis_guard
    async def get_many(self, caller: Principal | None, job_ids: Sequence[str]) -> list[JobRecord | None]:
        """Read jobs in one round trip, on the event loop. `None` for a job that does not exist, is
        another tenant's, or has a malformed id (which never reaches Redis)."""
        reader = _require(caller, Scope.READ)
        valid = _valid_ids(job_ids)
        async with deadline(self.settings):
            found = await read_jobs(self.async_connection, self.connection, valid)
        return _visible(reader, job_ids, valid, found)

    async def _bounded(self, reader: Principal, read: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run an expensive read on a store thread within one of the reader's read slots (the
        caller was refused before, if it had no valid key: it waits for neither)."""
        async with self.read_slots.slot(reader.name):
            return await in_thread(read, *args, **kwargs)

    def check_filter(self, job_filter: JobFilter, max_ids: int) -> JobFilter:
        """`job_filter` if its operators' criteria are in range, else `InvalidRequestError` (no Redis)."""
        for name, moment in (
            ("submittedAfter", job_filter.submitted_after),
            ("submittedBefore", job_filter.submitted_before),
        ):
            if moment is not None and moment.utcoffset() is None:
                raise InvalidRequestError(name, "needs a time zone (e.g. 2026-12-01T12:00:00Z)")
        if len(job_filter.tags) > self.settings.max_tags:
            raise InvalidRequestError("tags", f"at most {self.settings.max_tags}, not {len(job_filter.tags)}")
        if len(job_filter.ids) > max_ids:
            raise InvalidRequestError("ids", f"at most {max_ids} at once, not {len(job_filter.ids)}")
        return replace(job_filter, ids=tuple(dict.fromkeys(job_filter.ids)))

    @redis_guard
    async def list_jobs(self, caller: Principal | None, job_filter: JobFilter, page: PageRequest) -> Page:
        """One page of the caller's jobs (every job for an admin), in the page's order."""
        reader = _require(caller, Scope.READ)
        owner = None if reader.is_admin else reader.name
        job_filter = self.check_filter(job_filter, self.settings.max_page_size)
        if job_filter.ids:
            valid = _valid_ids(job_filter.ids)  # a malformed id never reaches Redis
            if not valid:
                return Page(items=[], has_next_page=False, has_previous_page=False, total_count=0)
            job_filter = replace(job_filter, ids=tuple(valid))
        return await self._bounded(
            reader, listing.list_jobs, self.connection, job_filter, page, self.settings.max_page_size, owner
        )

    @redis_guard
    async def count_jobs(self, caller: Principal | None, job_filter: JobFilter) -> int | None:
        """How many of the caller's jobs match, where that is cheap; `None` where it is not."""
        reader = _require(caller, Scope.READ)
        owner = None if reader.is_admin else reader.name
        return await self._bounded(reader, listing.count_jobs, self.connection, job_filter, owner)

    @redis_guard
    async def attempts(self, caller: Principal | None, job_ids: Sequence[str]) -> list[list[Attempt]]:
        """Each job's runs, oldest first (RQ keeps 10), in one round trip on the event loop.

        Takes the ids of jobs the caller was already allowed to read."""
        _require(caller, Scope.READ)
        async with deadline(self.settings):
            return await attempts.read_attempts(self.async_connection, self.connection, job_ids)

    @redis_guard
    async def position(self, caller: Principal | None, record: JobRecord) -> int | None:
        """0-based place of a queued job in its queue (O(queue length): ask only when shown);
        free for a job that is not queued.

        Takes a record the caller was already allowed to read."""
        if record.status != JobStatus.QUEUED:
            return None
        reader = _require(caller, Scope.READ)
        return await self._bounded(reader, inventory.queue_position, self.connection, record.queue, record.id)

    @redis_guard
    async def queue_signatures(self, caller: Principal | None, queues: Sequence[str]) -> list[QueueSignature]:
        """What shows a job leaving one of these queues' lists or registries, read in one
        MULTI/EXEC, O(1) per queue (the live poller's cheap look; see `inventory.may_have_left`)."""
        _require(caller, Scope.ADMIN)
        async with deadline(self.settings):
            return await inventory.read_signatures(self.async_connection, queues)

    # -- managing ---------------------------------------------------------------------------------

    async def _own(self, caller: Principal | None, job_id: str) -> JobRecord:
        """The job, if the caller may manage it."""
        manager = _require(caller, Scope.SUBMIT)
        return await self.get(SYSTEM if manager.is_admin else _reader_of(manager), job_id)

    async def _apply(self, action: BulkAction, records: Sequence[JobRecord]) -> manage.Applied:
        """Act on jobs already checked, through the one store path (chunked transactions)."""
        return await in_thread(
            manage.apply, self.connection, action, records, APPLIES_TO[action], self._enqueuer.queue
        )

    async def _apply_one(self, action: BulkAction, record: JobRecord) -> manage.Applied:
        """`_apply` for one job; a job whose status changed meanwhile is refused as by the check."""
        if record.status not in APPLIES_TO[action]:
            raise InvalidJobStateError(record.id, record.status.value, action.value)
        applied = await self._apply(action, [record])
        if record.id in applied.changed:
            now = applied.changed[record.id]
            if now is None:
                raise JobNotFoundError(record.id)
            raise InvalidJobStateError(record.id, now.value, action.value)
        return applied

    @redis_guard
    async def cancel(self, caller: Principal | None, job_id: str) -> JobRecord:
        """Cancel a waiting job; stop a running one (its worker kills the work horse)."""
        applied = await self._apply_one(BulkAction.CANCEL, await self._own(caller, job_id))
        if applied.stopping:
            return await self._await_final(job_id)
        return await self.get(SYSTEM, job_id)

    async def _await_final(self, job_id: str) -> JobRecord:
        """The job once its worker has stopped it, or as it is after `STOP_CONFIRM_SECONDS`."""
        give_up = time.monotonic() + STOP_CONFIRM_SECONDS
        record = await self.get(SYSTEM, job_id)
        while not record.status.is_final and time.monotonic() < give_up:
            await anyio.sleep(STOP_CHECK_SECONDS)
            record = await self.get(SYSTEM, job_id)
        return record

    @redis_guard
    async def requeue(self, caller: Principal | None, job_id: str) -> JobRecord:
        """Put a failed, stopped or canceled job back on its queue.

        The job runs again, so it takes a token from the caller's rate limit as a submission
        does (requeueing one failing job in a loop made 182 runs in 10 s against 5/s)."""
        manager = _require(caller, Scope.SUBMIT)
        record = await self._own(manager, job_id)
        if record.status not in REQUEUEABLE:
            raise InvalidJobStateError(job_id, record.status.value, "requeue")
        await self._take_tokens(manager.name, 1)
        await self._apply_one(BulkAction.REQUEUE, record)
        return await self.get(SYSTEM, job_id)

    @redis_guard
    async def delete(self, caller: Principal | None, job_id: str) -> str:
        """Delete a job that is not running, with its results. Its index entries go when a listing
        walks past them (finding them by job id would mean scanning the indexes)."""
        await self._apply_one(BulkAction.DELETE, await self._own(caller, job_id))
        return job_id

    @redis_guard
    async def bulk(
        self, caller: Principal | None, action: BulkAction, job_filter: JobFilter, after: str | None = None
    ) -> BulkOutcome:
        """Act on every job the filter selects that the action applies to, at most `max_bulk_jobs`.

        With `ids`, each id is accounted for (acted on, or skipped with why). Without, the listing
        selects the caller's matching jobs the action applies to (newest first): jobs acted on no
        longer match (canceled, queued again, gone), so the same call again goes on with the next
        ones and acts on nothing twice; a truncated result's `resume_cursor` (`after`) goes past
        jobs it could not take. Each job's event is published as for a single action."""
        manager = _require(caller, Scope.SUBMIT)
        limit = self.settings.max_bulk_jobs
        job_filter = self.check_filter(job_filter, limit)
        if after is not None:
            try:
                listing.Position.decode(after)
            except InvalidCursorError:
                raise InvalidRequestError("after", "not a cursor this API issued") from None
        skipped: list[BulkSkip] = []
        if job_filter.ids:
            if after is not None:
                raise InvalidRequestError("after", "not with `ids`: every id is taken at once")
            candidates = await self._named(manager, action, job_filter, skipped)
            matched, truncated, resume = len(job_filter.ids), False, None
        else:
            owner = None if manager.is_admin else manager.name
            selection = replace(job_filter, statuses=APPLIES_TO[action])
            page = await self._bounded(
                manager,
                listing.list_jobs,
                self.connection,
                selection,
                PageRequest(first=limit, after=after),
                limit,
                owner,
            )
            candidates = [record for _, record in page.items]
            matched, truncated, resume = len(candidates), page.has_next_page, page.resume_cursor
        if action == BulkAction.REQUEUE:
            candidates = await self._within_rate(manager, candidates, skipped)
        applied = await self._apply(action, candidates) if candidates else manage.Applied()
        skipped.extend(_changed_skip(job_id, status, action) for job_id, status in applied.changed.items())
        acted = [r.id for r in applied.acted + applied.stopping]
        return BulkOutcome(action, matched, len(acted), tuple(acted), tuple(skipped), truncated, resume)

    async def _named(
        self, manager: Principal, action: BulkAction, job_filter: JobFilter, skipped: list[BulkSkip]
    ) -> list[JobRecord]:
        """The jobs named in `ids` the action applies to; the others go to `skipped`, with why."""
        reader = SYSTEM if manager.is_admin else _reader_of(manager)
        records = await self.get_many(reader, job_filter.ids)
        criteria = replace(job_filter, ids=())
        chosen = []
        for job_id, record in zip(job_filter.ids, records, strict=True):
            if record is None:
                skipped.append(BulkSkip(job_id, BulkSkipReason.NOT_FOUND, f"Job not found: {job_id[:140]}"))
            elif not (listing.matches_filter(record, criteria) and listing.in_time_range(record, criteria)):
                skipped.append(
                    BulkSkip(job_id, BulkSkipReason.NOT_MATCHED, "Outside the filter's other criteria")
                )
            elif record.status not in APPLIES_TO[action]:
                skipped.append(_changed_skip(job_id, record.status, action))
            else:
                chosen.append(record)
        return chosen

    async def _within_rate(
        self, manager: Principal, candidates: list[JobRecord], skipped: list[BulkSkip]
    ) -> list[JobRecord]:
        """Requeued jobs run again: each takes a token, all at once; beyond the burst they wait."""
        if not self._rate.enabled or not candidates:
            return candidates
        taken, left = candidates[: self._rate.burst], candidates[self._rate.burst :]
        await self._take_tokens(manager.name, len(taken))
        message = f"More than the rate limit's burst ({self._rate.burst}) at once; retry for the rest"
        skipped.extend(BulkSkip(r.id, BulkSkipReason.RATE_LIMITED, message, r.status) for r in left)
        return taken

    # -- the system around the jobs -----------------------------------------------------------------

    @redis_guard
    async def suspend_workers(self, caller: Principal | None, ttl_seconds: int | None) -> bool:
        """Suspend every worker (RQ's suspension): admins only, since it stops every tenant's work."""
        _require(caller, Scope.ADMIN)
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise InvalidRequestError("ttlSeconds", "must be positive (or null: until resumed)")
        await in_thread(control.suspend_workers, self.connection, ttl_seconds)
        return True

    @redis_guard
    async def resume_workers(self, caller: Principal | None) -> bool:
        _require(caller, Scope.ADMIN)
        await in_thread(control.resume_workers, self.connection)
        return False

    @redis_guard
    async def workers_suspended(self, caller: Principal | None) -> bool:
        _require(caller, Scope.READ)
        return await in_thread(control.workers_suspended, self.connection)

    @redis_guard
    async def empty_queue(self, caller: Principal | None, queue: str) -> int:
        """Delete every job waiting on `queue` (RQ's `Queue.empty`): admins only (every tenant's
        jobs); how many were deleted. An unknown queue is `InvalidRequestError`."""
        _require(caller, Scope.ADMIN)
        if not re.fullmatch(NAME_PATTERN, queue):
            raise InvalidRequestError("queue", "is not a queue name")
        rq_queue = self._enqueuer.queue(queue)
        if not await in_thread(control.queue_exists, self.connection, rq_queue):
            raise InvalidRequestError("queue", f"no queue named {queue!r} (see `queues`)")
        return await in_thread(control.empty_queue, rq_queue)

    async def tasks(self, caller: Principal | None) -> list[TaskInfo]:
        _require(caller, Scope.READ)
        return [TaskInfo(s.name, s.description, s.input_schema()) for s in self.registry.specs()]

    @redis_guard
    async def queues(self, caller: Principal | None) -> list[QueueInfo]:
        """For an admin every queue, with its counts per status (over all tenants). For anyone
        else only the queues its own newest jobs are in, without counts: those would tell how
        busy the other tenants are."""
        reader = _require(caller, Scope.READ)
        return await self._bounded(reader, self._queues_seen_by, reader)

    def _queues_seen_by(self, reader: Principal) -> list[QueueInfo]:
        if not reader.is_admin:
            return [QueueInfo(name, None) for name in self._own_queues(reader)]
        names = inventory.queue_names(self.connection)
        counts = inventory.status_counts(self.connection, names)
        return [QueueInfo(name, counts[name]) for name in names]

    @redis_guard
    async def workers(self, caller: Principal | None) -> list[WorkerInfo]:
        """Every worker, in full, for an admin. Anyone else sees only the workers serving its own
        queues (`queues`), and of those nothing that names a host, a process, another tenant's
        queue or job, or counts over all tenants (see `_as_seen_by`)."""
        reader = _require(caller, Scope.READ)
        return await self._bounded(reader, self._workers_seen_by, reader)

    def _workers_seen_by(self, reader: Principal) -> list[WorkerInfo]:
        found = inventory.workers(self.connection)
        if reader.is_admin:
            return found
        own_queues = set(self._own_queues(reader))
        serving = [worker for worker in found if own_queues.intersection(worker.queues)]
        running = [worker.current_job_id for worker in serving if worker.current_job_id]
        owners = inventory.job_owners(self.connection, running)
        return [_as_seen_by(reader, worker, own_queues, owners, self._pseudonym_key) for worker in serving]

    def _own_queues(self, reader: Principal) -> list[str]:
        return listing.owner_queues(self.connection, reader.name, SCAN_BUDGET)

    @redis_guard
    async def stats(
        self,
        caller: Principal | None,
        window: int,
        step: int,
        queue: str | None = None,
        task: str | None = None,
    ) -> JobStats:
        """Jobs submitted, finished and failed, and run-time percentiles, per `step` minutes over
        the last `window` minutes (this one included), from the job history (`store.stats`).

        For admins only: the history counts every tenant's jobs, and keeping it per tenant too
        would multiply its size by the number of principals."""
        reader = _require(caller, Scope.READ)
        if not reader.is_admin:
            raise ForbiddenError(Scope.ADMIN.value, STATS_ADMINS_ONLY)
        _check_stats_window(window, step)
        for name, value in (("queue", queue), ("task", task)):
            if value is not None and not re.fullmatch(NAME_PATTERN, value):
                raise InvalidRequestError(name, f"must match {NAME_PATTERN}")
        now = self.clock()
        return await self._bounded(reader, stats.history, self.connection, now, window, step, queue, task)

    async def metrics(self) -> tuple[bytes, str]:
        """The Prometheus exposition of this process (and the global figures kept in Redis), made
        on the operator pool, which request work cannot fill."""
        read_figures = functools.partial(figures.read, self.connection)
        return await in_operator_thread(metrics.render, read_figures, self._labels)

    @redis_guard
    async def ping(self) -> bool:
        """Whether Redis answers, on the event loop (the readiness check waits for no thread)."""
        async with deadline(self.settings):
            return await connections.ping(self.async_connection)


def _check_stats_window(window: int, step: int) -> None:
    """A window of whole steps within the history's reach (`STATS_MAX_WINDOW` minutes)."""
    if not 1 <= window <= STATS_MAX_WINDOW:
        raise InvalidRequestError("window", f"must be 1 to {STATS_MAX_WINDOW} minutes, not {window}")
    if not 1 <= step <= window:
        raise InvalidRequestError("step", f"must be 1 to window ({window}) minutes, not {step}")
    if window % step:
        raise InvalidRequestError("step", f"must divide window ({window} minutes) evenly, not {step}")


def _single(outcomes: list[Outcome]) -> Submitted:
    if isinstance(outcomes[0], GqlJobsError):
        raise outcomes[0]
    return outcomes[0]


def _found(job_id: str, record: JobRecord | None) -> JobRecord:
    if record is None:
        raise JobNotFoundError(job_id)
    return record


def _valid_ids(job_ids: Sequence[str]) -> list[str]:
    """Distinct ids worth asking Redis about (a malformed id never reaches it)."""
    return [job_id for job_id in dict.fromkeys(job_ids) if is_valid_job_id(job_id)]


def _visible(
    reader: Principal, job_ids: Sequence[str], asked: list[str], found: list[JobRecord | None]
) -> list[JobRecord | None]:
    """Records in the order of `job_ids`; `None` for what the reader may not see."""
    by_id = dict(zip(asked, found, strict=True))
    records = [by_id.get(job_id) for job_id in job_ids]
    return [r if r is not None and reader.owns(r.owner) else None for r in records]


def _changed_skip(job_id: str, status: JobStatus | None, action: BulkAction) -> BulkSkip:
    if status is None:
        return BulkSkip(job_id, BulkSkipReason.NOT_FOUND, f"Job not found: {job_id[:140]}")
    message = InvalidJobStateError(job_id, status.value, action.value).message
    return BulkSkip(job_id, BulkSkipReason.INVALID_STATE, message, status)


def _reader_of(manager: Principal) -> Principal:
    return Principal(manager.name, frozenset({Scope.READ}))


def _as_seen_by(
    reader: Principal,
    worker: WorkerInfo,
    own_queues: set[str],
    owners: dict[str, str | None],
    pseudonym_key: bytes,
) -> WorkerInfo:
    """A worker as a non-admin may see it: a pseudonym for its name (which RQ or an operator may
    make of the host and pid), no host or pid, only the reader's queues, its current job only if it
    is the reader's, and no job counts (they add up every tenant's jobs)."""
    job = worker.current_job_id
    return replace(
        worker,
        name="worker-" + hmac.new(pseudonym_key, worker.name.encode(), "sha256").hexdigest()[:16],
        queues=[queue for queue in worker.queues if queue in own_queues],
        current_job_id=job if job is not None and owners.get(job) == reader.name else None,
        successful_job_count=None,
        failed_job_count=None,
        pid=None,
        hostname=None,
        extra={},
    )


def pseudonym_key(settings: Settings) -> bytes:
    """The key of workers' pseudonyms: the same in every API process with the same keys (so a name
    stays the same), and unknown to tenants (who never see the configured key hashes)."""
    return hashlib.sha256(" ".join(sorted(settings.api_keys)).encode()).digest()
