"""Plain data the job service takes and returns: no RQ, no HTTP, no GraphQL.

Transports convert these at their edge (`web/rest.py`, `graphql/`); the store builds them from RQ
jobs (`store/reads.py`) and takes `PreparedJob`s, the requests the service has checked, to write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

from gql_jobs.errors import GqlJobsError

if TYPE_CHECKING:
    from gql_jobs.tasks import TaskSpec


class JobStatus(StrEnum):
    """RQ's job statuses, spelled as RQ stores them, plus a fallback for one we do not know.

    `RATE_LIMITED` and `READY_TO_ENQUEUE` exist only on RQ 3: a job held back by its concurrency
    limit, and a dependent whose dependencies are met, about to be enqueued (a transient state)."""

    QUEUED = "queued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    DEFERRED = "deferred"
    SCHEDULED = "scheduled"
    STOPPED = "stopped"
    CANCELED = "canceled"
    CREATED = "created"
    RATE_LIMITED = "rate_limited"
    READY_TO_ENQUEUE = "ready_to_enqueue"
    UNKNOWN = "unknown"

    @classmethod
    def parse(cls, raw: str | None) -> JobStatus:
        try:
            return cls(raw or "")
        except ValueError:
            return cls.UNKNOWN

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})


@dataclass(frozen=True)
class RetryPolicy:
    """Retry a failing job up to `max` times, waiting `intervals` seconds (the last one repeats)."""

    max: int
    intervals: tuple[int, ...] = ()


@dataclass(frozen=True)
class ConcurrencyLimit:
    """At most `limit` jobs of `key` queued or running at once (RQ 3's `RateLimit`); the others
    wait as RATE_LIMITED, oldest first. Keys are the submitter's own (one tenant's key never
    holds back another's)."""

    key: str
    limit: int


@dataclass(frozen=True)
class SubmitRequest:
    """One job to submit. `None` means "use the setting's default"."""

    task: str
    payload: Any = None
    queue: str | None = None
    tags: tuple[str, ...] = ()
    description: str | None = None
    timeout: int | None = None
    result_ttl: int | None = None
    failure_ttl: int | None = None
    retry: RetryPolicy | None = None
    delay_seconds: float | None = None
    scheduled_at: datetime | None = None
    depends_on: tuple[str, ...] = ()
    at_front: bool = False
    idempotency_key: str | None = None
    concurrency: ConcurrencyLimit | None = None


@dataclass(frozen=True)
class JobError:
    """Why a job failed: the exception's type and message, and the worker's traceback."""

    type: str | None
    message: str
    traceback: str | None


class AttemptOutcome(StrEnum):
    """How one run of a job ended, as RQ's result types say (`rq.results.Result.Type`)."""

    SUCCESSFUL = "successful"
    FAILED = "failed"
    STOPPED = "stopped"
    RETRIED = "retried"  # it failed (or asked to be retried) and was queued or scheduled again
    MAX_RETRIES_EXCEEDED = "max_retries_exceeded"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Attempt:
    """One run of a job, from RQ's results stream (RQ keeps its 10 latest)."""

    id: str
    outcome: AttemptOutcome
    return_value: Any
    error: JobError | None
    worker_name: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class Progress:
    """What a running task last reported about itself."""

    current: float
    total: float | None
    message: str | None
    updated_at: datetime | None

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(1.0, self.current / self.total))


class JobRecord(NamedTuple):
    """One consistent snapshot of a job as stored by RQ (read in a single MULTI/EXEC).

    A named tuple, not a frozen dataclass: as immutable, and built in half the time (a frozen
    dataclass sets each of its 28 fields through `object.__setattr__`), which a page of 50 jobs
    pays 50 times (issue #20)."""

    id: str
    status: JobStatus
    raw_status: str
    task: str | None
    queue: str
    func_name: str | None
    payload: Any
    meta: dict[str, Any]
    tags: tuple[str, ...]
    description: str | None
    submitted_at: str | None
    created_at: datetime | None
    enqueued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    result: Any
    error: JobError | None
    progress: Progress | None
    retries_left: int | None
    depends_on: tuple[str, ...]
    timeout: int | None
    result_ttl: int | None
    failure_ttl: int | None
    worker_name: str | None
    result_expires_at: datetime | None = None
    owner: str | None = None
    #: Read without the task's arguments and the outcome (`store.reads.read_jobs(summary=...)`):
    #: `func_name`, `result` and `error` are None, `payload` only what the meta holds (every job
    #: gql-jobs submitted has it there; a job enqueued by another RQ client has None), and only
    #: the fields the summary was asked for (`RecordFields`) and what a listing itself reads
    #: (status, meta, queue, owner, creation) are read: the others are None (or empty).
    summary: bool = False


#: Names of `JobRecord` fields a reader needs, when it needs neither the task's arguments nor the
#: outcome: the job is read as a summary holding them (a dashboard's page selects a handful).
RecordFields: TypeAlias = frozenset[str]

#: Every field a summary can hold.
SUMMARY_FIELDS: RecordFields = frozenset(JobRecord._fields) - {"func_name", "result", "error"}


@dataclass(frozen=True)
class JobFilter:
    """Jobs to list (or act on): every given criterion must hold.

    `tags` holds when the job carries any of them; `ids` restricts to those jobs; the time range
    is half-open, `submitted_after <= stored < submitted_before`, to the millisecond of the
    listing index (when Redis stored the job). `statuses` (any of) is the service's own criterion
    (a bulk action's applicable statuses), not a client's."""

    status: JobStatus | None = None
    queue: str | None = None
    task: str | None = None
    tag: str | None = None
    tags: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    submitted_after: datetime | None = None
    submitted_before: datetime | None = None
    statuses: frozenset[JobStatus] | None = None


