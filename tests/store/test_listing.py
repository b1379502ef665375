"""The listing index (`gql_jobs.store.listing_index` writes it, `gql_jobs.store.listing` reads it): members,
cursors, one command per batch, retention."""

from __future__ import annotations

import os
import uuid

import pytest
import redis

from gql_jobs.auth import ANONYMOUS
from gql_jobs.constants import INDEX_ALL, INDEX_BY_QUEUE, INDEX_BY_TAG, INDEX_BY_TASK
from gql_jobs.domain import JobFilter, PageRequest, SubmitRequest
from gql_jobs.errors import InvalidCursorError
from gql_jobs.service.submission import new_job_id
from gql_jobs.store import listing, listing_index
from tests.conftest import MakeService, make_settings

pytestmark = pytest.mark.anyio


def test_a_member_is_the_16_bytes_of_the_job_ids_uuid() -> None:
    job_id = new_job_id()
    stored = listing_index.member(job_id)
    assert len(stored) == 16
    assert listing_index.job_id_of(stored) == job_id
    assert listing_index.job_id_of(b"some-other-id") == "some-other-id"  # any other value reads as text


def test_a_member_reads_back_as_uuid_spells_it() -> None:
    for stored in [bytes(16), b"\xff" * 16, bytes(range(16)), *(os.urandom(16) for _ in range(200))]:
        assert listing_index.job_id_of(stored) == f"JOB-{uuid.UUID(bytes=stored)}"


@pytest.mark.parametrize(
    "foreign",
    ["JOB-not-a-uuid", "7e5f0b1a-6a25-4d3b-bc7e-0f0bb0b8a5b0", "JOB-7E5F0B1A-6A25-4D3B-BC7E-0F0BB0B8A5B0"],
)
def test_only_ids_we_mint_are_indexed(foreign: str) -> None:
    with pytest.raises(ValueError, match="not a job id we mint"):
        listing_index.member(foreign)


def test_a_cursor_is_a_stream_position() -> None:
    position = listing.Position(1_795_891_813_518, 42)
    assert listing.Position.decode(position.encode()) == position
    assert listing.Position.parse(b"1795891813518-42") == position
    assert listing.Position(1, 0) < listing.Position(1, 1) < listing.Position(2, 0)


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "",
        "MTcwMDAwMDAwMDAwMDAwMDpKT0ItYWJj",  # the sorted-set era's "score:job id"
        "LTEtMA",  # "-1-0"
        "x" * 100,
    ],
)
def test_a_bad_cursor_is_an_invalid_cursor_error(cursor: str) -> None:
    with pytest.raises(InvalidCursorError):
        listing.Position.decode(cursor)


@pytest.mark.integration
async def test_a_batch_writes_each_jobs_entries_with_one_command(
    make_service: MakeService, redis_client: redis.Redis
) -> None:
    service = make_service(make_settings())
    before = _calls(redis_client)
    requests = [SubmitRequest(task="echo", payload={"i": i}, tags=("a", "b")) for i in range(50)]
    outcomes = await service.submit_many(ANONYMOUS, requests)
    after = _calls(redis_client)

    assert after.get("cmdstat_eval", 0) - before.get("cmdstat_eval", 0) == 1
    assert after.get("cmdstat_zadd", 0) == before.get("cmdstat_zadd", 0)
    ids = [o.record.id for o in outcomes]  # type: ignore[union-attr]
    for key in (
        INDEX_ALL,
        INDEX_BY_QUEUE + "default",
        INDEX_BY_TASK + "echo",
        INDEX_BY_TAG + "a",
        INDEX_BY_TAG + "b",
    ):
        assert [entry.job_id for entry in listing.newer_than(redis_client, key, None, 100)] == ids, key


@pytest.mark.integration
async def test_retention_trims_old_entries_as_new_ones_arrive(
    make_service: MakeService, redis_client: redis.Redis
) -> None:
    service = make_service(make_settings(index_retention=3600))
    keys = (INDEX_ALL, INDEX_BY_QUEUE + "default", INDEX_BY_TASK + "echo")
    for key in keys:  # entries from long ago (stream IDs are milliseconds since 1970): no sleeping
        for ms in range(1, 251):
            redis_client.xadd(key, {listing_index.FIELD: listing_index.member(new_job_id())}, id=f"{ms}-0")
    fresh = (await service.submit(ANONYMOUS, SubmitRequest(task="echo", payload={}))).record

    # `MINID ~` drops whole listpack nodes (100 entries each), never the node still being filled.
    for key in keys:
        assert redis_client.xlen(key) <= 51, key
    page = await service.list_jobs(ANONYMOUS, JobFilter(), PageRequest(first=1))
    assert [record.id for _, record in page.items] == [fresh.id]


@pytest.mark.integration
@pytest.mark.parametrize("dependencies", [False, True], ids=["plain", "with-dependencies"])
async def test_every_stream_appended_to_expires_one_retention_after_its_newest_entry(
    make_service: MakeService, redis_client: redis.Redis, dependencies: bool
) -> None:
    retention = 600
    service = make_service(make_settings(index_retention=retention))
    first = (await service.submit(ANONYMOUS, SubmitRequest(task="echo", payload={}, tags=("a",)))).record
    redis_client.persist(INDEX_BY_TAG + "a")  # as a stream written before streams had TTLs
    depends_on = (first.id,) if dependencies else ()
    await service.submit(
        ANONYMOUS, SubmitRequest(task="echo", payload={}, tags=("a", "b"), depends_on=depends_on)
    )

    keys = [
        INDEX_ALL,
        INDEX_BY_QUEUE + "default",
        INDEX_BY_TASK + "echo",
        INDEX_BY_TAG + "a",
        INDEX_BY_TAG + "b",
    ]
    for key in keys:  # set again by this append; never longer than the retention
        assert retention // 2 * 1000 < redis_client.pttl(key) <= retention * 1000, key
    assert set(redis_client.scan_iter("gql_jobs:listing:*")) == {key.encode() for key in keys}


def _calls(connection: redis.Redis) -> dict[str, int]:
    stats: dict[str, dict[str, int]] = connection.info("commandstats")
    return {name: int(stat["calls"]) for name, stat in stats.items()}
