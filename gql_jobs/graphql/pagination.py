"""The Relay-style `JobConnection`, backed by the service's Redis index (not an in-memory list)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import cast

import strawberry

from gql_jobs.domain import JobFilter as DomainFilter
from gql_jobs.domain import Order, Page
from gql_jobs.errors import GqlJobsError
from gql_jobs.graphql.context import Info
from gql_jobs.graphql.errors import query_error
from gql_jobs.graphql.types import Job, JobStatus


@strawberry.input(description="Which jobs to list; every given criterion must hold.")
class JobFilter:
    status: JobStatus | None = strawberry.field(default=None, description="Only jobs in this status.")
    queue: str | None = strawberry.field(default=None, description="Only jobs on this queue.")
    task: str | None = strawberry.field(default=None, description="Only jobs of this task.")
    tag: str | None = strawberry.field(default=None, description="Only jobs carrying this tag.")
    tags: list[str] | None = strawberry.field(
        default=None,
        description=(
            "Only jobs carrying any of these tags (at most the server's tag limit). One tag walks its "
            "own index; several walk the next narrowest one (owner, task, queue or all) and check the "
            "tags on each job: a scan, bounded per page like a status filter."
        ),
    )
    ids: list[strawberry.ID] | None = strawberry.field(
        default=None,
        description=(
            "Only these jobs (at most the maximum page size; in bulk actions the bulk limit): read "
            "by id in one round trip, in the page's order by creation time, on one page (no "
            "`after`/`before`). Ids that are missing or not the caller's are left out."
        ),
    )
    submitted_after: datetime | None = strawberry.field(
        default=None,
        description=(
            "Only jobs stored at or after this moment (with a time zone; to the millisecond of Redis' "
            "clock; for jobs named in `ids`, their creation time). Bounds the index walk: no scan."
        ),
    )
    submitted_before: datetime | None = strawberry.field(
        default=None,
        description="Only jobs stored before this moment (with a time zone). Bounds the index walk: no scan.",
    )

    def to_domain(self) -> DomainFilter:
        return DomainFilter(
            status=self.status.to_domain() if self.status else None,
            queue=self.queue,
            task=self.task,
            tag=self.tag,
            tags=tuple(self.tags or ()),
            ids=tuple(str(i) for i in self.ids or ()),
            submitted_after=self.submitted_after,
            submitted_before=self.submitted_before,
        )


@strawberry.enum(description="Which end of the listing `first` starts from.")
class JobOrder(Enum):
    NEWEST_FIRST = strawberry.enum_value(
        "newest_first", description="Newest first (`first`/`after` go towards older jobs)."
    )
    OLDEST_FIRST = strawberry.enum_value(
        "oldest_first", description="Oldest listable first (`first`/`after` go towards newer jobs)."
    )

    def to_domain(self) -> Order:
        return Order(cast(str, self.value))


@strawberry.type(description="Where a page sits among all pages (Relay's PageInfo).")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="More jobs exist after this page (older ones when newest first)."
    )
    has_previous_page: bool = strawberry.field(
        description="More jobs exist before this page (newer ones when newest first)."
    )
    start_cursor: str | None = strawberry.field(description="Cursor of the first job in the page.")
    end_cursor: str | None = strawberry.field(description="Cursor of the last job in the page.")


@strawberry.type(description="A job and its cursor.")
class JobEdge:
    cursor: str = strawberry.field(
        description="Opaque; pass to `after`/`before`. Stays valid as jobs arrive."
    )
    node: Job = strawberry.field(description="The job.")


@strawberry.type(description="A page of jobs, in the order asked for (newest first by default).")
class JobConnection:
    edges: list[JobEdge] = strawberry.field(description="The jobs in this page.")
    page_info: PageInfo = strawberry.field(description="How to get the neighbouring pages.")
    job_filter: strawberry.Private[DomainFilter]

    @strawberry.field(
        description=(
            "How many jobs match, when that is cheap to know: without a filter, with one of queue/task/tag, "
            "or with a status other than FAILED/STOPPED (and optionally a queue). Null otherwise. Without "
            "a status it counts listing entries, which may include jobs expired or deleted since the "
            "listing last passed them."
        )
    )
    async def total_count(self, info: Info) -> int | None:
        try:
            return await info.context.service.count_jobs(info.context.caller, self.job_filter)
        except GqlJobsError as exc:
            raise query_error(exc) from None

    @classmethod
    def of(cls, page: Page, job_filter: DomainFilter) -> JobConnection:
        return cls(
            edges=[JobEdge(cursor=cursor, node=Job.of(record)) for cursor, record in page.items],
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=page.start_cursor,
                end_cursor=page.end_cursor,
            ),
            job_filter=job_filter,
        )
