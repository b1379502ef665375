"""Queue and worker control (`suspendWorkers`, `resumeWorkers`, `emptyQueue`, `workersSuspended`):
admin operations over RQ's own controls (see `gql_jobs.store.control`)."""

from __future__ import annotations

from typing import Annotated, TypeAlias

import strawberry

from gql_jobs.errors import GqlJobsError
from gql_jobs.graphql.context import Info
from gql_jobs.graphql.errors import (
    InvalidInputError,
    ServiceUnavailableError,
    UnauthorizedError,
    error_member,
    query_error,
)


@strawberry.type(description="Whether RQ's workers are suspended now.")
class WorkersSuspension:
    suspended: bool = strawberry.field(
        description="True: workers finish their current job and take no other until resumed."
    )


@strawberry.type(description="The queue's waiting jobs were deleted.")
class EmptyQueueSuccess:
    queue: str = strawberry.field(description="The queue.")
    deleted: int = strawberry.field(description="How many waiting jobs were deleted, with their hashes.")


SuspensionResult: TypeAlias = Annotated[
    WorkersSuspension | InvalidInputError | UnauthorizedError | ServiceUnavailableError,
    strawberry.union(
        "SuspensionResult", description="Whether workers are suspended now, or why not changed."
    ),
]
EmptyQueueResult: TypeAlias = Annotated[
    EmptyQueueSuccess | InvalidInputError | UnauthorizedError | ServiceUnavailableError,
    strawberry.union("EmptyQueueResult", description="How many jobs were deleted, or why none were."),
]


async def suspend_workers(
    info: Info,
    ttl_seconds: Annotated[
        int | None,
        strawberry.argument(description="Resume by itself after this many seconds; null: until resumed."),
    ] = None,
) -> SuspensionResult:
    try:
        suspended = await info.context.service.suspend_workers(info.context.caller, ttl_seconds)
    except GqlJobsError as exc:
        return error_member(exc)  # type: ignore[return-value]
    return WorkersSuspension(suspended=suspended)


async def resume_workers(info: Info) -> SuspensionResult:
    try:
        suspended = await info.context.service.resume_workers(info.context.caller)
    except GqlJobsError as exc:
        return error_member(exc)  # type: ignore[return-value]
    return WorkersSuspension(suspended=suspended)


async def empty_queue(
    info: Info, queue: Annotated[str, strawberry.argument(description="The queue to empty.")]
) -> EmptyQueueResult:
    try:
        deleted = await info.context.service.empty_queue(info.context.caller, queue)
    except GqlJobsError as exc:
        return error_member(exc)  # type: ignore[return-value]
    return EmptyQueueSuccess(queue=queue, deleted=deleted)


async def workers_suspended(info: Info) -> bool:
    try:
        return await info.context.service.workers_suspended(info.context.caller)
    except GqlJobsError as exc:
        raise query_error(exc) from None
