"""GraphQL object types, built from the service's domain records at the edge.

Job fields are plain attributes filled once from a `JobRecord` (resolving a list of jobs costs no
per-field coroutine); only fields that need another Redis read (`dependsOn`, `position`) have
resolvers, and those run only when a query selects them.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from gql_jobs.domain import Attempt as DomainAttempt
from gql_jobs.domain import AttemptOutcome as DomainOutcome
from gql_jobs.domain import JobError as DomainError
from gql_jobs.domain import JobRecord
from gql_jobs.domain import JobStatus as DomainStatus
from gql_jobs.errors import GqlJobsError
from gql_jobs.graphql.context import Info
from gql_jobs.graphql.errors import query_error
from gql_jobs.graphql.node import Node


@strawberry.enum(description="Where a job is in its life. Values follow RQ's statuses.")
class JobStatus(Enum):
    QUEUED = strawberry.enum_value("queued", description="Waiting in its queue for a worker.")
    STARTED = strawberry.enum_value("started", description="A worker is running it.")
    FINISHED = strawberry.enum_value("finished", description="Ran to completion; `result` holds its value.")
    FAILED = strawberry.enum_value("failed", description="Raised an error or was abandoned; see `error`.")
    DEFERRED = strawberry.enum_value("deferred", description="Waiting for the jobs it depends on.")
    SCHEDULED = strawberry.enum_value("scheduled", description="Waiting for its scheduled time.")
    STOPPED = strawberry.enum_value("stopped", description="Stopped while running (by `cancelJob`).")
    CANCELED = strawberry.enum_value("canceled", description="Canceled before it ran.")
    UNKNOWN = strawberry.enum_value(
        "unknown", description="A status this API does not know (see `rawStatus`); treat as not final."
    )

    @classmethod
    def of(cls, status: DomainStatus) -> JobStatus:
        try:
            return cls(status.value)
        except ValueError:
            return cls.UNKNOWN

    def to_domain(self) -> DomainStatus:
        return DomainStatus(cast(str, self.value))


@strawberry.type(description="Why a job failed.")
class JobError:
    type: str | None = strawberry.field(
        description="The exception's class, qualified by its module, when readable."
    )
    message: str = strawberry.field(description="The exception's message (the traceback's last line).")
    traceback: str | None = strawberry.field(description="The worker's full traceback.")


@strawberry.type(description="What a running task last reported about itself.")
class Progress:
    current: float = strawberry.field(description="Units of work done.")
    total: float | None = strawberry.field(description="Units of work in all, when known.")
    fraction: float | None = strawberry.field(description="current / total, between 0 and 1, when known.")
    message: str | None = strawberry.field(description="A human-readable note from the task.")
    updated_at: datetime | None = strawberry.field(description="When the task reported this.")


@strawberry.enum(description="How one run of a job ended (RQ's result types).")
class AttemptOutcome(Enum):
    SUCCESSFUL = strawberry.enum_value(DomainOutcome.SUCCESSFUL.value, description="It returned a value.")
    FAILED = strawberry.enum_value(DomainOutcome.FAILED.value, description="It raised, and was not retried.")
    STOPPED = strawberry.enum_value(DomainOutcome.STOPPED.value, description="It was stopped while running.")
    RETRIED = strawberry.enum_value(
        DomainOutcome.RETRIED.value,
        description="It failed (see `error`), or asked to be retried, and was queued or scheduled again.",
    )
    MAX_RETRIES_EXCEEDED = strawberry.enum_value(
        DomainOutcome.MAX_RETRIES_EXCEEDED.value, description="It asked to be retried once more than allowed."
    )
    UNKNOWN = strawberry.enum_value(
        DomainOutcome.UNKNOWN.value, description="A result type this API does not know."
    )


@strawberry.type(description="One run of a job, as RQ recorded its result.")
class Attempt:
    id: str = strawberry.field(description="RQ's result id (a stream ID of `rq:results:<job id>`).")
    outcome: AttemptOutcome = strawberry.field(description="How the run ended.")
    return_value: JSON | None = strawberry.field(description="What it returned, when SUCCESSFUL.")
    error: JobError | None = strawberry.field(description="Why it failed, with the worker's traceback.")
    worker_name: str | None = strawberry.field(description="The worker that ran it, when recorded.")
    created_at: datetime = strawberry.field(description="When the result was recorded.")
    started_at: datetime | None = strawberry.field(description="When the run started, when recorded.")
    ended_at: datetime | None = strawberry.field(description="When the run ended, when recorded.")
    duration_seconds: float | None = strawberry.field(description="ended - started, when both are known.")

    @classmethod
    def of(cls, attempt: DomainAttempt) -> Attempt:
        return cls(
            id=attempt.id,
            outcome=AttemptOutcome(attempt.outcome.value),
            return_value=attempt.return_value,
            error=_error(attempt.error),
            worker_name=attempt.worker_name,
            created_at=attempt.created_at,
            started_at=attempt.started_at,
            ended_at=attempt.ended_at,
            duration_seconds=attempt.duration_seconds,
        )


def _error(error: DomainError | None) -> JobError | None:
    return JobError(type=error.type, message=error.message, traceback=error.traceback) if error else None


@strawberry.type(description="A background job, as RQ stores it.")
class Job(Node):
    id: strawberry.ID = strawberry.field(
        description="The job's id (`JOB-<uuid4>` for jobs submitted here), unique among all nodes (see Node)."
    )
    status: JobStatus = strawberry.field(description="Where the job is in its life.")
    raw_status: str = strawberry.field(description="The status string exactly as RQ stored it.")
    task: str | None = strawberry.field(description="The registered task name.")
    queue: str = strawberry.field(description="The queue the job was put on.")
    payload: JSON | None = strawberry.field(description="The validated input the task receives.")
    meta: JSON = strawberry.field(description="RQ's job meta: the stamped metadata, progress, and more.")
    tags: list[str] = strawberry.field(description="Labels given at submission, usable as a filter.")
    description: str | None = strawberry.field(description="A human-readable description.")
    submitted_at: datetime | None = strawberry.field(description="When the API accepted the job.")
    created_at: datetime | None = strawberry.field(description="When RQ created the job.")
    enqueued_at: datetime | None = strawberry.field(description="When the job was (last) put on its queue.")
    started_at: datetime | None = strawberry.field(description="When a worker (last) started it.")
    ended_at: datetime | None = strawberry.field(description="When it (last) finished or failed.")
    result: JSON | None = strawberry.field(description="The task's return value, once finished.")
    error: JobError | None = strawberry.field(description="Why it failed, once failed or stopped.")
    progress: Progress | None = strawberry.field(description="The task's last progress report.")
    retries_left: int | None = strawberry.field(description="Retries left under its retry policy.")
    timeout: int | None = strawberry.field(description="Seconds it may run before being killed.")
    worker_name: str | None = strawberry.field(description="The worker that ran (or runs) it.")
    result_expires_at: datetime | None = strawberry.field(
        description="When Redis drops the finished/failed job and its result (per its TTL)."
    )
    record: strawberry.Private[JobRecord]

    @strawberry.field(description="The jobs this one waits for (those still stored).")
    async def depends_on(self, info: Info) -> list[Job]:
        if not self.record.depends_on:
            return []
        records = await info.context.service.get_many(info.context.caller, list(self.record.depends_on))
        return [Job.of(record) for record in records if record is not None]

    @strawberry.field(
        description=(
            "Its runs, oldest first (RQ keeps the 10 latest, for as long as the job): why each try of "
            "a retried job failed. Read for a whole page in one round trip, only when selected."
        )
    )
    async def attempts(self, info: Info) -> list[Attempt]:
        try:
            found = await info.context.attempts.load(str(self.id))
        except GqlJobsError as exc:
            raise query_error(exc) from None
        return [Attempt.of(attempt) for attempt in found]

    @strawberry.field(description="0-based place in its queue while QUEUED (costs O(queue length)).")
    async def position(self, info: Info) -> int | None:
        try:
            return await info.context.service.position(info.context.caller, self.record)
        except GqlJobsError as exc:
            raise query_error(exc) from None

    @classmethod
    def of(cls, record: JobRecord) -> Job:
        progress = record.progress
        error = record.error
        return cls(
            id=strawberry.ID(record.id),
            status=JobStatus.of(record.status),
            raw_status=record.raw_status,
            task=record.task,
            queue=record.queue,
            payload=record.payload,
            meta=cast(JSON, record.meta),
            tags=list(record.tags),
            description=record.description,
            submitted_at=_parse_time(record.submitted_at),
            created_at=record.created_at,
            enqueued_at=record.enqueued_at,
            started_at=record.started_at,
            ended_at=record.ended_at,
            result=record.result,
            error=_error(error),
            progress=Progress(
                current=progress.current,
                total=progress.total,
                fraction=progress.fraction,
                message=progress.message,
                updated_at=progress.updated_at,
            )
            if progress
            else None,
            retries_left=record.retries_left,
            timeout=record.timeout,
            worker_name=record.worker_name,
            result_expires_at=record.result_expires_at,
            record=record,
        )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@strawberry.type(description="A task that may be submitted.")
class TaskInfo:
    name: str = strawberry.field(description="The name to give `SubmitJobInput.task`.")
    description: str | None = strawberry.field(description="What the task does.")
    input_schema: JSON = strawberry.field(description="JSON Schema of the payload the task accepts.")


@strawberry.type(description="How many jobs of a queue are in one status.")
class StatusCount:
    status: JobStatus = strawberry.field(description="The status.")
    count: int = strawberry.field(description="Jobs in that status (RQ's queue or registry size).")


@strawberry.type(
    description=(
        "A queue and the number of its jobs per status. Counts span every tenant's jobs, so only "
        "admins get them; other keys see only the queues their own newest jobs are in, with null counts."
    )
)
class QueueInfo:
    name: str = strawberry.field(description="The queue's name.")
    counts: list[StatusCount] | None = strawberry.field(description="Jobs per status; null unless admin.")
    queued: int | None = strawberry.field(description="Jobs waiting in the queue; null unless admin.")
    started: int | None = strawberry.field(description="Jobs running now; null unless admin.")
    failed: int | None = strawberry.field(
        description="Failed jobs still stored (RQ counts STOPPED ones here too); null unless admin."
    )


@strawberry.type(
    description=(
        "An RQ worker registered in Redis. Admins see every worker in full. Other keys see only the "
        "workers serving their own queues, under a pseudonym, without host, pid or job counts, with "
        "only their own queues and their own running job."
    )
)
class WorkerInfo:
    name: str = strawberry.field(description="The worker's name (a stable pseudonym unless admin).")
    state: str = strawberry.field(description="RQ's worker state: idle, busy, suspended, ...")
    queues: list[str] = strawberry.field(description="Queues it listens to, in priority order.")
    current_job_id: str | None = strawberry.field(
        description="The job it runs now (unless admin: only when that job is the caller's)."
    )
    last_heartbeat: datetime | None = strawberry.field(description="When it last said it was alive.")
    birth: datetime | None = strawberry.field(description="When it started.")
    successful_job_count: int | None = strawberry.field(description="Jobs it finished; null unless admin.")
    failed_job_count: int | None = strawberry.field(description="Jobs that failed on it; null unless admin.")
    pid: int | None = strawberry.field(description="Its process id; null unless admin.")
    hostname: str | None = strawberry.field(description="The host it runs on; null unless admin.")
