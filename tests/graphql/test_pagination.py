"""The `jobs` connection: newest first, stable cursors, filters, counts, limits and cost."""

from __future__ import annotations

import subprocess
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from redis.asyncio.connection import Connection as AsyncConnection
from redis.connection import Connection

from gql_jobs.app import create_app
from gql_jobs.auth import ANONYMOUS
from gql_jobs.constants import INDEX_ALL, SCAN_BUDGET
from gql_jobs.domain import SubmitRequest
from gql_jobs.errors import GqlJobsError
from gql_jobs.service.jobs import JobService
from gql_jobs.store import listing
from gql_jobs.store.listing import SCAN_CHUNK
from tests.conftest import MakeService, make_settings, on_app, wait_for
from tests.graphql_helpers import data, gql, job, submit, top_level_error

pytestmark = pytest.mark.integration

Drain = Callable[..., None]
StartWorker = Callable[..., subprocess.Popen[bytes]]

PAGE = """
query Page($first: Int, $after: String, $last: Int, $before: String, $filter: JobFilter) {
  jobs(first: $first, after: $after, last: $last, before: $before, filter: $filter) {
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


CANCEL_STATUS = "mutation($id: ID!) { cancelJob(id: $id) { ... on CancelJobSuccess { job { status } } } }"


def page(client: TestClient, **arguments: Any) -> dict[str, Any]:
    connection: dict[str, Any] = data(client, PAGE, **arguments)["jobs"]
    return connection


def ids(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in connection["edges"]]


def submit_ids(client: TestClient, count: int, task: str = "echo", **fields: Any) -> list[str]:
    """Submit `count` jobs one after another; return their ids, oldest first."""
    return [submit(client, task, payload={"i": i}, **fields)["id"] for i in range(count)]


def listed(client: TestClient, **job_filter: Any) -> list[str]:
    return ids(page(client, filter=job_filter))


# -- order and page boundaries -----------------------------------------------------------------------


def test_jobs_lists_newest_first(client: TestClient) -> None:
    submitted = submit_ids(client, 5)

    assert ids(page(client, first=3)) == submitted[::-1][:3]


def test_first_page_has_no_previous_page_and_a_next_page(client: TestClient) -> None:
    submit_ids(client, 5)

    info = page(client, first=3)["pageInfo"]

    assert (info["hasPreviousPage"], info["hasNextPage"]) == (False, True)


def test_last_forward_page_has_a_previous_page_and_no_next_page(client: TestClient) -> None:
    submit_ids(client, 6)
    first = page(client, first=3)

    last = page(client, first=3, after=first["pageInfo"]["endCursor"])

    assert len(last["edges"]) == 3
    assert (last["pageInfo"]["hasPreviousPage"], last["pageInfo"]["hasNextPage"]) == (True, False)


def test_page_larger_than_the_result_has_no_next_page(client: TestClient) -> None:
    submit_ids(client, 3)

    info = page(client, first=10)["pageInfo"]

    assert (info["hasPreviousPage"], info["hasNextPage"]) == (False, False)


def test_oldest_backward_page_has_a_previous_page_and_no_next_page(client: TestClient) -> None:
    submitted = submit_ids(client, 5)

    oldest = page(client, last=2)

    assert ids(oldest) == submitted[1::-1]
    assert (oldest["pageInfo"]["hasPreviousPage"], oldest["pageInfo"]["hasNextPage"]) == (True, False)


def test_newest_backward_page_has_no_previous_page(client: TestClient) -> None:
    submitted = submit_ids(client, 4)
    oldest = page(client, last=2)

    newest = page(client, last=2, before=oldest["pageInfo"]["startCursor"])

    assert ids(newest) == submitted[:1:-1]
    assert (newest["pageInfo"]["hasPreviousPage"], newest["pageInfo"]["hasNextPage"]) == (False, True)


def test_page_cursors_are_the_edge_cursors_at_its_ends(client: TestClient) -> None:
    submit_ids(client, 3)

    connection = page(client, first=3)

    cursors = [edge["cursor"] for edge in connection["edges"]]
    assert connection["pageInfo"]["startCursor"] == cursors[0]
    assert connection["pageInfo"]["endCursor"] == cursors[-1]


# -- stable cursors while jobs arrive ----------------------------------------------------------------


def test_forward_pages_cover_exactly_the_jobs_present_at_the_start_while_new_ones_arrive(
    client: TestClient,
) -> None:
    existing = submit_ids(client, 10)[::-1]  # newest first, as listed
    pages: list[list[str]] = []
    arrived: list[str] = []
    after: str | None = None
    while True:
        connection = page(client, first=3, after=after)
        pages.append(ids(connection))
        arrived += submit_ids(client, 2)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    walked = [job_id for p in pages for job_id in p]
    assert walked == existing  # same jobs, same order: no duplicates, no gaps
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    fresh_first_page = ids(page(client, first=len(arrived)))
    assert fresh_first_page == arrived[::-1]  # the newcomers sit before page 1


def test_backward_pages_cover_every_job_once_while_new_ones_arrive(client: TestClient) -> None:
    existing = submit_ids(client, 10)
    pages: list[list[str]] = []
    arrived: list[str] = []
    before: str | None = None
    while True:
        connection = page(client, last=3, before=before)
        pages.append(ids(connection))
        if len(pages) <= 2:
            arrived += submit_ids(client, 2)
        if not connection["pageInfo"]["hasPreviousPage"]:
            break
        before = connection["pageInfo"]["startCursor"]

    walked_oldest_first = [job_id for p in pages for job_id in reversed(p)]
    assert walked_oldest_first == existing + arrived  # each job once, in order; newcomers come last


def test_jobs_submitted_in_one_batch_are_paged_without_duplicates_or_gaps(
    client: TestClient, service: JobService, redis_client: redis.Redis
) -> None:
    outcomes = on_app(
        client,
        service.submit_many,
        ANONYMOUS,
        [SubmitRequest(task="echo", payload={"i": i}) for i in range(12)],
    )
    submitted = [o.record.id for o in outcomes if not isinstance(o, GqlJobsError)]
    expected = list(reversed(submitted))
    entries = listing.newer_than(redis_client, INDEX_ALL, None, 100)
    assert len({entry.position.ms for entry in entries}) < len(entries) == 12  # instants are shared

    forward: list[str] = []
    after: str | None = None
    while True:
        connection = page(client, first=5, after=after)
        forward += ids(connection)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    backward: list[str] = []
    before: str | None = None
    while True:
        connection = page(client, last=5, before=before)
        backward = ids(connection) + backward
        if not connection["pageInfo"]["hasPreviousPage"]:
            break
        before = connection["pageInfo"]["startCursor"]

    assert forward == expected
    assert backward == expected


# -- filters and counts ------------------------------------------------------------------------------


def test_filter_by_status(client: TestClient, drain: Drain) -> None:
    waiting = submit_ids(client, 2)
    done = submit_ids(client, 2, queue="fast")
    drain("fast")

    assert listed(client, status="FINISHED") == done[::-1]
    assert listed(client, status="QUEUED") == waiting[::-1]
    assert listed(client, status="FAILED") == []


def test_filter_by_queue(client: TestClient) -> None:
    submit_ids(client, 2)
    on_other = submit_ids(client, 2, queue="other")

    assert listed(client, queue="other") == on_other[::-1]


def test_filter_by_task(client: TestClient) -> None:
    submit_ids(client, 2)
    adds = [submit(client, "add", payload={"a": i, "b": 1})["id"] for i in range(2)]

    assert listed(client, task="add") == adds[::-1]


def test_filter_by_tag(client: TestClient) -> None:
    submit_ids(client, 2, tags=["plain"])
    tagged = submit_ids(client, 2, tags=["plain", "urgent"])

    assert listed(client, tag="urgent") == tagged[::-1]


def test_filters_combine(client: TestClient, drain: Drain) -> None:
    submit_ids(client, 1, queue="other", tags=["urgent"])
    drain("other")
    wanted = submit_ids(client, 1, queue="other", tags=["urgent"])
    submit_ids(client, 1, tags=["urgent"])

    assert listed(client, tag="urgent", queue="other", status="QUEUED") == wanted


def test_total_count_without_filter_counts_every_job(client: TestClient) -> None:
    submit_ids(client, 4)

    assert data(client, "{ jobs(first: 1) { totalCount } }")["jobs"]["totalCount"] == 4


def test_total_count_with_a_status_filter_counts_jobs_in_that_status(
    client: TestClient, drain: Drain
) -> None:
    submit_ids(client, 3)
    submit_ids(client, 2, queue="fast")
    drain("fast")

    query = "query($s: JobStatus!) { jobs(first: 1, filter: {status: $s}) { totalCount } }"
    assert data(client, query, s="FINISHED")["jobs"]["totalCount"] == 2
    assert data(client, query, s="QUEUED")["jobs"]["totalCount"] == 3


def test_total_count_for_failed_and_stopped_is_null_or_agrees_with_the_listed_jobs(
    client: TestClient, worker_process: StartWorker, tmp_path: Path
) -> None:
    worker_process()
    running = submit(client, "wait_for_file", payload={"path": str(tmp_path / "never"), "timeout": 5})
    wait_for(lambda: (job(client, running["id"]) or {}).get("status") == "STARTED")
    stopped = data(client, CANCEL_STATUS, id=running["id"])["cancelJob"]["job"]["status"]
    assert stopped == "STOPPED"

    query = "query($s: JobStatus!) { jobs(filter: {status: $s}) { totalCount edges { node { id } } } }"
    counted = {s: data(client, query, s=s)["jobs"] for s in ("STOPPED", "FAILED")}

    assert {s: len(c["edges"]) for s, c in counted.items()} == {"STOPPED": 1, "FAILED": 0}
    for connection in counted.values():  # RQ files stopped jobs with the failed ones: no cheap count
        assert connection["totalCount"] in (None, len(connection["edges"]))


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cursor", ["not a cursor", "Zm9v", "x" * 500], ids=["garbage", "no-colon", "long"])
def test_invalid_cursor_is_a_bad_user_input_error(client: TestClient, cursor: str) -> None:
    submit_ids(client, 1)

    error = top_level_error(gql(client, PAGE, first=1, after=cursor))

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] == "Invalid cursor"


def test_page_size_above_the_cap_is_a_bad_user_input_error(client: TestClient) -> None:
    error = top_level_error(gql(client, PAGE, first=101))

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "100" in error["message"]


def test_negative_page_size_is_a_bad_user_input_error(client: TestClient) -> None:
    error = top_level_error(gql(client, PAGE, last=-1))

    assert error["extensions"]["code"] == "BAD_USER_INPUT"


# -- cost: Redis round trips do not grow with the number of jobs --------------------------------------

COST_QUERY = "{ jobs(first: 20) { edges { node { id status result } } pageInfo { hasNextPage } } }"


@contextmanager
def counting_round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Count commands (single or pipelined) written to Redis, by the synchronous client (store
    threads) and the async one (pages are read on the loop); the list holds one running total."""
    count = [0]
    original: Callable[..., None] = Connection.send_packed_command
    original_async: Callable[..., Awaitable[None]] = AsyncConnection.send_packed_command

    def counted(self: Connection, command: Any, check_health: bool = True) -> None:
        count[0] += 1
        original(self, command, check_health)

    async def counted_async(self: AsyncConnection, command: Any, check_health: bool = True) -> None:
        count[0] += 1
        await original_async(self, command, check_health)

    with monkeypatch.context() as patch:
        patch.setattr(Connection, "send_packed_command", counted)
        patch.setattr(AsyncConnection, "send_packed_command", counted_async)
        yield count


