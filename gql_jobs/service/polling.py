"""Which jobs the live poller reads in one cycle: at most `budget`, and only those that can have changed.

The poller is the fallback for changes no event announces (a plain `rq worker`, RQ's scheduler, a
dead worker's job failed by cleanup). It follows the jobs of `jobUpdates` watchers and, for
`jobEvents` watchers, up to `max_tracked` not-yet-final jobs seen in events. It used to re-read all
of them every interval, a cost in proportion to their number (issue #13: 10,000 idle QUEUED jobs
and one subscriber took 92% of a CPU). Two rules bound it, whatever the number of followed jobs:

1. **A budget.** A cycle reads at most `budget` jobs (one pipelined round trip) and signs at most
   `budget` queues (one MULTI/EXEC of seven O(1) commands each). Jobs due for a read take their turn
   in order; a job that stays due (STARTED) goes to the back: a round robin.
2. **Read what can have changed.** A QUEUED job changes only by leaving its queue's list (a worker
   takes it, it is cancelled or deleted); a SCHEDULED or DEFERRED job by leaving its registry. The
   queue's *signature* (`inventory.stage_signatures`: the list's length, head and tail, the
   intermediate list's length, the sizes of the scheduled, deferred and canceled registries) shows
   each of these (`inventory.may_have_left`). So such a job *waits* on its queue, unread, until a
   signature says a job may have left; then every job waiting there is due. An idle queue, or one
   that only grows (no worker serves it), costs seven commands a cycle however many jobs wait on
   it. STARTED jobs write their progress into their own hash, which no signature shows: they are
   always due (about one per busy worker). Final jobs are not polled; an event makes any followed
   job due again.

Soundness rests on order: a job waits only on a signature read *before* the read it was learned
from (`seq`: reads numbered above `signed(..., after)` were sent after that signature's reply).

What it gives up: with more than `budget` jobs due, a change reaches subscribers within
ceil(due / budget) cycles instead of one; a change the signature cannot see (one undone within the
interval, or `may_have_left`'s exception) waits for the queue's next visible change; and the
bookkeeping of a changed queue is in proportion to the jobs waiting on it (set moves, no I/O).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from gql_jobs.domain import JobRecord, JobStatus
from gql_jobs.service.watchers import fingerprint
from gql_jobs.store.inventory import QueueSignature, may_have_left

#: Statuses a job leaves only through its queue's list or registries, which its signature shows.
#: Not RQ 3's RATE_LIMITED (held per concurrency key, not per queue) nor READY_TO_ENQUEUE (brief):
#: like STARTED, those are always due, within the budget.
WAITING_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED})


@dataclass(eq=False)
class _Followed:
    """A job the poller follows, and where it stands."""

    watchers: int = 0  # `jobUpdates` watchers
    tracked: bool = False  # followed for `jobEvents` watchers
    seq: int = 0  # the read it was last learned from
    queue: str | None = None  # the queue whose signature it depends on (last read waiting there)
    waiting: bool = False  # unread until that queue's signature changes
    shown: tuple[Any, ...] = ()  # what `jobEvents` watchers were last sent (`()`: nothing yet)


@dataclass(eq=False)
class _Queue:
    signature: QueueSignature | None = None
    after: int = 0  # reads numbered above this were sent after `signature` was read
    members: set[str] = field(default_factory=set)  # followed jobs depending on it
    waiting: set[str] = field(default_factory=set)  # ... of which unread until it changes


@dataclass
class PollStats:
    """What the poller has done (tests hold its cost to these; `/metrics` could export them)."""

    cycles: int = 0
    jobs_read: int = 0
    queues_signed: int = 0
    last_jobs_read: int = 0
    most_jobs_read: int = 0  # in one cycle

    def count_reads(self, jobs: int) -> None:
        self.jobs_read += jobs
        self.last_jobs_read = jobs
        self.most_jobs_read = max(self.most_jobs_read, jobs)


class PollPlan:
    """The poller's bookkeeping: followed jobs, where each stands, what the next cycle reads. No I/O."""

    def __init__(self, budget: int, max_tracked: int) -> None:
        self.budget = budget
        self.max_tracked = max_tracked
        self._jobs: dict[str, _Followed] = {}
        self._due: OrderedDict[str, None] = OrderedDict()
        self._tracked: OrderedDict[str, None] = OrderedDict()  # least recently seen first
        self._queues: OrderedDict[str, _Queue] = OrderedDict()

    # -- what is followed ---------------------------------------------------------------------

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    @property
    def tracked_count(self) -> int:
        return len(self._tracked)

    @property
    def due_count(self) -> int:
        return len(self._due)

    def watch(self, job_id: str) -> None:
        self._follow(job_id).watchers += 1

    def unwatch(self, job_id: str) -> None:
        entry = self._jobs.get(job_id)
        if entry is not None:
            entry.watchers -= 1
            self._drop_if_unfollowed(job_id, entry)

    def track(self, job_id: str) -> None:
        """A job seen in an event while `jobEvents` watchers exist: follow it (the newest `max_tracked`)."""
        entry = self._follow(job_id)
        entry.tracked = True
        self._tracked[job_id] = None
        self._tracked.move_to_end(job_id)
        while len(self._tracked) > self.max_tracked:
            self._untrack(next(iter(self._tracked)))

    def untrack_all(self) -> None:
        for job_id in list(self._tracked):
            self._untrack(job_id)

    def prompt(self, job_id: str) -> None:
        """An event announced a change nobody read: read the job in the next cycles."""
        entry = self._jobs.get(job_id)
        if entry is not None:
            self._make_due(job_id, entry)

    def shown(self, job_id: str) -> tuple[Any, ...] | None:
        """What `jobEvents` watchers were last sent of a tracked job; `None` if not tracked."""
        entry = self._jobs.get(job_id)
        return entry.shown if entry is not None and entry.tracked else None

    # -- one cycle ----------------------------------------------------------------------------

    def queues_to_sign(self) -> list[str]:
        """Up to `budget` queues, in turn."""
        names = list(itertools.islice(self._queues, self.budget))
        for name in names:
            self._queues.move_to_end(name)
        return names

    def signed(self, queue: str, signature: QueueSignature, after: int) -> None:
        """A queue's signature was read; reads numbered above `after` were sent after it."""
        state = self._queues.get(queue)
        if state is None:
            return
        if may_have_left(state.signature, signature):
            for job_id in state.waiting:
                self._jobs[job_id].waiting = False
                self._due[job_id] = None
            state.waiting.clear()
        state.signature = signature
        state.after = after

    def take_due(self) -> list[str]:
        """The next `budget` jobs to read (taken out of line until `learn` or `put_back`)."""
        count = min(self.budget, len(self._due))
        return [self._due.popitem(last=False)[0] for _ in range(count)]

    def put_back(self, job_ids: list[str]) -> None:
        """Their read failed: first in line next time."""
        for job_id in reversed(job_ids):
            entry = self._jobs.get(job_id)
            if entry is not None and not entry.waiting and job_id not in self._due:
                self._due[job_id] = None
                self._due.move_to_end(job_id, last=False)

    def learn(self, job_id: str, record: JobRecord | None, seq: int) -> tuple[Any, ...] | None:
        """A read of a followed job (the poller's or an event's), numbered `seq`.

        Places the job by what it shows, and returns what `jobEvents` watchers were last sent
        of it (`None`: not tracked, or an older read than one already learned; tell them nothing).
        """
        entry = self._jobs.get(job_id)
        if entry is None or seq < entry.seq:
            return None
        entry.seq = seq
        shown = entry.shown if entry.tracked else None
        if entry.tracked:
            entry.shown = fingerprint(record)
        self._due.pop(job_id, None)
        self._stop_waiting(job_id, entry)
        if record is not None and record.status in WAITING_STATUSES:
            self._wait_on(job_id, entry, record.queue, seq)
            return shown
        self._leave_queue(job_id, entry)
        if record is None or record.status.is_final:
            if entry.tracked:
                self._untrack(job_id)
        else:
            self._due[job_id] = None
        return shown

    # -- placing ------------------------------------------------------------------------------

    def _follow(self, job_id: str) -> _Followed:
        entry = self._jobs.get(job_id)
        if entry is None:
            entry = self._jobs[job_id] = _Followed()
            self._due[job_id] = None  # never read: read it
        return entry

    def _untrack(self, job_id: str) -> None:
        self._tracked.pop(job_id, None)
        entry = self._jobs.get(job_id)
        if entry is not None:
            entry.tracked = False
            entry.shown = ()
            self._drop_if_unfollowed(job_id, entry)

    def _drop_if_unfollowed(self, job_id: str, entry: _Followed) -> None:
        if entry.watchers <= 0 and not entry.tracked:
            self._due.pop(job_id, None)
            self._stop_waiting(job_id, entry)
            self._leave_queue(job_id, entry)
            del self._jobs[job_id]

    def _wait_on(self, job_id: str, entry: _Followed, queue: str, seq: int) -> None:
        if entry.queue != queue:
            self._leave_queue(job_id, entry)
        state = self._queues.get(queue)
        if state is None:
            state = self._queues[queue] = _Queue()
        entry.queue = queue
        state.members.add(job_id)
        if seq > state.after:  # read after the signature it would wait on
            entry.waiting = True
            state.waiting.add(job_id)
        else:
            self._due[job_id] = None

    def _make_due(self, job_id: str, entry: _Followed) -> None:
        self._stop_waiting(job_id, entry)
        self._due[job_id] = None

    def _stop_waiting(self, job_id: str, entry: _Followed) -> None:
        if entry.waiting and entry.queue is not None:
            self._queues[entry.queue].waiting.discard(job_id)
        entry.waiting = False

    def _leave_queue(self, job_id: str, entry: _Followed) -> None:
        """No longer depends on its queue's signature (a queue nobody depends on is forgotten)."""
        if entry.queue is None:
            return
        state = self._queues[entry.queue]
        state.members.discard(job_id)
        state.waiting.discard(job_id)
        if not state.members:
            del self._queues[entry.queue]
        entry.queue = None
        entry.waiting = False
