"""Live operations: follow one job to its end, or a stream of events for many jobs."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry
from graphql import GraphQLError

from gql_jobs.auth import Scope
from gql_jobs.domain import EventKind
from gql_jobs.errors import ErrorCode, GqlJobsError, JobNotFoundError
from gql_jobs.graphql.context import Info
from gql_jobs.graphql.errors import query_error
from gql_jobs.graphql.pagination import JobFilter
from gql_jobs.graphql.types import Job, JobStatus
from gql_jobs.service.live import Update, fingerprint


@strawberry.enum(description="What happened to a job.")
class JobEventType(Enum):
    STATUS = strawberry.enum_value("status", description="Its status changed.")
    PROGRESS = strawberry.enum_value("progress", description="It reported progress.")
    DELETED = strawberry.enum_value("deleted", description="It was deleted.")


@strawberry.type(description="A change to one job.")
class JobEvent:
    type: JobEventType = strawberry.field(description="What happened.")
    job_id: strawberry.ID = strawberry.field(description="The job it happened to.")
    status: JobStatus = strawberry.field(description="The job's status after the change.")
    at: datetime | None = strawberry.field(description="When it was published.")
    job: Job | None = strawberry.field(description="The job as read after the change; null once deleted.")

    @classmethod
    def of(cls, update: Update) -> JobEvent:
        event = update.event
        record = update.record
        status = JobStatus.of(record.status) if record else JobStatus.UNKNOWN
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
        context = info.context
        try:
            reader = context.service.authorize(context.caller, Scope.READ)
            # Subscribe first, then read: nothing is missed.
            async with context.live.watch_job(str(id), reader) as updates:
                shown_seq = context.live.next_seq()
                try:
                    record = await context.service.get_async(reader, str(id))
                except JobNotFoundError:
                    raise GraphQLError(
                        f"Job not found: {str(id)[:140]}", extensions={"code": ErrorCode.NOT_FOUND.value}
                    ) from None
                shown = fingerprint(record)
                yield Job.of(record)
                while not record.status.is_final:
                    update = await updates.get()
                    if update.seq < shown_seq or fingerprint(update.record) == shown:
                        continue
                    if update.record is None:
                        raise GraphQLError(
                            "Job was deleted", extensions={"code": ErrorCode.JOB_DELETED.value}
                        )
                    record, shown, shown_seq = update.record, fingerprint(update.record), update.seq
                    yield Job.of(record)
        except GqlJobsError as exc:  # no key, no scope, too many subscriptions, Redis away
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
        context = info.context
        try:
            reader = context.service.authorize(context.caller, Scope.READ)
            async with context.live.watch_events(job_filter, reader) as updates:
                while True:
                    update = await updates.get()
                    if update.event.kind == EventKind.DELETED or update.record is not None:
                        yield JobEvent.of(update)
        except GqlJobsError as exc:
            raise query_error(exc) from None
