"""The service's `*_async` twins (what REST and GraphQL call) give what the synchronous methods give.

Each case is submitted once through `submit_many` and once through `submit_many_async` on a real
Redis, then read back both ways; the records must agree on everything but ids and moments.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from gql_jobs.app import build_service
from gql_jobs.auth import ANONYMOUS as ADMIN
from gql_jobs.auth import Principal, Scope
from gql_jobs.domain import JobRecord, RetryPolicy, SubmitRequest, Submitted
from gql_jobs.errors import GqlJobsError, UnknownTaskError
from gql_jobs.service.jobs import JobService
from gql_jobs.settings import Settings

pytestmark = pytest.mark.integration
T = TypeVar("T")

MOMENTS = {"id", "submitted_at", "created_at", "enqueued_at", "meta", "depends_on", "description"}


def run(make: Callable[[JobService], Coroutine[Any, Any, T]], settings: Settings) -> T:
    """Run a coroutine against a service of its own (async clients belong to one event loop)."""

    async def main() -> T:
        service = build_service(settings)
        assert service.async_connection is not None
        try:
            return await make(service)
        finally:
            await service.async_connection.aclose()
            service.connection.close()

    return asyncio.run(main())


def comparable(outcome: Submitted | GqlJobsError | JobRecord | None) -> Any:
    if isinstance(outcome, Submitted):
        outcome = outcome.record
    if isinstance(outcome, JobRecord):
        return {k: v for k, v in dataclasses.asdict(outcome).items() if k not in MOMENTS}
    return type(outcome).__name__ if outcome is not None else None


def cases(dependency: str) -> list[SubmitRequest]:
    return [
        SubmitRequest(task="echo", payload={"n": 1}, tags=("a", "b")),
        SubmitRequest(task="echo", payload={}, queue="high", timeout=9, result_ttl=-1, failure_ttl=60),
        SubmitRequest(task="echo", retry=RetryPolicy(max=2, intervals=(1, 3)), at_front=True),
        SubmitRequest(task="echo", scheduled_at=datetime.now(UTC) + timedelta(hours=1)),
        SubmitRequest(task="echo", delay_seconds=30),
        SubmitRequest(task="echo", depends_on=(dependency,)),
        SubmitRequest(task="echo", depends_on=("JOB-missing",)),
        SubmitRequest(task="echo", idempotency_key="same"),
        SubmitRequest(task="nope"),
        SubmitRequest(task="echo", payload={"x": "y" * 100_000}),
    ]


def test_async_submissions_and_reads_match_the_synchronous_ones(
    service: JobService, settings: Settings
) -> None:
    dependency = service.submit(ADMIN, SubmitRequest(task="echo")).record.id
    synchronous = service.submit_many(ADMIN, cases(dependency))

    async def submit_and_read(svc: JobService) -> tuple[list[Any], list[Any]]:
        outcomes = await svc.submit_many_async(ADMIN, cases(dependency))
        ids = [o.record.id for o in outcomes if isinstance(o, Submitted)]
        return outcomes, await svc.get_many_async(ADMIN, [*ids, "JOB-missing", "bad id!"])

    asynchronous, read_async = run(submit_and_read, settings)

    assert [comparable(o) for o in asynchronous] == [comparable(o) for o in synchronous]
    ids = [o.record.id for o in asynchronous if isinstance(o, Submitted)]
    read_sync = service.get_many(ADMIN, [*ids, "JOB-missing", "bad id!"])
    assert [comparable(r) for r in read_async] == [comparable(r) for r in read_sync]
    assert read_async[-2:] == [None, None]
    # What a submission answers is what a read finds afterwards.
    submitted = {o.record.id: comparable(o) for o in asynchronous if isinstance(o, Submitted)}
    for record in read_sync[:-2]:
        assert record is not None
        assert comparable(record) == submitted[record.id]


def test_async_paths_enforce_scopes_and_ownership(settings: Settings) -> None:
    alice = Principal("alice", frozenset({Scope.SUBMIT, Scope.READ}))
    bob = Principal("bob", frozenset({Scope.SUBMIT, Scope.READ}))
    reader = Principal("reader", frozenset({Scope.READ}))

    async def scenario(svc: JobService) -> None:
        job = (await svc.submit_async(alice, SubmitRequest(task="echo"))).record
        assert await svc.get_many_async(bob, [job.id]) == [None]
        assert (await svc.get_async(alice, job.id)).owner == "alice"
        with pytest.raises(GqlJobsError, match="submit"):
            await svc.submit_async(reader, SubmitRequest(task="echo"))
        with pytest.raises(UnknownTaskError):
            await svc.submit_async(alice, SubmitRequest(task="nope"))

    run(scenario, settings)
