"""The client's operators' calls against the real server: bulk actions followed across the
server's bulk limit (3 here, tests/client/conftest.py), kept to the caller's own jobs for a tenant,
the new listing filters and order, attempts, stats, worker suspension and emptying a queue."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from gql_jobs.client import (
    AttemptOutcome,
    BulkSkipCode,
    GqlJobsClient,
    JobStatus,
    UnauthorizedError,
)
from gql_jobs.client.moments import parse_moment
from tests.client.conftest import Server

pytestmark = pytest.mark.integration
#: A queue no worker of `gql-jobs dev` serves: jobs put there wait.
PARKED = "parked"


@pytest.fixture
def client(server: Server) -> Iterator[GqlJobsClient]:
    with GqlJobsClient(server.url, api_key=server.key) as client:
        yield client


def park(client: GqlJobsClient, tag: str, count: int) -> list[str]:
    return [client.submit("echo", {"n": n}, queue=PARKED, tags=[tag]).id for n in range(count)]


def test_cancel_jobs_follows_truncated_results_to_the_end(client: GqlJobsClient, tag: str) -> None:
    ids = park(client, tag, 5)
    outcome = client.cancel_jobs(tag=tag)
    assert outcome.calls >= 2  # five jobs, three per call
    assert (outcome.matched, outcome.acted, outcome.truncated) == (5, 5, False)
    assert sorted(outcome.acted_ids) == sorted(ids)
    assert {job.status for job in client.jobs(tag=tag)} == {JobStatus.CANCELED}


def test_one_call_only_keeps_the_cursor(client: GqlJobsClient, tag: str) -> None:
    park(client, tag, 5)
    first = client.cancel_jobs(tag=tag, all_pages=False)
    assert (first.calls, first.acted, first.truncated) == (1, 3, True)
    rest = client.cancel_jobs(tag=tag)
    assert rest.acted == 2


def test_requeue_and_delete_jobs_by_ids_report_what_they_skipped(client: GqlJobsClient, tag: str) -> None:
    waiting, canceled = park(client, tag, 2)
    client.cancel(canceled)
    requeued = client.requeue_jobs(ids=[waiting, canceled])
    assert requeued.acted_ids == [canceled]
    assert [(s.id, s.status) for s in requeued.skipped] == [(waiting, JobStatus.QUEUED)]
    assert requeued.skipped[0].reason is not BulkSkipCode.NOT_FOUND and requeued.skipped[0].message
    deleted = client.delete_jobs(tag=tag, status="queued")
    assert sorted(deleted.acted_ids) == sorted([waiting, canceled])
    assert list(client.jobs(tag=tag)) == []


def test_a_bulk_action_needs_a_selection(client: GqlJobsClient) -> None:
    with pytest.raises(ValueError, match="all_jobs=True"):
        client.delete_jobs()


def test_a_tenant_cannot_bulk_act_on_another_tenants_jobs(server: Server, tag: str) -> None:
    with (
        GqlJobsClient(server.url, api_key=server.tenants["alice"]) as alice,
        GqlJobsClient(server.url, api_key=server.tenants["bob"]) as bob,
    ):
        hers = [alice.submit("echo", {}, queue=PARKED, tags=[tag]).id for _ in range(2)]
        by_filter = bob.cancel_jobs(tag=tag)
        assert (by_filter.matched, by_filter.acted) == (0, 0)
        by_ids = bob.delete_jobs(ids=hers)
        assert by_ids.acted == 0
        assert {s.reason for s in by_ids.skipped} <= {BulkSkipCode.NOT_FOUND}
        assert {job.status for job in alice.jobs(tag=tag)} == {JobStatus.QUEUED}
        assert alice.cancel_jobs(tag=tag).acted == 2
        with pytest.raises(UnauthorizedError):
            alice.stats()
        with pytest.raises(UnauthorizedError):
            alice.suspend_workers()


def test_jobs_filters_by_time_any_tag_ids_and_order(client: GqlJobsClient, tag: str) -> None:
    other = f"{tag}-b"
    first = client.submit("echo", {}, queue=PARKED, tags=[tag]).id
    second = client.submit("echo", {}, queue=PARKED, tags=[other]).id
    assert [j.id for j in client.jobs(tags=[tag, other])] == [second, first]
    assert [j.id for j in client.jobs(tags=[tag, other], order="oldest_first")] == [first, second]
    assert [j.id for j in client.jobs(ids=[first])] == [first]
    assert [j.id for j in client.jobs(tags=[tag, other], submitted_after="1h")] == [second, first]
    assert list(client.jobs(tags=[tag, other], submitted_before="1h")) == []
    future = datetime.now(UTC) + timedelta(hours=1)
    assert list(client.jobs(tags=[tag, other], submitted_after=future)) == []
    client.delete_jobs(tags=[tag, other])


def test_get_returns_each_attempt(client: GqlJobsClient) -> None:
    job = client.submit("add", {"a": 1, "b": 1})
    client.wait(job.id, timeout=60)
    (attempt,) = client.get(job.id).attempts
    assert attempt.outcome is AttemptOutcome.SUCCESSFUL
    assert attempt.return_value == {"total": 2}


def test_stats_counts_what_was_submitted(client: GqlJobsClient) -> None:
    job = client.submit("add", {"a": 2, "b": 2})
    client.wait(job.id, timeout=60)
    stats = client.stats(window=10, step=5, task="add")
    assert (stats.window, stats.step, stats.task, len(stats.buckets)) == (10, 5, "add", 2)
    assert stats.totals.submitted >= 1 and stats.totals.finished >= 1


def test_suspend_and_resume_workers_and_empty_a_queue(client: GqlJobsClient, tag: str) -> None:
    try:
        assert client.suspend_workers(ttl_seconds=600) is True
        assert client.workers_suspended() is True
    finally:
        assert client.resume_workers() is False
    assert client.workers_suspended() is False
    queue = f"empty-{tag}"[:40]
    client.submit("echo", {}, queue=queue, tags=[tag])
    assert client.empty_queue(queue) == 1
    assert list(client.jobs(tag=tag)) == []


def test_parse_moment_reads_iso_and_spans() -> None:
    now = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert parse_moment("90m", now=now) == now - timedelta(minutes=90)
    assert parse_moment("2026-01-31T10:00:00") == datetime(2026, 1, 31, 10, tzinfo=UTC)
    assert parse_moment("2026-01-31T10:00:00+01:00").utcoffset() == timedelta(hours=1)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_moment("yesterday")


def test_a_bulk_outcome_sums_calls_and_lists_a_skipped_job_once() -> None:
    from gql_jobs.client import BulkOutcome
    from gql_jobs.client._generated.fragments import BulkFields
    from gql_jobs.client.render import sparkline

    def page(acted: list[str], skipped: list[str], truncated: bool) -> BulkFields:
        skips = [
            {"id": i, "reason": "INVALID_STATE", "status": "STARTED", "message": "running"} for i in skipped
        ]
        return BulkFields.model_validate(
            {
                "matched": len(acted) + len(skipped),
                "acted": len(acted),
                "actedIds": acted,
                "skipped": skips,
                "truncated": truncated,
                "cursor": None,
            }
        )

    outcome = BulkOutcome()
    outcome.add(page(["a", "b"], ["s"], truncated=True))
    outcome.add(page(["c"], ["s"], truncated=False))  # asked again from the start: "s" again
    assert (outcome.matched, outcome.acted, outcome.calls, outcome.truncated) == (4, 3, 2, False)
    assert outcome.acted_ids == ["a", "b", "c"] and [s.id for s in outcome.skipped] == ["s"]
    assert sparkline([0, 5, 10]) == "▁▅█" and sparkline([0, 0]) == "▁▁"
