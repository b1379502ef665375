"""Bulk actions (issue #17): selection by filter or ids, the bound, skips with reasons, safe retries,
ownership, events, and a chunk's cost in round trips (fakeredis)."""

from __future__ import annotations

import json
from typing import Any

import fakeredis
import pytest

from gql_jobs.auth import ANONYMOUS as ADMIN
from gql_jobs.auth import Principal, Scope
from gql_jobs.constants import EVENTS_CHANNEL
from gql_jobs.domain import BulkAction, BulkSkipReason, JobFilter, JobStatus, SubmitRequest
from gql_jobs.errors import InvalidRequestError
from gql_jobs.service.jobs import JobService
from gql_jobs.settings import Settings
from gql_jobs.tasks import TaskRegistry, task_modules
from tests.service.test_jobs import counted_round_trips, drain

pytestmark = pytest.mark.anyio

TENANT = Principal("tenant-a", frozenset({Scope.SUBMIT, Scope.READ}))
OTHER = Principal("tenant-b", frozenset({Scope.SUBMIT, Scope.READ}))


def _service(**overrides: Any) -> JobService:
    registry = TaskRegistry.from_modules(task_modules(["tests.fixtures"], builtins=True))
    settings = Settings.model_validate(
        {"redis_url": "redis://unused", "tasks": ["tests.fixtures"], **overrides}
    )
    server = fakeredis.FakeServer()
    return JobService(
        fakeredis.FakeRedis(server=server), registry, settings, fakeredis.FakeAsyncRedis(server=server)
    )


async def _submit(
    service: JobService, count: int, task: str = "echo", caller: Principal = ADMIN, **kw: Any
) -> list[str]:
    outcomes = await service.submit_many(caller, [SubmitRequest(task, {}, **kw) for _ in range(count)])
    return [o.record.id for o in outcomes]  # type: ignore[union-attr]


async def _statuses(service: JobService, ids: list[str]) -> list[JobStatus | None]:
    return [r.status if r else None for r in await service.get_many(ADMIN, ids)]


async def test_cancel_by_filter_acts_once_and_a_retry_finds_nothing_left() -> None:
    service = _service()
    done = await _submit(service, 1, queue="default")
    drain(service)
    waiting = await _submit(service, 5, queue="default")
    await _submit(service, 2, queue="other")

    first = await service.bulk(ADMIN, BulkAction.CANCEL, JobFilter(queue="default"))
    assert (first.matched, first.acted, first.skipped, first.truncated) == (5, 5, (), False)
    assert sorted(first.acted_ids) == sorted(waiting)
    assert await _statuses(service, waiting + done) == [JobStatus.CANCELED] * 5 + [JobStatus.FINISHED]

    again = await service.bulk(ADMIN, BulkAction.CANCEL, JobFilter(queue="default"))
    assert (again.matched, again.acted) == (0, 0)


async def test_requeue_by_ids_reports_each_id_and_never_runs_a_job_twice() -> None:
    service = _service()
    failed = await _submit(service, 2, task="fail")
    drain(service)
    queued = await _submit(service, 1)
    foreign = await _submit(service, 1, caller=OTHER)
    ids = (*failed, *queued, "JOB-missing", *foreign)

    outcome = await service.bulk(ADMIN, BulkAction.REQUEUE, JobFilter(ids=ids[:4]))
    assert (outcome.matched, outcome.acted) == (4, 2)
    assert {(s.job_id, s.reason, s.status) for s in outcome.skipped} == {
        (queued[0], BulkSkipReason.INVALID_STATE, JobStatus.QUEUED),
        ("JOB-missing", BulkSkipReason.NOT_FOUND, None),
    }

    retried = await service.bulk(TENANT, BulkAction.REQUEUE, JobFilter(ids=(failed[0], foreign[0])))
    assert retried.acted == 0
    assert {(s.job_id, s.reason) for s in retried.skipped} == {
        (failed[0], BulkSkipReason.NOT_FOUND),  # the admin's job: not the tenant's to see
        (foreign[0], BulkSkipReason.NOT_FOUND),
    }
    again = await service.bulk(ADMIN, BulkAction.REQUEUE, JobFilter(ids=tuple(failed)))
    assert again.acted == 0
    assert [s.reason for s in again.skipped] == [BulkSkipReason.INVALID_STATE] * 2
    assert service.connection.llen("rq:queue:default") == 4  # each requeued once, and the two queued ones


async def test_ids_outside_the_filters_other_criteria_are_not_matched() -> None:
    service = _service()
    red = await _submit(service, 1, tags=("red",))
    blue = await _submit(service, 1, tags=("blue",))
    outcome = await service.bulk(ADMIN, BulkAction.DELETE, JobFilter(ids=(*red, *blue), tag="red"))
    assert outcome.acted_ids == tuple(red)
    assert [(s.job_id, s.reason) for s in outcome.skipped] == [(blue[0], BulkSkipReason.NOT_MATCHED)]


