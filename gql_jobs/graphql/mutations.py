"""Operations that change jobs. Each returns a union: a success member or a typed error member."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, TypeAlias

import strawberry
from strawberry.scalars import JSON

from gql_jobs.domain import RetryPolicy, SubmitRequest, Submitted
from gql_jobs.errors import BatchTooLargeError, GqlJobsError
from gql_jobs.graphql import bulk, control
from gql_jobs.graphql.context import Info
from gql_jobs.graphql.direct_inputs import build_directly
from gql_jobs.graphql.errors import (
    IdempotencyConflictError,
    InvalidInputError,
    InvalidJobStateError,
    InvalidPayloadError,
    JobNotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    ServiceUnavailableError,
    SubmissionOutcomeUnknownError,
    UnauthorizedError,
    UnknownTaskError,
    error_member,
    query_error,
)
from gql_jobs.graphql.types import Job


@build_directly
@strawberry.input(description="Retry a failing job up to `max` times.")
class RetryInput:
    max: int = strawberry.field(description="How many retries (1-100).")
    intervals: list[int] | None = strawberry.field(
        default=None, description="Seconds to wait before each retry; the last one repeats. Default: none."
    )


@build_directly
@strawberry.input(description="A job to submit.")
class SubmitJobInput:
    task: str = strawberry.field(description="A registered task name (see `tasks`).")
    payload: JSON | None = strawberry.field(
        default=None,
        description="The task's input: a JSON object, checked against the task's schema. Default {}.",
    )
    queue: str | None = strawberry.field(
        default=None, description="Queue to put it on (default: the server's)."
    )
    tags: list[str] | None = strawberry.field(default=None, description="Labels to filter `jobs` by.")
    description: str | None = strawberry.field(default=None, description="A human-readable description.")
    timeout: int | None = strawberry.field(
        default=None, description="Seconds it may run before being killed."
    )
    result_ttl: int | None = strawberry.field(
        default=None, description="Seconds to keep it and its result once finished (-1: forever)."
    )
    failure_ttl: int | None = strawberry.field(default=None, description="Seconds to keep it once failed.")
    retry: RetryInput | None = strawberry.field(default=None, description="Retry policy on failure.")
    delay_seconds: float | None = strawberry.field(
        default=None, description="Run no sooner than this many seconds from now (not with `scheduledAt`)."
    )
    scheduled_at: datetime | None = strawberry.field(
        default=None,
        description="Run no sooner than this moment, with a time zone (not with `delaySeconds`).",
    )
    depends_on: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Jobs that must finish first; the job waits as DEFERRED until they do."
    )
    at_front: bool = strawberry.field(default=False, description="Put it at the front of its queue.")
    idempotency_key: str | None = strawberry.field(
        default=None,
        description=(
            "Makes retries safe: the same key with the same input within the server's TTL (24 h by "
            "default) returns the first job instead of a new one. Scoped to your API key's principal."
        ),
    )

    def to_domain(self) -> SubmitRequest:
        return SubmitRequest(
            task=self.task,
            payload=self.payload,
            queue=self.queue,
            tags=tuple(self.tags or ()),
            description=self.description,
            timeout=self.timeout,
            result_ttl=self.result_ttl,
            failure_ttl=self.failure_ttl,
            retry=RetryPolicy(self.retry.max, tuple(self.retry.intervals or ())) if self.retry else None,
            delay_seconds=self.delay_seconds,
            scheduled_at=self.scheduled_at,
            depends_on=tuple(str(i) for i in self.depends_on or ()),
            at_front=self.at_front,
            idempotency_key=self.idempotency_key,
        )


@strawberry.type(description="The job was accepted.")
class SubmitJobSuccess:
    job: Job = strawberry.field(description="The job (new: QUEUED, SCHEDULED or DEFERRED).")
    deduplicated: bool = strawberry.field(
        description="True when the idempotency key returned an earlier job instead of creating one."
    )

    @classmethod
    def of(cls, submitted: Submitted) -> SubmitJobSuccess:
        return cls(job=Job.of(submitted.record), deduplicated=submitted.deduplicated)


@strawberry.type(description="The job was canceled, or stopped if it was running.")
class CancelJobSuccess:
    job: Job = strawberry.field(description="The job after cancellation (CANCELED, or STOPPED).")


@strawberry.type(description="The job is back on its queue.")
class RequeueJobSuccess:
    job: Job = strawberry.field(description="The job, QUEUED again.")


@strawberry.type(description="The job and its results were deleted.")
class DeleteJobSuccess:
    job_id: strawberry.ID = strawberry.field(description="The deleted job's id.")


SubmitJobResult: TypeAlias = Annotated[
    SubmitJobSuccess
    | UnknownTaskError
    | InvalidPayloadError
    | PayloadTooLargeError
    | InvalidInputError
    | JobNotFoundError
    | IdempotencyConflictError
    | RateLimitedError
    | UnauthorizedError
    | ServiceUnavailableError
    | SubmissionOutcomeUnknownError,
    strawberry.union(
        "SubmitJobResult", description="The new job, why it was refused, or that its fate is unknown."
    ),
]
JobErrors: TypeAlias = JobNotFoundError | InvalidJobStateError | UnauthorizedError | ServiceUnavailableError
CancelJobResult: TypeAlias = Annotated[
    CancelJobSuccess | JobErrors, strawberry.union("CancelJobResult", description="The job, or why not.")
]
RequeueJobResult: TypeAlias = Annotated[
    RequeueJobSuccess | JobErrors | RateLimitedError,
    strawberry.union(
        "RequeueJobResult", description="The job, or why not (a requeue counts against the rate limit)."
    ),
]
DeleteJobResult: TypeAlias = Annotated[
    DeleteJobSuccess | JobErrors, strawberry.union("DeleteJobResult", description="The id, or why not.")
]


JOB_ID = strawberry.argument(description="The job's id.")


@strawberry.type(description="Submit and manage jobs.")
class Mutation:
    @strawberry.mutation(description="Submit one job.")
    async def submit_job(
        self, info: Info, input: Annotated[SubmitJobInput, strawberry.argument(description="The job.")]
    ) -> SubmitJobResult:
        try:
            submitted = await info.context.service.submit(info.context.caller, input.to_domain())
        except GqlJobsError as exc:
            return error_member(exc, input.idempotency_key)  # type: ignore[return-value]
        return SubmitJobSuccess.of(submitted)

    @strawberry.mutation(
        description=(
            "Submit many jobs in one Redis round trip (jobs with an idempotency key or dependencies "
            "take one each); one result per input, in order, each the outcome of that job alone "
            "(size capped)."
        )
    )
    async def submit_jobs(
        self,
        info: Info,
        inputs: Annotated[list[SubmitJobInput], strawberry.argument(description="The jobs.")],
    ) -> list[SubmitJobResult]:
        requests = [item.to_domain() for item in inputs]
        try:
            outcomes = await info.context.service.submit_many(info.context.caller, requests)
        except BatchTooLargeError as exc:
            raise query_error(exc) from None
        except GqlJobsError as exc:  # before any write (no key, rate limited, Redis down): the same for all
            return [error_member(exc, item.idempotency_key) for item in inputs]  # type: ignore[misc]
        return [_submitted(outcome, item) for outcome, item in zip(outcomes, inputs, strict=True)]

    @strawberry.mutation(description="Cancel a waiting job, or stop a running one.")
    async def cancel_job(self, info: Info, id: Annotated[strawberry.ID, JOB_ID]) -> CancelJobResult:
        try:
            record = await info.context.service.cancel(info.context.caller, str(id))
        except GqlJobsError as exc:
            return error_member(exc)  # type: ignore[return-value]
        return CancelJobSuccess(job=Job.of(record))

    @strawberry.mutation(
        description=(
            "Put a FAILED, STOPPED or CANCELED job back on its queue; it runs again, so it counts "
            "against your rate limit like a submission."
        )
    )
    async def requeue_job(self, info: Info, id: Annotated[strawberry.ID, JOB_ID]) -> RequeueJobResult:
        try:
            record = await info.context.service.requeue(info.context.caller, str(id))
        except GqlJobsError as exc:
            return error_member(exc)  # type: ignore[return-value]
        return RequeueJobSuccess(job=Job.of(record))

    @strawberry.mutation(description="Delete a job that is not running, with its results.")
    async def delete_job(self, info: Info, id: Annotated[strawberry.ID, JOB_ID]) -> DeleteJobResult:
        try:
            job_id = await info.context.service.delete(info.context.caller, str(id))
        except GqlJobsError as exc:
            return error_member(exc)  # type: ignore[return-value]
        return DeleteJobSuccess(job_id=strawberry.ID(job_id))

    requeue_jobs: bulk.BulkResult = strawberry.mutation(
        resolver=bulk.requeue_jobs,
        description=(
            "Requeue the FAILED, STOPPED and CANCELED jobs the filter selects (yours; an admin's: all), "
            "at most the server's bulk limit per call; each takes a rate-limit token. Safe to retry."
        ),
    )
    cancel_jobs: bulk.BulkResult = strawberry.mutation(
        resolver=bulk.cancel_jobs,
        description=(
            "Cancel the waiting jobs the filter selects and ask running ones to stop (not waited for), "
            "at most the server's bulk limit per call. Safe to retry."
        ),
    )
    suspend_workers: control.SuspensionResult = strawberry.mutation(
        resolver=control.suspend_workers,
        description=(
            "Suspend every RQ worker (RQ's suspension, as `rq suspend`): each finishes its current job "
            "and takes no other until `resumeWorkers`. Admins only."
        ),
    )
    resume_workers: control.SuspensionResult = strawberry.mutation(
        resolver=control.resume_workers, description="Let suspended workers take jobs again. Admins only."
    )
    empty_queue: control.EmptyQueueResult = strawberry.mutation(
        resolver=control.empty_queue,
        description=(
            "Delete every job waiting on a queue, with its hash (RQ's `Queue.empty`; no events: "
            "followers see the jobs gone). Jobs running, scheduled, deferred or done are kept. Admins only."
        ),
    )
    delete_jobs: bulk.BulkResult = strawberry.mutation(
        resolver=bulk.delete_jobs,
        description=(
            "Delete the jobs the filter selects that are not running, with their results, at most "
            "the server's bulk limit per call. Safe to retry."
        ),
    )


def _submitted(outcome: Submitted | GqlJobsError, item: SubmitJobInput) -> SubmitJobResult:
    if isinstance(outcome, GqlJobsError):
        return error_member(outcome, item.idempotency_key)  # type: ignore[return-value]
    return SubmitJobSuccess.of(outcome)
