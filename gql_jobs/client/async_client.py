"""`AsyncGqlJobsClient`: the whole public API over HTTP (queries, mutations) and a WebSocket
(graphql-transport-ws subscriptions), on the client generated from `schema.graphql` and
`operations/*.graphql` (`_generated/`, made by scripts/generate-client).

What it adds to the generated layer: union members raised as exceptions of the same names
(`errors.py`), idempotency keys made for every submission that has none, retries (the transport's
for HTTP failures, here for the union members that say "retry": the same request, so the same
key), a paging iterator, bulk actions followed to the end (`bulk.py`), `follow`/`events` that reconnect
when the WebSocket drops, and `wait`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, ParamSpec, Self, TypeVar

import anyio
import httpx
from websockets.exceptions import ConnectionClosedError, InvalidStatus, WebSocketException

from gql_jobs.client._generated.cancel_job import CancelJobCancelJobCancelJobSuccess as CancelJobSuccess
from gql_jobs.client._generated.client import GeneratedClient
from gql_jobs.client._generated.delete_job import DeleteJobDeleteJobDeleteJobSuccess as DeleteJobSuccess
from gql_jobs.client._generated.empty_queue import EmptyQueueEmptyQueueEmptyQueueSuccess as EmptyQueueSuccess
from gql_jobs.client._generated.enums import JobOrder, JobStatus
from gql_jobs.client._generated.exceptions import (
    GraphQLClientGraphQLMultiError,
    GraphQLClientHttpError,
    GraphQLClientInvalidResponseError,
)
from gql_jobs.client._generated.fragments import BulkFields, JobFields
from gql_jobs.client._generated.get_job import GetJobJob
from gql_jobs.client._generated.input_types import JobFilter, RetryInput, SubmitJobInput
from gql_jobs.client._generated.job_events import JobEventsJobEvents
from gql_jobs.client._generated.queues import QueuesQueues
from gql_jobs.client._generated.requeue_job import RequeueJobRequeueJobRequeueJobSuccess as RequeueJobSuccess
from gql_jobs.client._generated.resume_workers import (
    ResumeWorkersResumeWorkersWorkersSuspension as ResumeWorkersResult,
)
from gql_jobs.client._generated.stats import StatsStatsJobStats
from gql_jobs.client._generated.submit_job import SubmitJobSubmitJobSubmitJobSuccess as SubmitJobSuccess
from gql_jobs.client._generated.suspend_workers import (
    SuspendWorkersSuspendWorkersWorkersSuspension as SuspendWorkersResult,
)
from gql_jobs.client._generated.tasks import TasksTasks
from gql_jobs.client._generated.workers import WorkersWorkers
from gql_jobs.client.bulk import BulkOutcome
from gql_jobs.client.config import ClientConfig
from gql_jobs.client.errors import (
    ApiError,
    BatchSubmitError,
    ClientError,
    JobFailedError,
    JobNotFoundError,
    RequestError,
    ServerUnreachableError,
    UnauthorizedError,
    api_error,
)
from gql_jobs.client.moments import parse_moment
from gql_jobs.client.retrying import RetryingTransport, pause, retry_delay
from gql_jobs.errors import ErrorCode

T = TypeVar("T")
S = TypeVar("S")
P = ParamSpec("P")
Job = JobFields
#: A job as `get` reads it: with its `attempts` (each run's outcome, error, worker, duration).
JobDetail = GetJobJob
JobEvent = JobEventsJobEvents
Task = TasksTasks
Queue = QueuesQueues
Worker = WorkersWorkers
JobStats = StatsStatsJobStats
Moment = datetime | str
#: Statuses a job does not leave by itself.
FINAL_STATUSES = frozenset({JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})
#: graphql-transport-ws close codes our server uses to refuse a key (4401 no key, 4403 refused).
_REFUSED_CLOSE_CODES = frozenset({4401, 4403})
_AUTH_CODES = frozenset({ErrorCode.UNAUTHENTICATED, ErrorCode.FORBIDDEN})


def new_idempotency_key() -> str:
    """A key for one submission: the client's retries reuse it, so they cannot make a second job."""
    return f"py-{uuid.uuid4().hex}"


