"""A `jobEvents` item says what its change announced, even when the job, read later, moved on.

The job is read once per event, after it arrives; on a busy machine a fast job has finished by the
time its STARTED event is read. The event must still say STARTED (that is what a `status` filter
matched), and only its `job` shows the later state."""

from __future__ import annotations

from gql_jobs.domain import EventKind
from gql_jobs.domain import JobEvent as DomainEvent
from gql_jobs.domain import JobStatus as DomainStatus
from gql_jobs.graphql.subscriptions import JobEvent, JobEventType
from gql_jobs.graphql.types import JobStatus
from gql_jobs.service.watchers import Update
from tests.service.test_polling import record


def event(status: str, kind: EventKind = EventKind.STATUS) -> DomainEvent:
    return DomainEvent("j1", kind, status, "q", "echo", (), "2026-12-02T04:00:00+00:00")


def test_status_is_the_announced_one_when_the_job_moved_on() -> None:
    later = record("j1", DomainStatus.FINISHED)
    item = JobEvent.of(Update(event("started"), later, seq=1))
    assert item.status is JobStatus.STARTED
    assert item.job is not None and item.job.status is JobStatus.FINISHED
    assert item.type is JobEventType.STATUS


def test_an_event_without_a_known_status_takes_the_jobs() -> None:
    item = JobEvent.of(Update(event("", EventKind.PROGRESS), record("j1", DomainStatus.STARTED), seq=1))
    assert item.status is JobStatus.STARTED


def test_a_deleted_job_has_an_unknown_status_and_no_job() -> None:
    """Whoever saw the deletion: the poller (its event says "deleted") or the API (its event
    carries the job's last status)."""
    for status in ("deleted", "finished"):
        item = JobEvent.of(Update(event(status, EventKind.DELETED), None, seq=1))
        assert item.status is JobStatus.UNKNOWN
        assert item.job is None
