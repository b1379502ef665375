"""Operators' listing filters (issue #17): time range, any-of tags, ids, oldest-first order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gql_jobs.auth import ANONYMOUS as ADMIN
from gql_jobs.auth import Principal, Scope
from gql_jobs.constants import INDEX_ALL
from gql_jobs.domain import JobFilter, Order, Page, PageRequest, SubmitRequest
from gql_jobs.errors import InvalidRequestError
from gql_jobs.service.jobs import JobService
from gql_jobs.store import listing
from tests.service.test_jobs import counted_round_trips

pytestmark = pytest.mark.anyio

TENANT = Principal("tenant-a", frozenset({Scope.SUBMIT, Scope.READ}))
OTHER = Principal("tenant-b", frozenset({Scope.SUBMIT, Scope.READ}))


async def _submit(service: JobService, count: int, tags: tuple[str, ...] = ()) -> list[str]:
    outcomes = await service.submit_many(
        ADMIN, [SubmitRequest("echo", {"i": i}, tags=tags) for i in range(count)]
    )
    return [o.record.id for o in outcomes]  # type: ignore[union-attr]


async def _walk(
    service: JobService, job_filter: JobFilter, order: Order, size: int, *, backwards: bool = False
) -> list[str]:
    """Every job of the listing, a page of `size` at a time, following the cursors."""
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(50):
        request = (
            PageRequest(last=size, before=cursor, order=order)
            if backwards
            else PageRequest(first=size, after=cursor, order=order)
        )
        page: Page = await service.list_jobs(ADMIN, job_filter, request)
        ids = [r.id for _, r in page.items]
        seen = ids + seen if backwards else seen + ids
        more = page.has_previous_page if backwards else page.has_next_page
        if not more:
            return seen
        cursor = page.start_cursor if backwards else page.end_cursor
    raise AssertionError("the listing did not end")


async def test_oldest_first_pages_forwards_and_backwards(fake_service: JobService) -> None:
    ids = await _submit(fake_service, 7)
    assert await _walk(fake_service, JobFilter(), Order.OLDEST_FIRST, 3) == ids
    assert await _walk(fake_service, JobFilter(), Order.OLDEST_FIRST, 2, backwards=True) == ids
    assert await _walk(fake_service, JobFilter(), Order.NEWEST_FIRST, 3) == ids[::-1]
    assert await _walk(fake_service, JobFilter(), Order.NEWEST_FIRST, 2, backwards=True) == ids[::-1]


def _moment(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


async def test_a_time_range_bounds_the_walk_in_either_order(fake_service: JobService) -> None:
    for _ in range(4):  # batches: several ids per millisecond, and several milliseconds
        await _submit(fake_service, 3)
    entries = listing.newer_than(fake_service.connection, INDEX_ALL, None, 100)
    lower, upper = entries[3].position.ms, entries[9].position.ms
    job_filter = JobFilter(submitted_after=_moment(lower), submitted_before=_moment(upper))
    expected = [e.job_id for e in entries if lower <= e.position.ms < upper]

    assert await _walk(fake_service, job_filter, Order.OLDEST_FIRST, 2) == expected
    assert await _walk(fake_service, job_filter, Order.NEWEST_FIRST, 2) == expected[::-1]
    assert await _walk(fake_service, job_filter, Order.NEWEST_FIRST, 2, backwards=True) == expected[::-1]
    empty = JobFilter(submitted_after=_moment(upper), submitted_before=_moment(lower))
    assert await _walk(fake_service, empty, Order.NEWEST_FIRST, 2) == []


async def test_any_of_several_tags_across_pages(fake_service: JobService) -> None:
    red = await _submit(fake_service, 2, tags=("red",))
    await _submit(fake_service, 2, tags=("green",))
    blue = await _submit(fake_service, 2, tags=("blue", "red"))
    untagged = await _submit(fake_service, 1)
    wanted = JobFilter(tags=("red", "blue"))
    assert await _walk(fake_service, wanted, Order.NEWEST_FIRST, 1) == (red + blue)[::-1]
    assert await _walk(fake_service, wanted, Order.OLDEST_FIRST, 3) == red + blue
    assert await _walk(fake_service, JobFilter(tags=("blue",)), Order.OLDEST_FIRST, 1) == blue
    assert untagged[0] not in await _walk(fake_service, JobFilter(tags=("green",)), Order.OLDEST_FIRST, 5)


async def test_ids_lookup_in_one_page_only_the_callers(fake_service: JobService) -> None:
    own = [(await fake_service.submit(TENANT, SubmitRequest("echo", {"i": i}))).record.id for i in range(3)]
    foreign = (await fake_service.submit(OTHER, SubmitRequest("echo", {}))).record.id
    asked = JobFilter(ids=(own[2], foreign, "JOB-missing", own[0]))
    page = await fake_service.list_jobs(TENANT, asked, PageRequest(order=Order.OLDEST_FIRST))
    assert [r.id for _, r in page.items] == [own[0], own[2]]
    assert page.total_count == 2
    assert not page.has_next_page
    first = await fake_service.list_jobs(TENANT, asked, PageRequest(first=1))
    assert [r.id for _, r in first.items] == [own[2]]
    assert first.has_next_page


@pytest.mark.parametrize(
    ("job_filter", "request_", "field"),
    [
        (JobFilter(submitted_after=datetime(2026, 1, 1)), PageRequest(), "submittedAfter"),
        (JobFilter(tags=tuple(f"t{i}" for i in range(11))), PageRequest(), "tags"),
        (JobFilter(ids=tuple(f"JOB-{i}" for i in range(101))), PageRequest(), "ids"),
        (JobFilter(ids=("JOB-1",)), PageRequest(after=listing.Position(5, 0).encode()), "after/before"),
    ],
)
async def test_out_of_range_filters_are_refused(
    fake_service: JobService, job_filter: JobFilter, request_: PageRequest, field: str
) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        await fake_service.list_jobs(ADMIN, job_filter, request_)
    assert raised.value.field == field


async def test_malformed_ids_never_reach_redis_and_list_nothing(fake_service: JobService) -> None:
    await _submit(fake_service, 2)
    page = await fake_service.list_jobs(ADMIN, JobFilter(ids=("../x", "*")), PageRequest())
    assert (page.items, page.total_count) == ([], 0)


async def test_a_time_range_page_is_one_walk_of_the_index_whatever_the_jobs_outside_it(
    fake_service: JobService,
) -> None:
    for _ in range(3):
        await _submit(fake_service, 100)
    entries = listing.newer_than(fake_service.connection, INDEX_ALL, None, 300)
    job_filter = JobFilter(submitted_before=_moment(entries[199].position.ms + 1))  # 200 or more in range
    with counted_round_trips(fake_service) as calls:
        page = await fake_service.list_jobs(ADMIN, job_filter, PageRequest(first=5))
    assert len(page.items) == 5 and page.has_next_page
    assert calls == ["XREVRANGE", "EVAL"]  # O(page): the bounds, not a scan, skip the newer jobs
