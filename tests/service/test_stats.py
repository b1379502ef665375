"""`JobService.stats`: the job history for admins, counted in the writes submissions already send."""

from __future__ import annotations

import pytest
import redis

from gql_jobs.auth import ANONYMOUS as ADMIN
from gql_jobs.auth import Principal, Scope
from gql_jobs.constants import STATS_MAX_WINDOW
from gql_jobs.domain import SubmitRequest, Submitted
from gql_jobs.errors import ForbiddenError, InvalidRequestError, UnauthenticatedError
from gql_jobs.service.jobs import JobService
from gql_jobs.store import stats
from tests.service.test_jobs import counted_round_trips

pytestmark = pytest.mark.anyio

ALICE = Principal("alice", frozenset({Scope.SUBMIT, Scope.READ}))
NOW = 29_000_000 * 60 + 30.0


def at_now(service: JobService) -> JobService:
    service.clock = lambda: NOW
    return service


async def submit_all(service: JobService, requests: list[SubmitRequest]) -> list[str]:
    outcomes = await service.submit_many(ADMIN, requests)
    assert all(isinstance(o, Submitted) for o in outcomes), outcomes
    return [o.record.id for o in outcomes if isinstance(o, Submitted)]


async def test_submissions_count_per_queue_and_task(service: JobService) -> None:
    requests = [SubmitRequest("echo", {})] * 3 + [SubmitRequest("add", {"a": 1, "b": 2}, queue="other")]
    await submit_all(service, requests)

    found = await service.stats(ADMIN, window=2, step=1)  # this minute or the one before, if it turned
    assert found.totals.submitted == 4
    assert sum(bucket.submitted for bucket in found.buckets) == 4
    assert (await service.stats(ADMIN, 2, 2, queue="other")).totals.submitted == 1
    assert (await service.stats(ADMIN, 2, 2, task="echo")).totals.submitted == 3
    assert (await service.stats(ADMIN, 2, 2, queue="other", task="echo")).totals.submitted == 0


async def test_every_submission_path_counts_once(service: JobService) -> None:
    """Plain jobs, a job with dependencies (RQ's path), one with an idempotency key (submitted
    twice: the second returns the first job, and is no new submission)."""
    (first,) = await submit_all(service, [SubmitRequest("echo", {})])
    keyed = SubmitRequest("echo", {}, idempotency_key="once")
    await submit_all(service, [SubmitRequest("echo", {}, depends_on=(first,)), keyed])
    again = await service.submit(ADMIN, keyed)

    assert again.deduplicated
    assert (await service.stats(ADMIN, 2, 2)).totals.submitted == 3


@pytest.mark.parametrize("path", ["a plain batch", "an idempotency key", "dependencies"])
async def test_counting_costs_no_round_trip(
    service: JobService, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis, path: str
) -> None:
    """The counts ride in the write each path sends anyway: as many round trips with as without."""
    (first,) = await submit_all(service, [SubmitRequest("echo", {})])  # connections open, too
    requests = {
        "a plain batch": [SubmitRequest("echo", {})] * 20,
        "an idempotency key": [SubmitRequest("echo", {}, idempotency_key="k")],
        "dependencies": [SubmitRequest("echo", {}, depends_on=(first,))],
    }[path]
    with monkeypatch.context() as patch:
        patch.setattr(stats, "count_submitted", lambda *args: None)
        with counted_round_trips(service) as without:
            await submit_all(service, requests)
    redis_client.delete(*redis_client.keys("gql_jobs:idempotency:*"), "gql_jobs:none")
    with counted_round_trips(service) as with_history:
        await submit_all(service, requests)

    assert with_history == without
    assert len(without) >= 1  # the counter sees the traffic
    assert (await service.stats(ADMIN, 2, 2)).totals.submitted == 1 + len(requests)


async def test_the_window_ends_with_the_current_minute_of_the_services_clock(
    service: JobService, redis_client: redis.Redis
) -> None:
    at_now(service)
    minute = stats.minute_of(NOW)
    with redis_client.pipeline() as pipe:
        stats.count_submitted(pipe, {("default", "echo"): 5}, NOW)
        stats.count_submitted(pipe, {("default", "echo"): 7}, NOW - 60 * 59)
        stats.count_submitted(pipe, {("default", "echo"): 100}, NOW - 60 * 60)  # outside the hour
        pipe.execute()

    found = await service.stats(ADMIN, window=60, step=15)

    assert [b.submitted for b in found.buckets] == [7, 0, 0, 5]
    assert found.totals.submitted == 12
    assert found.buckets[-1].start.timestamp() == (minute - 14) * 60
    assert found.totals.start.timestamp() == (minute - 59) * 60
    assert (found.window, found.step, found.queue, found.task) == (60, 15, None, None)


@pytest.mark.parametrize(
    ("window", "step", "field"),
    [
        (0, 1, "window"),
        (STATS_MAX_WINDOW + 1, 1, "window"),
        (60, 0, "step"),
        (60, 61, "step"),
        (60, 7, "step"),
    ],
)
async def test_a_window_out_of_range_or_of_broken_steps_is_refused(
    fake_service: JobService, window: int, step: int, field: str
) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        await fake_service.stats(ADMIN, window, step)

    assert refused.value.field == field
    assert str(window if field == "window" else step) in refused.value.message


async def test_a_malformed_queue_or_task_name_is_refused(fake_service: JobService) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        await fake_service.stats(ADMIN, 60, 1, task="no spaces")

    assert refused.value.field == "task"


async def test_only_admins_read_the_history(fake_service: JobService) -> None:
    with pytest.raises(ForbiddenError) as refused:
        await fake_service.stats(ALICE, 60, 1)
    with pytest.raises(UnauthenticatedError):
        await fake_service.stats(None, 60, 1)

    assert refused.value.scope == "admin"
    assert "every tenant" in refused.value.message