class Order(StrEnum):
    """Which end of the listing a page starts from."""

    NEWEST_FIRST = "newest_first"
    OLDEST_FIRST = "oldest_first"


@dataclass(frozen=True)
class PageRequest:
    """Relay-style window: `first`/`after` walk away from the `order`'s start (to older jobs when
    newest first), `last`/`before` back towards it."""

    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None
    order: Order = Order.NEWEST_FIRST


@dataclass(frozen=True)
class Page:
    """A window of jobs, in the requested order, with the cursor of each."""

    items: list[tuple[str, JobRecord]]
    has_next_page: bool
    has_previous_page: bool
    total_count: int | None
    #: Where a walk forward stopped short (the page was full, or its scan budget ran out), to go on
    #: from with `after`; `None` when nothing further matched.
    resume_cursor: str | None = None

    @property
    def start_cursor(self) -> str | None:
        return self.items[0][0] if self.items else None

    @property
    def end_cursor(self) -> str | None:
        return self.items[-1][0] if self.items else None


@dataclass(frozen=True)
class TaskInfo:
    name: str
    description: str | None
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class QueueInfo:
    name: str
    counts: dict[JobStatus, int] | None  # None: not shown to this caller (they span every tenant)


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    state: str
    queues: list[str]
    current_job_id: str | None
    last_heartbeat: datetime | None
    birth: datetime | None
    successful_job_count: int | None  # None: not shown to this caller (they span every tenant)
    failed_job_count: int | None
    pid: int | None = None
    hostname: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class EventKind(StrEnum):
    """What happened to a job."""

    STATUS = "status"
    PROGRESS = "progress"
    DELETED = "deleted"


@dataclass(frozen=True)
class JobEvent:
    """A change to one job, as published on the event channel (small: readers fetch the job)."""

    job_id: str
    kind: EventKind
    status: str
    queue: str
    task: str | None
    tags: tuple[str, ...]
    at: str
    retried: bool = False
    owner: str | None = None

    def matches(self, job_filter: JobFilter) -> bool:
        return (
            (job_filter.status is None or self.status == job_filter.status.value)
            and (job_filter.queue is None or self.queue == job_filter.queue)
            and (job_filter.task is None or self.task == job_filter.task)
            and (job_filter.tag is None or job_filter.tag in self.tags)
            and (not job_filter.tags or any(tag in self.tags for tag in job_filter.tags))
            and (not job_filter.ids or self.job_id in job_filter.ids)
        )


class BulkAction(StrEnum):
    """What a bulk action does to each job it selects."""

    CANCEL = "cancel"
    REQUEUE = "requeue"
    DELETE = "delete"


class BulkSkipReason(StrEnum):
    """Why a job a bulk action was asked about was not acted on."""

    NOT_FOUND = "not_found"  # missing, expired, or not the caller's (the same answer: no oracle)
    NOT_MATCHED = "not_matched"  # named in `ids` but outside the filter's other criteria
    INVALID_STATE = "invalid_state"  # its status does not allow the action (e.g. already done)
    RATE_LIMITED = "rate_limited"  # a requeue beyond what the caller's rate limit allows at once


@dataclass(frozen=True)
class BulkSkip:
    job_id: str
    reason: BulkSkipReason
    message: str
    status: JobStatus | None = None


@dataclass(frozen=True)
class BulkOutcome:
    """A bulk action's result: `matched` jobs selected (at most the bound), `acted` on, the ones
    `skipped` and why, and whether more matched than one call takes (`truncated`; go on with
    `resume_cursor`)."""

    action: BulkAction
    matched: int
    acted: int
    acted_ids: tuple[str, ...]
    skipped: tuple[BulkSkip, ...]
    truncated: bool
    resume_cursor: str | None


@dataclass(frozen=True)
class PreparedJob:
    """A request that passed every check, with the id, metadata and options RQ will store."""

    job_id: str
    spec: TaskSpec
    queue: str
    payload: Any
    meta: dict[str, Any]
    description: str
    timeout: int
    result_ttl: int
    failure_ttl: int
    retry_max: int
    retry_intervals: tuple[int, ...]
    run_at: datetime | None
    depends_on: tuple[str, ...]
    at_front: bool
    submitted_at: datetime
    owner: str | None  # `auth.owner_of` the submitter
    idempotency_key: str | None
    fingerprint: str | None  # only with an idempotency key: hashing every request is hot-path work
    concurrency: ConcurrencyLimit | None = None  # its `key` scoped to the owner, as RQ stores it


@dataclass(frozen=True)
class Submitted:
    """A submission's outcome: the job, and whether it is an earlier one returned again."""

    record: JobRecord
    deduplicated: bool = False


#: What became of one job of a batch.
Outcome: TypeAlias = Submitted | GqlJobsError


@dataclass(frozen=True)
class RunTimeSummary:
    """Run times of finished jobs, from a histogram (`store.stats`): each percentile is the upper
    bound of the bucket it falls in, so at most `stats.BUCKET_RATIO` times the true value."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    mean: float | None


@dataclass(frozen=True)
class StatsBucket:
    """What happened to jobs in `minutes` minutes from `start` (UTC)."""

    start: datetime
    minutes: int
    submitted: int
    finished: int
    failed: int
    run_time: RunTimeSummary


@dataclass(frozen=True)
class JobStats:
    """Counts and run times per `step` minutes over the last `window` minutes (the last bucket is
    the current, unfinished minute's step), and over the whole window."""

    window: int
    step: int
    queue: str | None
    task: str | None
    buckets: list[StatsBucket]
    totals: StatsBucket
