"""The service's submissions on a real Redis: what a submission answers is what a read finds.

Every kind of submission (plain, with options, scheduled, delayed, with dependencies, with an
idempotency key, refused) goes through `submit_many` once, and is read back with `get_many`: the
records must agree on every field. Scopes and ownership hold on the same paths.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gql_jobs.auth import ANONYMOUS as ADMIN
from gql_jobs.auth import Principal, Scope
from gql_jobs.domain import JobRecord, RetryPolicy, SubmitRequest, Submitted
from gql_jobs.errors import (
    GqlJobsError,
    JobNotFoundError,
    PayloadTooLargeError,
    UnknownTaskError,
)
from gql_jobs.service.jobs import JobService

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


def fields(record: JobRecord | None) -> dict[str, Any] | None:
    return record._asdict() if record is not None else None


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


async def test_what_a_submission_answers_is_what_a_read_finds(service: JobService) -> None:
    dependency = (await service.submit(ADMIN, SubmitRequest(task="echo"))).record.id
    outcomes = await service.submit_many(ADMIN, cases(dependency))

    refused = [type(o) for o in outcomes if isinstance(o, GqlJobsError)]
    assert refused == [JobNotFoundError, UnknownTaskError, PayloadTooLargeError]
    submitted = [o.record for o in outcomes if isinstance(o, Submitted)]
    assert len(submitted) == 7
    read = await service.get_many(ADMIN, [*(r.id for r in submitted), "JOB-missing", "bad id!"])
    assert read[-2:] == [None, None]
    for answered, found in zip(submitted, read, strict=False):
        assert fields(found) == fields(answered)


async def test_a_repeated_idempotent_submission_answers_the_first_job(service: JobService) -> None:
    request = SubmitRequest(task="echo", payload={"n": 1}, idempotency_key="again")
    first = await service.submit(ADMIN, request)
    second = await service.submit(ADMIN, request)
    assert (first.deduplicated, second.deduplicated) == (False, True)
    assert fields(second.record) == fields(await service.get(ADMIN, first.record.id))


async def test_scopes_and_ownership_hold(service: JobService) -> None:
    alice = Principal("alice", frozenset({Scope.SUBMIT, Scope.READ}))
    bob = Principal("bob", frozenset({Scope.SUBMIT, Scope.READ}))
    reader = Principal("reader", frozenset({Scope.READ}))

    job = (await service.submit(alice, SubmitRequest(task="echo"))).record
    assert await service.get_many(bob, [job.id]) == [None]
    assert (await service.get(alice, job.id)).owner == "alice"
    with pytest.raises(GqlJobsError, match="submit"):
        await service.submit(reader, SubmitRequest(task="echo"))
    with pytest.raises(UnknownTaskError):
        await service.submit(alice, SubmitRequest(task="nope"))