async def test_a_call_is_bounded_and_says_so_then_the_next_call_takes_the_rest() -> None:
    service = _service(max_bulk_jobs=3)
    ids = await _submit(service, 5)
    first = await service.bulk(ADMIN, BulkAction.CANCEL, JobFilter())
    assert (first.matched, first.acted, first.truncated) == (3, 3, True)
    second = await service.bulk(ADMIN, BulkAction.CANCEL, JobFilter())
    assert (second.matched, second.acted, second.truncated) == (2, 2, False)
    assert set(first.acted_ids) | set(second.acted_ids) == set(ids)
    with pytest.raises(InvalidRequestError):
        await service.bulk(ADMIN, BulkAction.CANCEL, JobFilter(ids=tuple(ids[:4])))


async def test_a_tenant_acts_only_on_its_own_jobs() -> None:
    service = _service()
    own = await _submit(service, 2, caller=TENANT)
    foreign = await _submit(service, 2, caller=OTHER)
    outcome = await service.bulk(TENANT, BulkAction.DELETE, JobFilter())
    assert sorted(outcome.acted_ids) == sorted(own)
    assert await _statuses(service, own + foreign) == [None, None, JobStatus.QUEUED, JobStatus.QUEUED]


async def test_each_job_gets_its_event_as_for_a_single_action() -> None:
    service = _service()
    ids = await _submit(service, 3)
    pubsub = service.connection.pubsub()  # type: ignore[no-untyped-call]
    pubsub.subscribe(EVENTS_CHANNEL)
    pubsub.get_message(timeout=1)  # the subscription's confirmation
    await service.bulk(ADMIN, BulkAction.CANCEL, JobFilter())
    await service.bulk(ADMIN, BulkAction.DELETE, JobFilter())
    seen: list[tuple[str, str, str]] = []
    while (message := pubsub.get_message(timeout=1)) is not None:
        body = json.loads(message["data"])
        seen.extend((e["id"], e["kind"], e["status"]) for e in (body if isinstance(body, list) else [body]))
    assert sorted(seen) == sorted(
        [(i, "status", "canceled") for i in ids] + [(i, "deleted", "canceled") for i in ids]
    )


async def test_a_thousand_jobs_cost_a_few_round_trips_not_one_each() -> None:
    service = _service()
    for _ in range(2):
        await _submit(service, 500)
    for action in (BulkAction.CANCEL, BulkAction.REQUEUE, BulkAction.DELETE):
        with counted_round_trips(service) as calls:
            outcome = await service.bulk(ADMIN, action, JobFilter())
        assert outcome.acted == 1000, action
        assert len(calls) < 40, (action, calls)  # the listing's reads, then a few per chunk of 200
        if action == BulkAction.CANCEL:
            assert service.connection.zcard("rq:canceled:default") == 1000
            assert service.connection.llen("rq:queue:default") == 0
        if action == BulkAction.REQUEUE:
            assert service.connection.zcard("rq:canceled:default") == 0
            assert service.connection.llen("rq:queue:default") == 1000
    assert not service.connection.keys("rq:job:*")
    assert not service.connection.keys("rq:executions:*")


async def test_a_truncated_call_goes_on_from_its_cursor() -> None:
    service = _service(max_bulk_jobs=2)
    ids = await _submit(service, 5)
    first = await service.bulk(ADMIN, BulkAction.DELETE, JobFilter(tag="none-such"))
    assert (first.matched, first.truncated, first.resume_cursor) == (0, False, None)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        outcome = await service.bulk(ADMIN, BulkAction.DELETE, JobFilter(), after=cursor)
        seen.extend(outcome.acted_ids)
        if not outcome.truncated:
            break
        cursor = outcome.resume_cursor
    assert seen == ids[::-1]
    with pytest.raises(InvalidRequestError):
        await service.bulk(ADMIN, BulkAction.DELETE, JobFilter(ids=(ids[0],)), after=cursor)


async def test_a_bulk_requeue_takes_a_token_per_job_and_leaves_the_rest_beyond_the_burst() -> None:
    service = _service(rate_limit=1, rate_limit_burst=3)
    failed = [
        *await _submit(service, 2, task="fail", caller=TENANT),
        *await _submit(service, 2, task="fail", caller=OTHER),
    ]
    drain(service)
    outcome = await service.bulk(
        ADMIN, BulkAction.REQUEUE, JobFilter(ids=tuple(failed))
    )  # a full bucket of 3
    assert outcome.acted_ids == tuple(failed[:3])
    assert [(s.job_id, s.reason) for s in outcome.skipped] == [(failed[3], BulkSkipReason.RATE_LIMITED)]
