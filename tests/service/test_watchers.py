"""Watchers: inboxes hold a bounded few updates; an event looks only at watchers that may match it."""

from __future__ import annotations

import asyncio

from gql_jobs.auth import Principal, Scope
from gql_jobs.domain import EventKind, JobEvent, JobFilter, JobStatus
from gql_jobs.service.watchers import INBOX_JOBS, EventWatchers, Inbox, Slots, Update, Watcher

ADMIN = Principal("ops", frozenset({Scope.ADMIN}))
ALICE = Principal("alice", frozenset({Scope.READ}))
BOB = Principal("bob", frozenset({Scope.READ}))


def event(job_id: str = "j", *, queue: str = "default", tags: tuple[str, ...] = ()) -> JobEvent:
    return JobEvent(job_id, EventKind.STATUS, "queued", queue, "echo", tags, "2026-01-01T00:00:00")


def update(job_id: str, seq: int) -> Update:
    return Update(event(job_id), None, seq)


def test_an_inbox_keeps_only_the_latest_update_of_a_job() -> None:
    inbox = Inbox()
    for seq in range(1, 1001):
        inbox.offer(update("j", seq))
    inbox.offer(update("j", 3))  # an older read finishing late
    assert len(inbox) == 1
    assert asyncio.run(inbox.get()).seq == 1000


def test_an_inbox_holds_a_bounded_number_of_jobs_dropping_the_oldest() -> None:
    inbox = Inbox()
    for n in range(INBOX_JOBS + 50):
        inbox.offer(update(f"j{n}", n))
    assert len(inbox) == INBOX_JOBS
    assert asyncio.run(inbox.get()).event.job_id == "j50"


def test_an_event_looks_only_at_its_owners_and_the_admins_watchers() -> None:
    watchers = EventWatchers()
    for _ in range(1000):
        watchers.add(Watcher(ALICE))
    bobs = Watcher(BOB)
    admins = Watcher(ADMIN)
    watchers.add(bobs)
    watchers.add(admins)
    assert set(watchers.matching(event(), "bob")) == {admins, bobs}
    assert watchers.examined == 2
    watchers.examined = 0
    assert watchers.matching(event(), None) == [admins]  # a job without an owner: admins only
    assert watchers.examined == 1


def test_an_event_looks_only_under_the_keys_it_has() -> None:
    watchers = EventWatchers()
    for n in range(100):
        watchers.add(Watcher(ALICE, JobFilter(tag=f"t{n}")))
        watchers.add(Watcher(ALICE, JobFilter(queue=f"q{n}", status=JobStatus.QUEUED)))
    on_t7 = Watcher(ALICE, JobFilter(tag="t7", queue="other"))
    watchers.add(on_t7)
    found = watchers.matching(event(queue="q3", tags=("t7",)), "alice")
    assert len(found) == 2  # tag t7 (any queue), and queue q3 while queued
    assert on_t7 not in found
    assert watchers.examined == 3  # the three filed under t7 or q3; none of the other 198


def test_removing_watchers_empties_the_index() -> None:
    watchers = EventWatchers()
    added = [Watcher(ALICE), Watcher(ALICE, JobFilter(tag="x")), Watcher(ADMIN)]
    for watcher in added:
        watchers.add(watcher)
    for watcher in added:
        watchers.remove(watcher)
        watchers.remove(watcher)  # twice is harmless
    assert len(watchers) == 0
    assert not watchers.has_tenants
    assert not watchers.may_see("alice")


def test_slots_cap_each_principal_and_release() -> None:
    slots = Slots(2)
    assert slots.acquire("alice")
    assert slots.acquire("alice")
    assert not slots.acquire("alice")
    assert slots.acquire("bob")
    slots.release("alice")
    assert slots.acquire("alice")
    assert slots.total() == 3
