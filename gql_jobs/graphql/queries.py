"""Read-only operations: one job, a page of jobs, the tasks, queues and workers around them, and
the job history (`stats`)."""

from __future__ import annotations

from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON

from gql_jobs.constants import STATS_MAX_WINDOW
from gql_jobs.domain import JobStatus as DomainStatus
from gql_jobs.domain import PageRequest
from gql_jobs.errors import (
    ForbiddenError,
    GqlJobsError,
    InvalidRequestError,
    JobNotFoundError,
    ServiceUnavailableError,
    UnauthenticatedError,
)
from gql_jobs.graphql import control
from gql_jobs.graphql.context import Info
from gql_jobs.graphql.errors import error_member, query_error
from gql_jobs.graphql.node import Node
from gql_jobs.graphql.pagination import JobConnection, JobFilter, JobOrder
from gql_jobs.graphql.projection import page_summary
from gql_jobs.graphql.stats import JobStats, StatsResult
from gql_jobs.graphql.types import Job, JobStatus, QueueInfo, StatusCount, TaskInfo, WorkerInfo

JOB_ID = strawberry.argument(description="The job's id.")
NODE_ID = strawberry.argument(description="The node's id (a job's id).")


@strawberry.type(description="Read jobs and the system that runs them.")
class Query:
    @strawberry.field(description="One job by id; null when there is no such job (or it has expired).")
    async def job(self, info: Info, id: Annotated[strawberry.ID, JOB_ID]) -> Job | None:
        try:
            record = await info.context.service.get(info.context.caller, str(id))
        except JobNotFoundError:
            return None
        except GqlJobsError as exc:
            raise query_error(exc) from None
        return Job.of(record)

    @strawberry.field(
        description=(
            "Jobs as a Relay connection, newest first unless `order` says otherwise. `first`/`after` "
            "page away from the order's start (towards older jobs when newest first), `last`/`before` "
            "back towards it; page size is capped by the server. O(page) for no filter, one of "
            "queue/task/tag, and any time range; a status, several criteria or several `tags` are "
            "checked on the jobs, reading ahead within a scan budget (the page may then end early "
            "with `hasNextPage`)."
        )
    )
    async def jobs(
        self,
        info: Info,
        filter: Annotated[
            JobFilter | None, strawberry.argument(description="Which jobs; all when null.")
        ] = None,
        first: Annotated[
            int | None, strawberry.argument(description="Page size, towards older jobs.")
        ] = None,
        after: Annotated[str | None, strawberry.argument(description="Start after this cursor.")] = None,
        last: Annotated[int | None, strawberry.argument(description="Page size, towards newer jobs.")] = None,
        before: Annotated[str | None, strawberry.argument(description="End before this cursor.")] = None,
        order: Annotated[
            JobOrder, strawberry.argument(description="Newest first (the default) or oldest first.")
        ] = JobOrder.NEWEST_FIRST,
    ) -> JobConnection:
        job_filter = (filter or JobFilter()).to_domain()
        request = PageRequest(first=first, after=after, last=last, before=before, order=order.to_domain())
        try:
            page = await info.context.service.list_jobs(
                info.context.caller, job_filter, request, summary=page_summary(info)
            )
        except GqlJobsError as exc:
            raise query_error(exc) from None
        return JobConnection.of(page, job_filter)

    @strawberry.field(description="The tasks that may be submitted, with their input JSON Schemas.")
    async def tasks(self, info: Info) -> list[TaskInfo]:
        try:
            tasks = await info.context.service.tasks(info.context.caller)
        except GqlJobsError as exc:
            raise query_error(exc) from None
        return [
            TaskInfo(name=t.name, description=t.description, input_schema=cast(JSON, t.input_schema))
            for t in tasks
        ]

    @strawberry.field(
        description=(
            "Every queue RQ knows, with its job counts per status, for admins; for other keys the "
            "queues their own newest jobs are in, without counts (see QueueInfo)."
        )
    )
    async def queues(self, info: Info) -> list[QueueInfo]:
        try:
            queues = await info.context.service.queues(info.context.caller)
        except GqlJobsError as exc:
            raise query_error(exc) from None
        return [_queue(q.name, q.counts) for q in queues]

    @strawberry.field(
        description="The RQ workers registered in Redis (for other keys than admin's: see WorkerInfo)."
    )
    async def workers(self, info: Info) -> list[WorkerInfo]:
        try:
            workers = await info.context.service.workers(info.context.caller)
        except GqlJobsError as exc:
            raise query_error(exc) from None
        return [
            WorkerInfo(
                name=w.name,
                state=w.state,
                queues=w.queues,
                current_job_id=w.current_job_id,
                last_heartbeat=w.last_heartbeat,
                birth=w.birth,
                successful_job_count=w.successful_job_count,
                failed_job_count=w.failed_job_count,
                pid=w.pid,
                hostname=w.hostname,
            )
            for w in workers
        ]

    workers_suspended: bool = strawberry.field(
        resolver=control.workers_suspended,
        description="Whether RQ's workers are suspended (`suspendWorkers`): they take no new jobs.",
    )

    @strawberry.field(
        description=(
            "Any node by its id (Relay's refetch); null when there is none, or it is not the "
            "caller's. Jobs are the only nodes: the same answer as `job(id:)`."
        )
    )
    async def node(self, info: Info, id: Annotated[strawberry.ID, NODE_ID]) -> Node | None:
        return (await _jobs(info, [id]))[0]

    @strawberry.field(
        description=(
            "Nodes by id, in the order given, each null when there is none or it is not the caller's "
            "(at most the maximum page size of ids)."
        )
    )
    async def nodes(
        self, info: Info, ids: Annotated[list[strawberry.ID], strawberry.argument(description="Their ids.")]
    ) -> list[Node | None]:
        limit = info.context.service.settings.max_page_size
        if len(ids) > limit:
            raise query_error(InvalidRequestError("ids", f"at most {limit} ids at once, not {len(ids)}"))
        return list(await _jobs(info, ids))

    @strawberry.field(
        description=(
            "Jobs submitted, finished and failed, and run-time percentiles, per `step` minutes over "
            "the last `window` minutes (the current one included), for one queue and/or task or all. "
            "Admins only: the history is kept over every tenant's jobs, not per tenant, so any other "
            "key gets UnauthorizedError (requiredScope: admin). Costs one Redis round trip of "
            "`window` reads, whatever the number of jobs."
        )
    )
    async def stats(
        self,
        info: Info,
        window: Annotated[
            int,
            strawberry.argument(
                description=f"Minutes back from now, this one included (1-{STATS_MAX_WINDOW})."
            ),
        ] = 60,
        step: Annotated[
            int, strawberry.argument(description="Minutes per bucket; must divide `window`.")
        ] = 1,
        queue: Annotated[
            str | None, strawberry.argument(description="Only this queue's jobs; every queue when null.")
        ] = None,
        task: Annotated[
            str | None, strawberry.argument(description="Only this task's jobs; every task when null.")
        ] = None,
    ) -> StatsResult:
        try:
            found = await info.context.service.stats(info.context.caller, window, step, queue, task)
        except (InvalidRequestError, ForbiddenError, UnauthenticatedError, ServiceUnavailableError) as exc:
            return error_member(exc)  # type: ignore[return-value]
        except GqlJobsError as exc:  # too many expensive reads at once: a top-level error, as for `jobs`
            raise query_error(exc) from None
        return JobStats.of(found)


async def _jobs(info: Info, ids: list[strawberry.ID]) -> list[Job | None]:
    """Jobs by id in one read, with `job(id:)`'s rules: another tenant's job is null, like a missing one."""
    try:
        records = await info.context.service.get_many(info.context.caller, [str(i) for i in ids])
    except GqlJobsError as exc:
        raise query_error(exc) from None
    return [Job.of(record) if record is not None else None for record in records]


def _queue(name: str, counts: dict[DomainStatus, int] | None) -> QueueInfo:
    if counts is None:
        return QueueInfo(name=name, counts=None, queued=None, started=None, failed=None)
    return QueueInfo(
        name=name,
        counts=[StatusCount(status=JobStatus.of(s), count=n) for s, n in counts.items()],
        queued=counts.get(DomainStatus.QUEUED, 0),
        started=counts.get(DomainStatus.STARTED, 0),
        failed=counts.get(DomainStatus.FAILED, 0),
    )
