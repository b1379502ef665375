"""The poller's plan: what a cycle reads (at most the budget, only what can have changed)."""

from __future__ import annotations

import pytest
from rq import Queue

from gql_jobs.auth import ANONYMOUS, SYSTEM
from gql_jobs.domain import JobRecord, JobStatus, SubmitRequest
from gql_jobs.service.jobs import JobService
from gql_jobs.service.polling import PollPlan
from gql_jobs.store.inventory import QueueSignature, may_have_left
from gql_jobs.store.rq_format import SERIALIZER

IDLE: QueueSignature = (3, b"a", b"c", 0, 0, 0, 0)


def record(job_id: str, status: JobStatus, queue: str = "q") -> JobRecord:
    return JobRecord(
        id=job_id,
        status=status,
        raw_status=status.value,
        task="echo",
        queue=queue,
        func_name=None,
        payload=None,
        meta={},
        tags=(),
        description=None,
        submitted_at=None,
        created_at=None,
        enqueued_at=None,
        started_at=None,
        ended_at=None,
        result=None,
        error=None,
        progress=None,
        retries_left=None,
        depends_on=(),
        timeout=None,
        result_ttl=None,
        failure_ttl=None,
        worker_name=None,
    )


def waiting_plan(count: int, budget: int = 10) -> PollPlan:
    """`count` tracked QUEUED jobs on queue q, read once, q signed before those reads."""
    plan = PollPlan(budget=budget, max_tracked=1000)
    for n in range(count):
        plan.track(f"j{n}")
    assert plan.queues_to_sign() == []  # nothing known of any queue yet
    taken = plan.take_due()
    for job_id in taken:
        plan.learn(job_id, record(job_id, JobStatus.QUEUED), seq=1)
    plan.signed("q", IDLE, after=1)
    while taken := plan.take_due():  # the first signature of q: jobs read before it are read again
        for job_id in taken:
            plan.learn(job_id, record(job_id, JobStatus.QUEUED), seq=2)
    return plan


def test_a_cycle_takes_at_most_the_budget() -> None:
    plan = PollPlan(budget=10, max_tracked=1000)
    for n in range(35):
        plan.track(f"j{n}")
    assert [len(plan.take_due()) for _ in range(5)] == [10, 10, 10, 5, 0]


def test_queued_jobs_wait_unread_while_their_queue_is_unchanged() -> None:
    plan = waiting_plan(30)
    for _ in range(3):
        assert plan.queues_to_sign() == ["q"]
        plan.signed("q", IDLE, after=3)
        assert plan.take_due() == []


def test_a_queue_that_only_grows_makes_nobody_due() -> None:
    plan = waiting_plan(30)
    plan.signed("q", (5, b"a", b"e", 0, 0, 0, 0), after=3)
    assert plan.take_due() == []


def test_a_job_leaving_the_queue_makes_its_waiting_jobs_due_within_the_budget() -> None:
    plan = waiting_plan(30)
    plan.signed("q", (2, b"b", b"c", 1, 0, 0, 0), after=3)  # a worker took the head
    assert [len(plan.take_due()) for _ in range(4)] == [10, 10, 10, 0]


def test_started_jobs_are_read_every_cycle_in_turn() -> None:
    plan = PollPlan(budget=2, max_tracked=1000)
    for n in range(3):
        plan.track(f"s{n}")
    seen = []
    for seq in range(1, 4):
        taken = plan.take_due()
        seen.append(taken)
        for job_id in taken:
            plan.learn(job_id, record(job_id, JobStatus.STARTED), seq=seq)
    assert seen == [["s0", "s1"], ["s2", "s0"], ["s1", "s2"]]


def test_final_jobs_are_no_longer_followed() -> None:
    plan = waiting_plan(1)
    plan.learn("j0", record("j0", JobStatus.FINISHED), seq=9)
    assert "j0" not in plan
    assert plan.queues_to_sign() == []


def test_a_read_sent_before_the_signature_does_not_wait_on_it() -> None:
    plan = waiting_plan(1)
    plan.signed("q", (2, b"b", b"c", 1, 0, 0, 0), after=7)
    [job_id] = plan.take_due()
    plan.learn(job_id, record(job_id, JobStatus.QUEUED), seq=5)  # an event's read, older than the look
    assert plan.take_due() == [job_id]


def test_an_older_read_finishing_late_changes_nothing() -> None:
    plan = waiting_plan(1)
    plan.learn("j0", record("j0", JobStatus.STARTED), seq=8)
    assert plan.learn("j0", record("j0", JobStatus.QUEUED), seq=4) is None
    assert plan.take_due() == ["j0"]  # still placed as STARTED


def test_an_event_nobody_read_makes_the_job_due() -> None:
    plan = waiting_plan(3)
    plan.prompt("j1")
    assert plan.take_due() == ["j1"]


def test_tracking_keeps_the_newest_jobs_only() -> None:
    plan = PollPlan(budget=10, max_tracked=3)
    for n in range(5):
        plan.track(f"j{n}")
    assert plan.tracked_count == 3
    assert "j0" not in plan
    assert "j4" in plan


def test_a_watched_job_outlives_its_tracking() -> None:
    plan = PollPlan(budget=10, max_tracked=1)
    plan.watch("w")
    plan.track("w")
    plan.track("other")  # evicts w from tracking
    assert "w" in plan
    plan.unwatch("w")
    assert "w" not in plan


def test_may_have_left() -> None:
    assert may_have_left(None, IDLE)
    assert not may_have_left(IDLE, IDLE)
    assert not may_have_left(IDLE, (9, b"a", b"z", 0, 0, 0, 0))  # pushes at the tail
    assert may_have_left(IDLE, (3, b"b", b"z", 1, 0, 0, 0))  # a worker's pop
    assert may_have_left(IDLE, (2, b"a", b"c", 0, 0, 0, 0))  # a removal from the middle
    assert may_have_left(IDLE, (3, b"a", b"d", 0, 0, 0, 0))  # a removal made up by one push
    assert may_have_left(IDLE, (3, b"a", b"c", 0, 0, 0, 1))  # a cancel
    assert may_have_left(IDLE, (3, b"a", b"c", 0, 1, 0, 0))  # a registry changed


@pytest.mark.anyio
async def test_a_queue_signature_shows_a_workers_pop_but_not_new_jobs(fake_service: JobService) -> None:
    async def signature() -> QueueSignature:
        [found] = await fake_service.queue_signatures(SYSTEM, ["default"])
        return found

    await fake_service.submit_many(ANONYMOUS, [SubmitRequest(task="echo")] * 3)
    idle = await signature()
    await fake_service.submit(ANONYMOUS, SubmitRequest(task="echo"))
    grown = await signature()
    assert not may_have_left(idle, grown)
    queue = Queue("default", connection=fake_service.connection, serializer=SERIALIZER)
    assert Queue.dequeue_any([queue], None, connection=fake_service.connection, serializer=SERIALIZER)
    assert may_have_left(grown, await signature())  # taken into the intermediate list, as a worker does