class AsyncGqlJobsClient:
    """Use as `async with AsyncGqlJobsClient(url, api_key=...) as client:` (or call `aclose()`).

    Every argument falls back to its environment variable (`config.py`): GQL_JOBS_URL,
    GQL_JOBS_API_KEY, GQL_JOBS_TIMEOUT, GQL_JOBS_RETRIES.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff: float | None = None,
    ) -> None:
        self.config = ClientConfig.resolve(url, api_key, timeout, retries, backoff)
        config = self.config
        transport = RetryingTransport(
            httpx.AsyncHTTPTransport(), config.retries, config.backoff, config.max_backoff
        )
        self._http = httpx.AsyncClient(headers=config.headers(), timeout=config.timeout, transport=transport)
        self._api = GeneratedClient(
            url=config.graphql_url,
            # httpx's client is the generated client's own default; its Protocol is typed looser.
            http_client=self._http,  # type: ignore[arg-type]
            ws_url=config.ws_url,
            ws_connection_init_payload=config.headers() or None,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- submitting -------------------------------------------------------------------------------

    async def submit(
        self,
        task: str,
        payload: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        tags: Sequence[str] | None = None,
        description: str | None = None,
        timeout: int | None = None,  # noqa: ASYNC109 (the job's timeout, not this call's)
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
        spec = job_input(
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
        keyed = with_key(spec)  # made once: every retry sends the same key
        return (await self._success(SubmitJobSuccess, self._api.submit_job, keyed)).job

    async def submit_many(self, specs: Sequence[SubmitJobInput]) -> list[Job]:
        """Submit a batch (see `job_input`); each spec without an idempotency key gets one. When a
        retryable error hits some of them the whole batch is sent again with the same keys (the
        accepted ones come back deduplicated). Raises `BatchSubmitError` if any is refused."""
        keyed = [with_key(spec) for spec in specs]
        attempt = 0
        while True:
            results = (await self._call(self._api.submit_jobs(keyed))).submit_jobs
            outcomes: list[Job | ApiError] = [
                r.job if r.typename__ == "SubmitJobSuccess" else api_error(r) for r in results
            ]
            errors = [o for o in outcomes if isinstance(o, ApiError)]
            if not errors:
                return [o for o in outcomes if isinstance(o, JobFields)]
            if attempt >= self.config.retries or not all(e.retryable for e in errors):
                raise BatchSubmitError(outcomes)
            await pause(self._union_delay(attempt, errors[0]), type(errors[0]).__name__)
            attempt += 1

    # -- reading ----------------------------------------------------------------------------------

    async def get(self, job_id: str) -> JobDetail:
        """The job with its attempts; raises `JobNotFoundError` when there is none (or it expired)."""
        job = (await self._call(self._api.get_job(job_id))).job
        if job is None:
            raise JobNotFoundError(f"No job with id {job_id!r}", code=ErrorCode.NOT_FOUND, job_id=job_id)
        return job

    async def list_page(
        self,
        filter: JobFilter | None = None,
        *,
        first: int | None = None,
        after: str | None = None,
        order: JobOrder | str = JobOrder.NEWEST_FIRST,
    ) -> tuple[list[Job], str | None, int | None]:
        """One page, newest first (or `order`): its jobs, the cursor of the next page (None on the
        last), and the total count when the server knows it cheaply."""
        jobs = (await self._call(self._api.list_jobs(_order(order), filter, first, after))).jobs
        cursor = jobs.page_info.end_cursor if jobs.page_info.has_next_page else None
        return [edge.node for edge in jobs.edges], cursor, jobs.total_count

    async def jobs(
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
    ) -> AsyncGenerator[Job]:
        """Every matching job, newest first (or `order`), fetching page after page as the iteration
        goes. `tags` matches any of them; `submitted_after`/`submitted_before` take a datetime, ISO
        8601 or a span back from now (`"1h"`, `moments.py`)."""
        filter = job_filter(
            status=status,
            queue=queue,
            task=task,
            tag=tag,
            tags=tags,
            ids=ids,
            submitted_after=submitted_after,
            submitted_before=submitted_before,
        )
        cursor: str | None = None
        seen = 0
        while True:
            page, cursor, _ = await self.list_page(filter, first=page_size, after=cursor, order=order)
            for job in page:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                yield job
            if cursor is None:
                return

    async def tasks(self) -> list[Task]:
        return (await self._call(self._api.tasks())).tasks

    async def queues(self) -> list[Queue]:
        return (await self._call(self._api.queues())).queues

    async def workers(self) -> list[Worker]:
        return (await self._call(self._api.workers())).workers

    async def workers_suspended(self) -> bool:
        """Whether RQ's workers are suspended (they take no new jobs)."""
        return (await self._call(self._api.workers_suspended())).workers_suspended

    async def stats(
        self, window: int = 60, step: int = 1, *, queue: str | None = None, task: str | None = None
    ) -> JobStats:
        """Jobs submitted, finished, failed and run times per `step` minutes over the last `window`
        minutes, oldest bucket first (admins only)."""
        return await self._success(JobStats, self._api.stats, window, step, queue, task)

    # -- managing ---------------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> Job:
        """Cancel a waiting job or stop a running one; returns it CANCELED or STOPPED."""
        return (await self._success(CancelJobSuccess, self._api.cancel_job, job_id)).job

    async def requeue(self, job_id: str) -> Job:
        """Put a FAILED, STOPPED or CANCELED job back on its queue; returns it QUEUED."""
        return (await self._success(RequeueJobSuccess, self._api.requeue_job, job_id)).job

    async def delete(self, job_id: str) -> str:
        """Delete a job that is not running, with its results; returns its id."""
        return (await self._success(DeleteJobSuccess, self._api.delete_job, job_id)).job_id

    async def suspend_workers(self, ttl_seconds: int | None = None) -> bool:
        """Suspend every RQ worker (each finishes its job, takes no other) until `resume_workers`,
        or for `ttl_seconds`; returns whether they are suspended now (admins only)."""
        return (await self._success(SuspendWorkersResult, self._api.suspend_workers, ttl_seconds)).suspended

    async def resume_workers(self) -> bool:
        """Let suspended workers take jobs again; returns whether they are still suspended."""
        return (await self._success(ResumeWorkersResult, self._api.resume_workers)).suspended

    async def empty_queue(self, queue: str) -> int:
        """Delete every job waiting on `queue`; returns how many (admins only)."""
        return (await self._success(EmptyQueueSuccess, self._api.empty_queue, queue)).deleted

    # -- bulk actions -----------------------------------------------------------------------------

    async def requeue_jobs(self, *, all_pages: bool = True, **selection: Any) -> BulkOutcome:
        """Requeue the FAILED, STOPPED and CANCELED jobs selected (see `cancel_jobs`)."""
        return await self._bulk(self._api.requeue_jobs, selection, all_pages)

    async def cancel_jobs(self, *, all_pages: bool = True, **selection: Any) -> BulkOutcome:
        """Cancel the waiting jobs selected and ask running ones to stop. Select by `ids=[...]` or
        by the criteria of `jobs()` (status, queue, task, tag, tags, submitted_after,
        submitted_before); nothing given is refused unless `all_jobs=True`. The server acts on at
        most its bulk limit per call: this calls again until it is done (`all_pages=False`: one
        call, whose `truncated`/`cursor` the outcome keeps) and returns the sum."""
        return await self._bulk(self._api.cancel_jobs, selection, all_pages)

    async def delete_jobs(self, *, all_pages: bool = True, **selection: Any) -> BulkOutcome:
        """Delete the selected jobs that are not running, with their results (see `cancel_jobs`)."""
        return await self._bulk(self._api.delete_jobs, selection, all_pages)

    async def _bulk(
        self,
        mutation: Callable[[JobFilter, str | None], Awaitable[Any]],
        selection: dict[str, Any],
        all_pages: bool,
    ) -> BulkOutcome:
        every = bool(selection.pop("all_jobs", False))
        filter = job_filter(**selection)
        if filter is None:
            if not every:
                raise ValueError(
                    f"{mutation.__name__}: give ids or a criterion (all_jobs=True acts on every job)"
                )
            filter = JobFilter()
        outcome = BulkOutcome()
        after: str | None = None
        while True:
            # Each mutation's BulkActionResult member is a `BulkFields`; retrying is safe: acted-on
            # jobs no longer match.
            page = await self._success(BulkFields, mutation, filter, after)
            outcome.add(page)
            stuck = page.acted == 0 and page.cursor in (None, after)  # again would do the same
            if not page.truncated or not all_pages or filter.ids is not None or stuck:
                return outcome
            after = page.cursor

    # -- following --------------------------------------------------------------------------------

    async def follow(self, job_id: str) -> AsyncGenerator[Job]:
        """The job now, then at every change (status, progress), ending once it is final.

        When the WebSocket drops (or closes before a final state) it reconnects, up to the client's
        `retries` times in a row without news of the job, with its backoff, and first re-reads the
        job over HTTP, so a final state reached while disconnected is still the last one yielded.
        An update equal to the one before (the re-read, then the new subscription's first answer)
        is yielded once."""
        last: Job | None = None
        drops = 0
        while True:
            try:
                if drops:  # reconnecting: what happened while we were away
                    job: Job = await self.get(job_id)
                    if last is None or _changed(last, job):
                        last = job
                        yield job
                    if job.status in FINAL_STATUSES:
                        return
                async for update in self._stream(self._api.follow_job(job_id)):
                    job = update.job_updates
                    if last is None or _changed(last, job):
                        drops = 0  # news: a connection that only repeats the state does not count
                        last = job
                        yield job
                if last is not None and last.status in FINAL_STATUSES:
                    return
                why = "the subscription ended before a final state"
            except ServerUnreachableError as exc:
                why = exc.message
            drops = await self._reconnect_pause(drops, why)

    async def events(
        self,
        *,
        status: JobStatus | str | None = None,
        queue: str | None = None,
        task: str | None = None,
        tag: str | None = None,
    ) -> AsyncGenerator[JobEvent]:
        """Events for every matching job (all when no criterion), until the caller stops. When
        the WebSocket drops it subscribes again (as `follow`); events while disconnected are lost:
        read the jobs (`jobs()`) if every change matters."""
        filter = job_filter(status=status, queue=queue, task=task, tag=tag)
        drops = 0
        while True:
            try:
                async for event in self._stream(self._api.job_events(filter)):
                    drops = 0
                    yield event.job_events
                why = "the subscription ended"
            except ServerUnreachableError as exc:
                why = exc.message
            drops = await self._reconnect_pause(drops, why)

    async def _reconnect_pause(self, drops: int, why: str) -> int:
        """Wait before reconnecting a subscription (the client's backoff); raises once `retries`
        reconnections in a row have failed. Returns the new count of drops in a row."""
        if drops >= self.config.retries:
            raise ServerUnreachableError(f"{why} (after {drops} reconnections)")
        await pause(retry_delay(drops, None, self.config.backoff, self.config.max_backoff), why)
        return drops + 1

    async def wait(self, job_id: str, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (the API asked for)
        """The job's result once it FINISHED; raises `JobFailedError` (the job's error type, message
        and traceback) when it ends otherwise, `TimeoutError` after `timeout` seconds."""
        with anyio.fail_after(timeout):
            last: Job | None = None
            async for job in self.follow(job_id):
                last = job
            if last is None or last.status not in FINAL_STATUSES:  # the stream ended early
                last = await self.get(job_id)
        if last.status is JobStatus.FINISHED:
            return last.result
        raise JobFailedError(last)

    # -- plumbing ---------------------------------------------------------------------------------

    async def _call(self, request: Awaitable[T]) -> T:
        """Await a generated call; its failures become our exceptions."""
        try:
            return await request
        except httpx.TransportError as exc:
            raise ServerUnreachableError(f"cannot reach {self.config.url}: {_reason(exc)}") from exc
        except GraphQLClientHttpError as exc:
            raise _http_error(exc) from exc
        except GraphQLClientGraphQLMultiError as exc:
            raise _graphql_error(exc) from exc
        except GraphQLClientInvalidResponseError as exc:
            raise RequestError(f"{self.config.graphql_url} did not answer as a GraphQL server") from exc

    async def _stream(self, stream: AsyncIterator[T]) -> AsyncGenerator[T]:
        """Iterate a generated subscription; its failures become our exceptions."""
        try:
            async for item in stream:
                yield item
        except GraphQLClientGraphQLMultiError as exc:
            raise _graphql_error(exc) from exc
        except ConnectionClosedError as exc:
            reason = (exc.rcvd.reason or f"code {exc.rcvd.code}") if exc.rcvd else str(exc)
            if exc.rcvd and exc.rcvd.code in _REFUSED_CLOSE_CODES:
                # graphql-transport-ws closes 4403 for a key missing or refused at `connection_init`
                raise UnauthorizedError(
                    reason or "the API key was refused", code=ErrorCode.UNAUTHENTICATED, required_scope=None
                ) from exc
            raise ServerUnreachableError(f"the connection to {self.config.ws_url} closed: {reason}") from exc
        except InvalidStatus as exc:
            raise ServerUnreachableError(f"{self.config.ws_url} refused the WebSocket: {exc}") from exc
        except (OSError, WebSocketException) as exc:
            raise ServerUnreachableError(f"cannot reach {self.config.ws_url}: {_reason(exc)}") from exc
        finally:
            if isinstance(stream, AsyncGenerator):  # close the WebSocket now, not when collected
                await stream.aclose()

    async def _success(
        self, member: type[S], call: Callable[P, Awaitable[Any]], *args: P.args, **kwargs: P.kwargs
    ) -> S:
        """The `member` a generated call answers (its one field, named as the call), calling again
        with the same arguments (so the same idempotency key) while the answer is a union member
        that says "retry" (see `_retrying`); any other member is raised (`api_error`)."""

        async def once() -> S:
            result = getattr(await self._call(call(*args, **kwargs)), call.__name__)
            if isinstance(result, member):
                return result
            raise api_error(result)

        return await self._retrying(once)

    async def _retrying(self, once: Callable[[], Awaitable[T]]) -> T:
        """Call `once` again (the same request: the same idempotency key) while it raises a
        union member that says "retry" and retries are left, waiting as that member says."""
        attempt = 0
        while True:
            try:
                return await once()
            except ApiError as exc:
                if not exc.retryable or attempt >= self.config.retries:
                    raise
                await pause(self._union_delay(attempt, exc), type(exc).__name__)
            attempt += 1

    def _union_delay(self, attempt: int, error: ApiError) -> float:
        told = getattr(error, "retry_after_seconds", None)
        retry_after = None if told is None else str(told)
        return retry_delay(attempt, retry_after, self.config.backoff, self.config.max_backoff)


def job_input(
    task: str,
    payload: dict[str, Any] | None = None,
    *,
    retry: int | RetryInput | None = None,
    tags: Sequence[str] | None = None,
    depends_on: Sequence[str] | None = None,
    **options: Any,
) -> SubmitJobInput:
    """A `SubmitJobInput` from Python arguments (for `submit_many`); `retry=3` means three retries."""
    given = {name: value for name, value in options.items() if value is not None}
    return SubmitJobInput(
        task=task,
        payload=payload,
        retry=RetryInput(max=retry) if isinstance(retry, int) else retry,
        tags=list(tags) if tags is not None else None,
        depends_on=list(depends_on) if depends_on is not None else None,
        **given,
    )


def with_key(spec: SubmitJobInput) -> SubmitJobInput:
    """The spec with an idempotency key: its own, or a new one."""
    if spec.idempotency_key:
        return spec
    return spec.model_copy(update={"idempotency_key": new_idempotency_key()})


def job_filter(
    *,
    status: JobStatus | str | None = None,
    queue: str | None = None,
    task: str | None = None,
    tag: str | None = None,
    tags: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    submitted_after: Moment | None = None,
    submitted_before: Moment | None = None,
) -> JobFilter | None:
    """The API's filter from Python arguments; None when no criterion is given."""
    given = (status, queue, task, tag, tags, ids, submitted_after, submitted_before)
    if all(value is None for value in given):
        return None
    return JobFilter(
        status=JobStatus(status.upper()) if isinstance(status, str) else status,
        queue=queue,
        task=task,
        tag=tag,
        tags=list(tags) if tags is not None else None,
        ids=list(ids) if ids is not None else None,
        submitted_after=parse_moment(submitted_after) if submitted_after is not None else None,
        submitted_before=parse_moment(submitted_before) if submitted_before is not None else None,
    )


def _order(order: JobOrder | str) -> JobOrder:
    return JobOrder(order.upper().replace("-", "_")) if isinstance(order, str) else order


def _changed(before: Job, after: Job) -> bool:
    """Whether `after` says something `before` did not (attempts aside: only `get` reads them)."""
    return before.model_dump(exclude={"attempts"}) != after.model_dump(exclude={"attempts"})


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _http_error(exc: GraphQLClientHttpError) -> ClientError:
    if exc.status_code in (401, 403):
        return UnauthorizedError(
            _first_message(exc.response) or "the API key was refused",
            code=ErrorCode.UNAUTHENTICATED if exc.status_code == 401 else ErrorCode.FORBIDDEN,
            required_scope=None,
        )
    message = _first_message(exc.response) or f"HTTP {exc.status_code}"
    return RequestError(f"the server answered {exc.status_code}: {message}")


def _first_message(response: Any) -> str | None:
    """The first GraphQL error's (or REST `detail`'s) message in an error response, if readable."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message"))
        if "detail" in body:
            return str(body["detail"])
    return None


def _graphql_error(exc: GraphQLClientGraphQLMultiError) -> ClientError:
    first = exc.errors[0]
    code = (first.extensions or {}).get("code")
    if code in _AUTH_CODES:
        return UnauthorizedError(first.message, code=ErrorCode(str(code)), required_scope=None)
    if code == ErrorCode.NOT_FOUND:
        return JobNotFoundError(first.message, code=ErrorCode.NOT_FOUND, job_id="")
    return RequestError(first.message, code=str(code) if code is not None else None)
