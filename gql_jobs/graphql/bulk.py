"""Bulk actions (`requeueJobs`, `cancelJobs`, `deleteJobs`): their result types and resolvers.

Each takes a `JobFilter` (with `ids`, an explicit list) and acts through the service's one path
for single and bulk actions; see `JobService.bulk` for how a retry is safe.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, TypeAlias

import strawberry

from gql_jobs.domain import BulkAction, BulkOutcome, BulkSkipReason
from gql_jobs.errors import GqlJobsError
from gql_jobs.graphql.context import Info
from gql_jobs.graphql.errors import (
    InvalidInputError,
    RateLimitedError,
    ServiceUnavailableError,
    UnauthorizedError,
    error_member,
    query_error,
)
from gql_jobs.graphql.pagination import JobFilter
from gql_jobs.graphql.types import JobStatus


@strawberry.enum(description="Why a bulk action left a job alone.")
class BulkSkipCode(Enum):
    NOT_FOUND = strawberry.enum_value(
        BulkSkipReason.NOT_FOUND.value, description="No such job, expired, or not the caller's."
    )
    NOT_MATCHED = strawberry.enum_value(
        BulkSkipReason.NOT_MATCHED.value,
        description="Named in `ids` but outside the filter's other criteria.",
    )
    INVALID_STATE = strawberry.enum_value(
        BulkSkipReason.INVALID_STATE.value,
        description="Its status does not allow the action (for instance it was already acted on).",
    )
    RATE_LIMITED = strawberry.enum_value(
        BulkSkipReason.RATE_LIMITED.value,
        description="A requeue beyond the rate limit's burst; the same call again takes the rest.",
    )


@strawberry.type(description="A job a bulk action did not act on, and why.")
class BulkSkip:
    id: strawberry.ID = strawberry.field(description="The job's id.")
    reason: BulkSkipCode = strawberry.field(description="Why, as a code.")
    message: str = strawberry.field(description="Why, for humans.")
    status: JobStatus | None = strawberry.field(description="Its status when skipped, when known.")


@strawberry.type(
    description=(
        "What a bulk action did. Safe to retry: jobs acted on no longer match (canceled, queued "
        "again, gone), so the same call again acts on the next ones, never twice on one."
    )
)
class BulkActionResult:
    matched: int = strawberry.field(
        description=(
            "Jobs selected: the `ids` given, or the caller's jobs matching the filter that the action "
            "applies to (at most the server's bulk limit)."
        )
    )
    acted: int = strawberry.field(
        description="Jobs acted on (running jobs asked to stop count here: their worker stops them)."
    )
    acted_ids: list[strawberry.ID] = strawberry.field(description="Their ids.")
    skipped: list[BulkSkip] = strawberry.field(description="The selected jobs not acted on, with why.")
    truncated: bool = strawberry.field(
        description=(
            "More jobs may match than one call takes (the bulk limit, or the listing's scan budget): "
            "call again (with `after: cursor` to go past jobs it could not act on)."
        )
    )
    cursor: str | None = strawberry.field(description="Where a truncated selection stopped; pass as `after`.")

    @classmethod
    def of(cls, outcome: BulkOutcome) -> BulkActionResult:
        return cls(
            matched=outcome.matched,
            acted=outcome.acted,
            acted_ids=[strawberry.ID(i) for i in outcome.acted_ids],
            skipped=[
                BulkSkip(
                    id=strawberry.ID(s.job_id),
                    reason=BulkSkipCode(s.reason.value),
                    message=s.message,
                    status=JobStatus.of(s.status) if s.status is not None else None,
                )
                for s in outcome.skipped
            ],
            truncated=outcome.truncated,
            cursor=outcome.resume_cursor,
        )


BulkResult: TypeAlias = Annotated[
    BulkActionResult | InvalidInputError | RateLimitedError | UnauthorizedError | ServiceUnavailableError,
    strawberry.union("BulkResult", description="What the bulk action did, or why it did nothing."),
]

FILTER = strawberry.argument(
    description="Which jobs; `ids` names them explicitly (at most the bulk limit). Required: {} means all."
)
AFTER = strawberry.argument(description="Go on after a truncated result's `cursor` (not with `ids`).")


async def _bulk(info: Info, action: BulkAction, filter: JobFilter, after: str | None) -> BulkResult:
    try:
        outcome = await info.context.service.bulk(info.context.caller, action, filter.to_domain(), after)
    except GqlJobsError as exc:
        try:
            return error_member(exc)  # type: ignore[return-value]
        except GqlJobsError:  # no member for it (too many concurrent reads): a coded top-level error
            raise query_error(exc) from None
    return BulkActionResult.of(outcome)


async def requeue_jobs(
    info: Info, filter: Annotated[JobFilter, FILTER], after: Annotated[str | None, AFTER] = None
) -> BulkResult:
    return await _bulk(info, BulkAction.REQUEUE, filter, after)


async def cancel_jobs(
    info: Info, filter: Annotated[JobFilter, FILTER], after: Annotated[str | None, AFTER] = None
) -> BulkResult:
    return await _bulk(info, BulkAction.CANCEL, filter, after)


async def delete_jobs(
    info: Info, filter: Annotated[JobFilter, FILTER], after: Annotated[str | None, AFTER] = None
) -> BulkResult:
    return await _bulk(info, BulkAction.DELETE, filter, after)
