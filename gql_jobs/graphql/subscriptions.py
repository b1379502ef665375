"""Live operations: follow one job to its end, or a stream of events for many jobs.

The rules of both streams are the service's (`gql_jobs.service.follow`); these resolvers only turn
what it yields into GraphQL types, and its errors into GraphQL errors with their codes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from gql_jobs.domain import EventKind
from gql_jobs.domain import JobStatus as DomainStatus
from gql_jobs.errors import GqlJobsError, InvalidRequestError
from gql_jobs.graphql.context import Info
from gql_jobs.graphql.errors import query_error
from gql_jobs.graphql.pagination import JobFilter
from gql_jobs.graphql.types import Job, JobStatus
from gql_jobs.service import follow
from gql_jobs.service.watchers import Update


@strawberry.enum(description="What happened to a job.")
class JobEventType(Enum):
    STATUS = strawberry.enum_value("status", description="Its status changed.")
    PROGRESS = strawberry.enum_value("progress", description="It reported progress.")
    DELETED = strawberry.enum_value("deleted", description="It was deleted.")


@strawberry.type(description="A change to one job.")
class JobEvent:
    type: JobEventType = strawberry.field(description="What happened.")
    job_id: strawberry.ID = strawberry.field(description="The job it happened to.")
    status: JobStatus = strawberry.field(
        description=(
            "The status the change announced (the job may have moved on by the time it is read: "
            "see `job`); UNKNOWN for a deletion."
        )
    )
    at: datetime | None = strawberry.field(description="When it was published.")
    job: Job | None = strawberry.field(description="The job as read after the change; null once deleted.")

    @classmethod
    def of(cls, update: Update) -> JobEvent:
        event = update.event
        record = update.record
        if event.kind == EventKind.DELETED:  # a deletion announces no status, whoever saw it
            announced = DomainStatus.UNKNOWN
        else:
            announced = DomainStatus.parse(event.status)
            if announced is DomainStatus.UNKNOWN and record is not None:
                announced = record.status
        status = JobStatus.of(announced)
        try:
            at = datetime.fromisoformat(event.at)
        except ValueError:
            at = None
        return cls(
            type=JobEventType(event.kind.value),
            job_id=strawberry.ID(event.job_id),
            status=status,
            at=at,
            job=Job.of(record) if record else None,
        )


JOB_ID = strawberry.argument(description="The job's id.")


@strawberry.type(description="Follow jobs as they change (WebSocket or Server-Sent Events).")
class Subscription:
    @strawberry.subscription(
        description=(
            "The job's current state at once, then again at every change (status, progress); completes "
            "when the job reaches a final state (at once if it already has). An unknown id is an error."
        )
    )
    async def job_updates(
        self, info: Info, id: Annotated[strawberry.ID, JOB_ID]
    ) -> AsyncGenerator[Job, None]:
        try:
            async for record in follow.follow(info.context.live, info.context.caller, str(id)):
                yield Job.of(record)
        except GqlJobsError as exc:  # not found, deleted, no key or scope, too many, Redis away
            raise query_error(exc) from None

    @strawberry.subscription(description="Events for every job matching the filter (all jobs when null).")
    async def job_events(
        self,
        info: Info,
        filter: Annotated[
            JobFilter | None, strawberry.argument(description="Which jobs; all when null.")
        ] = None,
    ) -> AsyncGenerator[JobEvent, None]:
        job_filter = (filter or JobFilter()).to_domain()
        if job_filter.submitted_after is not None or job_filter.submitted_before is not None:
            field = "submittedAfter/submittedBefore"
            raise query_error(InvalidRequestError(field, "not for events (they carry no submission time)"))
        try:
            async for update in follow.events(info.context.live, info.context.caller, job_filter):
                yield JobEvent.of(update)
        except GqlJobsError as exc:
            raise query_error(exc) from None