def fill(client: TestClient, service: JobService, start: int, stop: int) -> None:
    for low in range(start, stop, 500):
        batch = [SubmitRequest("echo", {"i": i}) for i in range(low, min(low + 500, stop))]
        outcomes = on_app(client, service.submit_many, ANONYMOUS, batch)
        assert not [outcome for outcome in outcomes if isinstance(outcome, GqlJobsError)][:1]


def round_trips_of_a_page(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> int:
    data(client, COST_QUERY)  # warm: connections open, documents parsed
    with counting_round_trips(monkeypatch) as count:
        connection = data(client, COST_QUERY)["jobs"]
    assert connection["edges"]
    return count[0]


@pytest.mark.timeout(600)
def test_a_page_costs_the_same_round_trips_at_ten_thousand_jobs_as_at_ten(
    redis_client: redis.Redis, make_service: MakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Round trips are counted, not timed; filling 10,000 jobs in 500-job batches is only the set-up,
    so it gets a Redis deadline no busy machine reaches (the default 2 s bounds a whole 500-job
    MULTI/EXEC, which a loaded 2-core CI machine has been seen to exceed)."""
    settings = make_settings(redis_socket_timeout=120)
    service = make_service(settings)
    with TestClient(create_app(settings, service)) as client:
        fill(client, service, 0, 10)
        at_ten = round_trips_of_a_page(client, monkeypatch)
        fill(client, service, 10, 10_000)
        at_ten_thousand = round_trips_of_a_page(client, monkeypatch)

        assert data(client, "{ jobs { totalCount } }")["jobs"]["totalCount"] == 10_000
    assert at_ten_thousand == at_ten
    assert 1 <= at_ten <= 3  # at least one: the counter does see the traffic


def test_a_small_filtered_page_reads_its_scan_in_chunks_not_a_page_at_a_time(
    client: TestClient, service: JobService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`first: 1` with a status no job has walks the whole scan budget: in chunks of `SCAN_CHUNK`
    entries (two round trips each: the entries, then their jobs), not 1,000 pairs of one."""
    fill(client, service, 0, SCAN_BUDGET + 50)
    query = "{ jobs(first: 1, filter: {status: FAILED}) { edges { cursor } pageInfo { hasNextPage } } }"
    data(client, query)  # warm: the listing's connection opened (submissions went by the async client)
    with counting_round_trips(monkeypatch) as count:
        connection = data(client, query)["jobs"]

    assert connection == {"edges": [], "pageInfo": {"hasNextPage": True}}  # the budget ran out first
    assert count[0] <= 2 * -(-SCAN_BUDGET // SCAN_CHUNK) + 1
