"""The job service: the one entry point for job work.

REST routes, GraphQL resolvers and the live updates call this and nothing else. It takes and
returns plain domain objects (`gql_jobs.domain`) and raises domain exceptions (`gql_jobs.errors`);
it knows nothing of HTTP or GraphQL, nor of Redis or RQ: the store (`gql_jobs.store`: `writes`,
`reads`, `listing`, `inventory`, `manage`, `ratelimit`, `queue_quota`, `figures`, `stats`) does that work.

This module holds the service and the work on jobs a caller names: submitting, reading, listing
and counting, and the single actions (cancel, requeue, delete). The rest has a module of its own,
which `JobService` delegates to once it has checked the caller: bulk actions (`bulk`, under the
single actions' rules: `actions`), worker and queue control (`control`), what a caller may see of
tasks, queues and workers (`inventory`), and the bounds of a job history request (`history`).

Every operation takes the caller (`Principal`, or `None` for a caller without a valid key) and
enforces scopes and ownership here, so every transport behaves the same: another tenant's job is
simply "not found". Following a job and streams of events are in `service.follow`.

Every operation is a coroutine. The hot ones (submit, read, the poller's queue signatures, the
readiness ping) talk to Redis on the event loop with the async client, each bounded by
`connections.deadline`. What only RQ's synchronous calls can do (listing pages and counts, queue
and worker inventories, cancel/requeue/delete, jobs with dependencies or idempotency keys) runs on
a store thread (`store.threads.in_thread`); the expensive reads among them also within the
caller's `read_slots`, so one principal cannot take every thread of the process.

A Redis connection failure surfaces as `ServiceUnavailableError`; a submission's writes are one
atomic script (or MULTI/EXEC), so each job is stored whole or not at all, and one whose write was
sent before Redis failed is answered `SubmissionOutcomeUnknownError` (see `store.writes`), never
"nothing written".
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import ParamSpec, TypeVar

import anyio

from gql_jobs import metrics, tracing
from gql_jobs.auth import SYSTEM, Principal, Scope, owner_of
from gql_jobs.concurrency import ReadSlots
from gql_jobs.constants import STOP_CONFIRM_SECONDS
from gql_jobs.domain import (
    Attempt,
    BulkAction,
    BulkOutcome,
    JobFilter,
    JobRecord,
    JobStats,
    JobStatus,
    Outcome,
    Page,
    PageRequest,
    PreparedJob,
    QueueInfo,
    RecordFields,
    SubmitRequest,
    Submitted,
    TaskInfo,
    WorkerInfo,
)
from gql_jobs.errors import (
    BatchTooLargeError,
    ForbiddenError,
    GqlJobsError,
    InvalidJobStateError,
    InvalidRequestError,
    JobNotFoundError,
    UnauthenticatedError,
)
from gql_jobs.service import bulk as bulk_actions
from gql_jobs.service import control
from gql_jobs.service.actions import APPLIES_TO, REQUEUEABLE, reader_for
from gql_jobs.service.history import STATS_ADMINS_ONLY, check_request
from gql_jobs.service.inventory import pseudonym_key, queues_seen_by, task_infos, workers_seen_by
from gql_jobs.service.persisted import PersistedQueries
from gql_jobs.service.submission import is_valid_job_id, prepare
from gql_jobs.settings import Settings
from gql_jobs.store import attempts, connections, figures, inventory, listing, manage, stats
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
        """Validate each request; enqueue the valid ones together (one atomic write, one round trip).

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
        with tracing.producing(batch.ready):  # the jobs carry its trace context to the worker
            done = await self._enqueuer.enqueue(batch.ready)
        return batch.outcomes(done)

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
            records = await read_jobs(self.async_connection, wanted)
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
            found = await read_jobs(self.async_connection, valid)
        return _visible(reader, job_ids, valid, found)

    async def _listed(
        self,
        reader: Principal,
        job_filter: JobFilter,
        page: PageRequest,
        max_size: int,
        owner: str | None,
        summary: RecordFields | None = None,
    ) -> Page:
        """A page of the listing, read on the event loop within the caller's read slots and one
        deadline over its round trips."""
        async with self.read_slots.slot(reader.name), deadline(self.settings):
            return await listing.list_jobs(self.async_connection, job_filter, page, max_size, owner, summary)

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
    async def list_jobs(
        self,
        caller: Principal | None,
        job_filter: JobFilter,
        page: PageRequest,
        summary: RecordFields | None = None,
    ) -> Page:
        """One page of the caller's jobs (every job for an admin), in the page's order: summaries
        (`JobRecord.summary`) holding the `summary` fields, when the caller names them (it needs
        no payload, result or error); whole jobs otherwise."""
        reader = _require(caller, Scope.READ)
        owner = None if reader.is_admin else reader.name
        job_filter = self.check_filter(job_filter, self.settings.max_page_size)
        if job_filter.ids:
            valid = _valid_ids(job_filter.ids)  # a malformed id never reaches Redis
            if not valid:
                return Page(items=[], has_next_page=False, has_previous_page=False, total_count=0)
            job_filter = replace(job_filter, ids=tuple(valid))
        return await self._listed(reader, job_filter, page, self.settings.max_page_size, owner, summary)

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
        return await self.get(reader_for(manager), job_id)

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
        return await bulk_actions.act(self, manager, action, job_filter, after)

    # -- the system around the jobs -----------------------------------------------------------------

    @redis_guard
    async def suspend_workers(self, caller: Principal | None, ttl_seconds: int | None) -> bool:
        """Suspend every worker (RQ's suspension): admins only, since it stops every tenant's work."""
        _require(caller, Scope.ADMIN)
        return await control.suspend_workers(self.connection, ttl_seconds)

    @redis_guard
    async def resume_workers(self, caller: Principal | None) -> bool:
        _require(caller, Scope.ADMIN)
        return await control.resume_workers(self.connection)

    @redis_guard
    async def workers_suspended(self, caller: Principal | None) -> bool:
        _require(caller, Scope.READ)
        return await control.workers_suspended(self.connection)

    @redis_guard
    async def empty_queue(self, caller: Principal | None, queue: str) -> int:
        """Delete every job waiting on `queue` (RQ's `Queue.empty`): admins only (every tenant's
        jobs); how many were deleted. An unknown queue is `InvalidRequestError`."""
        _require(caller, Scope.ADMIN)
        return await control.empty_queue(self.connection, self._enqueuer, queue)

    async def tasks(self, caller: Principal | None) -> list[TaskInfo]:
        _require(caller, Scope.READ)
        return task_infos(self.registry)

    @redis_guard
    async def queues(self, caller: Principal | None) -> list[QueueInfo]:
        """For an admin every queue, with its counts per status (over all tenants). For anyone
        else only the queues its own newest jobs are in, without counts: those would tell how
        busy the other tenants are."""
        reader = _require(caller, Scope.READ)
        return await self._bounded(reader, queues_seen_by, self.connection, reader)

    @redis_guard
    async def workers(self, caller: Principal | None) -> list[WorkerInfo]:
        """Every worker, in full, for an admin. Anyone else sees only the workers serving its own
        queues (`queues`), and of those nothing that names a host, a process, another tenant's
        queue or job, or counts over all tenants (see `inventory._as_seen_by`)."""
        reader = _require(caller, Scope.READ)
        return await self._bounded(reader, workers_seen_by, self.connection, reader, self._pseudonym_key)

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
        check_request(window, step, queue, task)
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
