"""The rules of a live stream, in the service (`gql_jobs.service.follow`), on fakeredis.

The transports' behaviour (WebSocket, SSE, codes on the wire) is tested in `test_live.py`; here
the service functions themselves: what `follow` yields and how it ends, and what `events` lets
through. Every wait is bounded by `anyio.fail_after`, never a sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anyio
import fakeredis
import pytest
from rq import SimpleWorker

from gql_jobs.auth import ANONYMOUS as ADMIN
from gql_jobs.auth import Principal, Scope
from gql_jobs.domain import EventKind, JobFilter, JobStatus, SubmitRequest
from gql_jobs.errors import ForbiddenError, JobDeletedError, JobNotFoundError, UnauthenticatedError
from gql_jobs.service import follow
from gql_jobs.service.jobs import JobService
from gql_jobs.service.live import LiveUpdates
from gql_jobs.store.rq_format import SERIALIZER
from gql_jobs.worker.job import EventedJob

pytestmark = pytest.mark.anyio

ALICE = Principal("alice", frozenset({Scope.SUBMIT, Scope.READ}))
BOB = Principal("bob", frozenset({Scope.SUBMIT, Scope.READ}))
BOUND = 10.0  # for the test itself: a stream that never ends fails it


@pytest.fixture
async def live(fake_service: JobService, anyio_backend: str) -> AsyncIterator[LiveUpdates]:
    """Live updates on the fake server the service uses (its pub/sub included)."""
    server = fake_service.connection.connection_pool.connection_kwargs["server"]
    hub = LiveUpdates(fake_service, fakeredis.FakeAsyncRedis(server=server), fake_service.settings)
    yield hub
    await hub.close()


def run_jobs(service: JobService) -> None:
    """A real RQ worker in burst mode, publishing job events as `gql-jobs worker` does."""
    worker = SimpleWorker(
        ["default"], connection=service.connection, serializer=SERIALIZER, job_class=EventedJob
    )
    worker.work(burst=True, logging_level="WARNING")


async def test_follow_yields_the_job_now_then_ends_on_its_final_state(
    fake_service: JobService, live: LiveUpdates
) -> None:
    job = (await fake_service.submit(ALICE, SubmitRequest("echo", {"n": 1}))).record
    with anyio.fail_after(BOUND):
        stream = follow.follow(live, ALICE, job.id)
        first = await anext(stream)
        run_jobs(fake_service)
        rest = [record async for record in stream]
    assert first.status == JobStatus.QUEUED
    assert rest and rest[-1].status == JobStatus.FINISHED
    assert [r.status for r in rest[:-1]] in ([], [JobStatus.STARTED])  # each change once
    assert live.watcher_count == 0 and live.subscriptions.held("alice") == 0


async def test_follow_of_a_finished_job_yields_it_once(fake_service: JobService, live: LiveUpdates) -> None:
    job = (await fake_service.submit(ADMIN, SubmitRequest("echo", {}))).record
    run_jobs(fake_service)
    with anyio.fail_after(BOUND):
        records = [record async for record in follow.follow(live, ADMIN, job.id)]
    assert [r.status for r in records] == [JobStatus.FINISHED]


async def test_follow_of_an_unknown_or_another_tenants_job_is_not_found(
    fake_service: JobService, live: LiveUpdates
) -> None:
    bobs = (await fake_service.submit(BOB, SubmitRequest("echo", {}))).record
    for job_id in ("JOB-missing", bobs.id):
        with pytest.raises(JobNotFoundError):
            await anext(follow.follow(live, ALICE, job_id))
    assert live.subscriptions.held("alice") == 0


async def test_follow_ends_with_job_deleted_when_the_job_is_deleted(
    fake_service: JobService, live: LiveUpdates
) -> None:
    job = (await fake_service.submit(ALICE, SubmitRequest("echo", {}))).record
    with anyio.fail_after(BOUND):
        stream = follow.follow(live, ALICE, job.id)
        assert (await anext(stream)).status == JobStatus.QUEUED
        assert await fake_service.delete(ALICE, job.id) == job.id
        with pytest.raises(JobDeletedError):
            await anext(stream)


async def test_streams_need_a_key_with_the_read_scope(live: LiveUpdates) -> None:
    submit_only = Principal("writer", frozenset({Scope.SUBMIT}))
    with pytest.raises(UnauthenticatedError):
        await anext(follow.follow(live, None, "JOB-x"))
    with pytest.raises(ForbiddenError):
        await anext(follow.events(live, submit_only, JobFilter()))
    assert live.watcher_count == 0


async def test_events_show_only_the_callers_jobs_that_match_its_filter(
    fake_service: JobService, live: LiveUpdates
) -> None:
    with anyio.fail_after(BOUND):
        stream = follow.events(live, ALICE, JobFilter(tag="mine"))
        pending = anext(stream)
        async with anyio.create_task_group() as group:
            got = []

            async def take() -> None:
                got.append(await pending)

            group.start_soon(take)
            while not live.watcher_count:  # until subscribed and registered
                await anyio.wait_all_tasks_blocked()
            await fake_service.submit(BOB, SubmitRequest("echo", {}, tags=("mine",)))  # another tenant's
            await fake_service.submit(ALICE, SubmitRequest("echo", {}, tags=("other",)))  # not the filter's
            wanted = (await fake_service.submit(ALICE, SubmitRequest("echo", {}, tags=("mine",)))).record
        await stream.aclose()
    [update] = got
    assert (update.event.kind, update.event.job_id) == (EventKind.STATUS, wanted.id)
    assert update.record is not None and update.record.owner == "alice"


async def test_a_stream_cancelled_as_the_channel_is_confirmed_ends_and_frees_its_slot(
    live: LiveUpdates, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that leaves while the first subscriber waits for the events channel: on Python 3.11
    `asyncio.wait_for` returns instead of raising when the cancellation and the awaited event land
    in one loop turn, and the stream then ran on forever with its subscription slot (Strawberry's
    WebSocket handler awaits it at shutdown, so the connection's slot leaked too: seen once in CI)."""
    listening, never = anyio.Event(), anyio.Event()

    async def silent_listener() -> None:
        listening.set()  # started by the stream, which now waits for the channel
        await never.wait()  # the channel is confirmed by hand below

    monkeypatch.setattr(live, "_listen", silent_listener)

    async def consume() -> None:
        async for _ in follow.events(live, ALICE, JobFilter()):
            pass

    stream = asyncio.create_task(consume())
    with anyio.fail_after(BOUND):
        await listening.wait()
    assert live.subscriptions.held("alice") == 1
    live._subscribed.set()  # the confirmation and the client's departure in one loop turn
    stream.cancel()
    await asyncio.wait({stream}, timeout=BOUND)  # returns when it ends, or fails below
    if not stream.done():
        stream.cancel()  # leave nothing running
    assert stream.cancelled()
    assert live.subscriptions.total() == 0
    assert live.watcher_count == 0
