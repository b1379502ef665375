"""`GqlJobsClient`: the async client driven from synchronous code, on an event loop of its own in a
background thread (anyio's blocking portal). One implementation, two faces: nothing here but
delegation, so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator, Sequence
from contextlib import ExitStack
from datetime import datetime
from typing import Any, Self, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

from gql_jobs.client._generated.enums import JobOrder, JobStatus
from gql_jobs.client._generated.input_types import JobFilter, RetryInput, SubmitJobInput
from gql_jobs.client.async_client import (
    AsyncGqlJobsClient,
    Job,
    JobDetail,
    JobEvent,
    JobStats,
    Moment,
    Queue,
    Task,
    Worker,
)
from gql_jobs.client.bulk import BulkOutcome
from gql_jobs.client.config import ClientConfig

T = TypeVar("T")


class GqlJobsClient:
    """Use as `with GqlJobsClient(url, api_key=...) as client:` (or call `close()`). The same
    arguments, environment variables and methods as `AsyncGqlJobsClient`, without `await`."""

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff: float | None = None,
    ) -> None:
        ClientConfig.resolve(url, api_key, timeout, retries, backoff)  # a bad value: before any thread
        self._exit = ExitStack()
        self._portal: BlockingPortal = self._exit.enter_context(start_blocking_portal())

        async def make() -> AsyncGqlJobsClient:  # httpx's client belongs to the portal's loop
            return AsyncGqlJobsClient(url, api_key=api_key, timeout=timeout, retries=retries, backoff=backoff)

        try:
            self._async = self._portal.call(make)
        except BaseException:
            self._exit.close()
            raise

    @property
    def config(self) -> ClientConfig:
        return self._async.config

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._portal.call(self._async.aclose)
        finally:
            self._exit.close()

    def submit(
        self,
        task: str,
        payload: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        tags: Sequence[str] | None = None,
        description: str | None = None,
        timeout: int | None = None,
        result_ttl: int | None = None,
        failure_ttl: int | None = None,
        retry: int | RetryInput | None = None,
        delay_seconds: float | None = None,
        scheduled_at: datetime | None = None,
        depends_on: Sequence[str] | None = None,
        at_front: bool = False,
        idempotency_key: str | None = None,
    ) -> Job:
        """Submit one job; returns it (QUEUED, SCHEDULED or DEFERRED), or raises why not."""

        async def call() -> Job:
            return await self._async.submit(
                task,
                payload,
                queue=queue,
                tags=tags,
                description=description,
                timeout=timeout,
                result_ttl=result_ttl,
                failure_ttl=failure_ttl,
                retry=retry,
                delay_seconds=delay_seconds,
                scheduled_at=scheduled_at,
                depends_on=depends_on,
                at_front=at_front,
                idempotency_key=idempotency_key,
            )

        return self._portal.call(call)

    def submit_many(self, specs: Sequence[SubmitJobInput]) -> list[Job]:
        return self._portal.call(self._async.submit_many, specs)

    def get(self, job_id: str) -> JobDetail:
        return self._portal.call(self._async.get, job_id)

    def list_page(
        self,
        filter: JobFilter | None = None,
        *,
        first: int | None = None,
        after: str | None = None,
        order: JobOrder | str = JobOrder.NEWEST_FIRST,
    ) -> tuple[list[Job], str | None, int | None]:
        async def call() -> tuple[list[Job], str | None, int | None]:
            return await self._async.list_page(filter, first=first, after=after, order=order)

        return self._portal.call(call)

    def jobs(
        self,
        *,
        status: JobStatus | str | None = None,
        queue: str | None = None,
        task: str | None = None,
        tag: str | None = None,
        tags: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        submitted_after: Moment | None = None,
        submitted_before: Moment | None = None,
        order: JobOrder | str = JobOrder.NEWEST_FIRST,
        page_size: int | None = None,
        limit: int | None = None,
    ) -> Iterator[Job]:
        return self._iterate(
            self._async.jobs(
                status=status,
                queue=queue,
                task=task,
                tag=tag,
                tags=tags,
                ids=ids,
                submitted_after=submitted_after,
                submitted_before=submitted_before,
                order=order,
                page_size=page_size,
                limit=limit,
            )
        )

    def tasks(self) -> list[Task]:
        return self._portal.call(self._async.tasks)

    def queues(self) -> list[Queue]:
        return self._portal.call(self._async.queues)

    def workers(self) -> list[Worker]:
        return self._portal.call(self._async.workers)

    def workers_suspended(self) -> bool:
        return self._portal.call(self._async.workers_suspended)

    def stats(
        self, window: int = 60, step: int = 1, *, queue: str | None = None, task: str | None = None
    ) -> JobStats:
        async def call() -> JobStats:
            return await self._async.stats(window, step, queue=queue, task=task)

        return self._portal.call(call)

    def suspend_workers(self, ttl_seconds: int | None = None) -> bool:
        return self._portal.call(self._async.suspend_workers, ttl_seconds)

    def resume_workers(self) -> bool:
        return self._portal.call(self._async.resume_workers)

    def empty_queue(self, queue: str) -> int:
        return self._portal.call(self._async.empty_queue, queue)

    def requeue_jobs(self, *, all_pages: bool = True, **selection: Any) -> BulkOutcome:
        async def call() -> BulkOutcome:
            return await self._async.requeue_jobs(all_pages=all_pages, **selection)

        return self._portal.call(call)

    def cancel_jobs(self, *, all_pages: bool = True, **selection: Any) -> BulkOutcome:
        async def call() -> BulkOutcome:
            return await self._async.cancel_jobs(all_pages=all_pages, **selection)

        return self._portal.call(call)

    def delete_jobs(self, *, all_pages: bool = True, **selection: Any) -> BulkOutcome:
        async def call() -> BulkOutcome:
            return await self._async.delete_jobs(all_pages=all_pages, **selection)

        return self._portal.call(call)

    def cancel(self, job_id: str) -> Job:
        return self._portal.call(self._async.cancel, job_id)

    def requeue(self, job_id: str) -> Job:
        return self._portal.call(self._async.requeue, job_id)

    def delete(self, job_id: str) -> str:
        return self._portal.call(self._async.delete, job_id)

    def follow(self, job_id: str) -> Iterator[Job]:
        return self._iterate(self._async.follow(job_id))

    def events(
        self,
        *,
        status: JobStatus | str | None = None,
        queue: str | None = None,
        task: str | None = None,
        tag: str | None = None,
    ) -> Iterator[JobEvent]:
        return self._iterate(self._async.events(status=status, queue=queue, task=task, tag=tag))

    def wait(self, job_id: str, timeout: float | None = None) -> Any:
        return self._portal.call(self._async.wait, job_id, timeout)

    def _iterate(self, stream: AsyncGenerator[T]) -> Iterator[T]:
        """An async iterator stepped from this thread; closed (on its loop) when the caller stops."""
        try:
            while True:
                try:
                    yield self._portal.call(stream.__anext__)
                except StopAsyncIteration:
                    return
        finally:
            self._portal.call(stream.aclose)
