"""Who receives live job updates in one API process, and how much each may hold.

- `Inbox`: a watcher's updates not yet taken, the latest per job only, at most `INBOX_JOBS` jobs.
  A slow client costs a bounded few references, not one per change (it was a queue of 1,000).
- `EventWatchers`: `jobEvents` watchers filed by whose jobs they may see (the admins on one shelf,
  each tenant on its own) and, within a shelf, under one criterion of their filter. An event looks
  only at the shelves of who may read its job and only under the keys it has (its queue, status,
  task, tags), so its cost follows the watchers it may match, not every watcher of the process
  (issue #13: 20,000 watchers of one tenant slowed every tenant's submissions ~200x).
- `Slots`: per-principal counts with a ceiling, for WebSocket connections and subscriptions.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gql_jobs.auth import Principal
from gql_jobs.domain import JobEvent, JobFilter, JobRecord

#: Distinct jobs a watcher's inbox holds before it drops the longest-waiting one.
INBOX_JOBS = 100


@dataclass(frozen=True)
class Update:
    """What a watcher receives: the event and the job as read after it (`None` once deleted).

    `seq` orders reads: a watcher never shows a read older than one it has shown (two reads in
    flight, say an event's and the poller's, may finish in either order).
    """

    event: JobEvent
    record: JobRecord | None
    seq: int


def fingerprint(record: JobRecord | None) -> tuple[Any, ...]:
    """What makes two reads of a job different to a client."""
    if record is None:
        return ("gone",)
    progress = record.progress.updated_at if record.progress else None
    return (record.raw_status, progress, record.started_at, record.ended_at, record.enqueued_at)


class Inbox:
    """Updates a watcher has not taken yet: the latest per job, for at most `capacity` jobs.

    A subscriber only ever needs a job's latest state (it skips what it has already shown), so a
    newer read of a job replaces the one waiting for it, keeping its place in line. Past `capacity`
    jobs the longest-waiting one is dropped: a client that reads too slowly misses jobs, never
    holds memory without bound.
    """

    def __init__(self, capacity: int = INBOX_JOBS) -> None:
        self._pending: OrderedDict[str, Update] = OrderedDict()
        self._ready = asyncio.Event()
        self._capacity = capacity

    def __len__(self) -> int:
        return len(self._pending)

    def offer(self, update: Update) -> None:
        job_id = update.event.job_id
        waiting = self._pending.get(job_id)
        if waiting is not None and waiting.seq > update.seq:
            return  # an older read finishing late
        if waiting is None and len(self._pending) >= self._capacity:
            self._pending.popitem(last=False)
        self._pending[job_id] = update
        self._ready.set()

    async def get(self) -> Update:
        while not self._pending:
            self._ready.clear()
            await self._ready.wait()
        return self._pending.popitem(last=False)[1]


@dataclass(eq=False)
class Watcher:
    principal: Principal
    job_filter: JobFilter = field(default_factory=JobFilter)
    inbox: Inbox = field(default_factory=Inbox)


#: A filter criterion as a watcher is filed under it: ("tag", "blue"), ("queue", "default")...
_Key = tuple[str, str]
#: One shelf: watchers by the criterion they are filed under (`None`: no criterion, every event).
_Shelf = dict[_Key | None, set[Watcher]]


def _filed_under(job_filter: JobFilter) -> _Key | None:
    """The criterion a watcher is filed under: its filter's most selective one."""
    if job_filter.tag is not None:
        return ("tag", job_filter.tag)
    if job_filter.task is not None:
        return ("task", job_filter.task)
    if job_filter.queue is not None:
        return ("queue", job_filter.queue)
    if job_filter.status is not None:
        return ("status", job_filter.status.value)
    return None


def _keys_of(event: JobEvent) -> Iterator[_Key | None]:
    """Every key under which a watcher that wants this event can be filed."""
    yield None
    yield ("queue", event.queue)
    yield ("status", event.status)
    if event.task is not None:
        yield ("task", event.task)
    for tag in dict.fromkeys(event.tags):
        yield ("tag", tag)


class EventWatchers:
    """`jobEvents` watchers, indexed so that an event touches only those that may match it.

    `examined` counts the watchers events have looked at (tests hold the cost to it).
    """

    def __init__(self) -> None:
        self._admins: _Shelf = {}
        self._tenants: dict[str, _Shelf] = {}
        self._count = 0
        self.examined = 0

    def __len__(self) -> int:
        return self._count

    def add(self, watcher: Watcher) -> None:
        principal = watcher.principal
        shelf = self._admins if principal.is_admin else self._tenants.setdefault(principal.name, {})
        shelf.setdefault(_filed_under(watcher.job_filter), set()).add(watcher)
        self._count += 1

    def remove(self, watcher: Watcher) -> None:
        principal = watcher.principal
        shelf = self._admins if principal.is_admin else self._tenants.get(principal.name, {})
        key = _filed_under(watcher.job_filter)
        filed = shelf.get(key, set())
        if watcher not in filed:
            return
        filed.discard(watcher)
        self._count -= 1
        if not filed:
            del shelf[key]
        if not shelf and not principal.is_admin:
            self._tenants.pop(principal.name, None)

    @property
    def has_tenants(self) -> bool:
        """Whether any watcher sees only its own tenant's jobs (then an event's owner matters)."""
        return bool(self._tenants)

    def may_see(self, owner: str | None) -> bool:
        """Whether any watcher may see a job of this owner (`None`: a job without one)."""
        return bool(self._admins) or (owner is not None and owner in self._tenants)

    def matching(self, event: JobEvent, owner: str | None) -> list[Watcher]:
        """The watchers that want `event` of a job owned by `owner`: the admins and that owner's."""
        shelves = [self._admins]
        if owner is not None and owner in self._tenants:
            shelves.append(self._tenants[owner])
        found = []
        for shelf in shelves:
            for key in _keys_of(event):
                for watcher in shelf.get(key, ()):
                    self.examined += 1
                    if event.matches(watcher.job_filter):
                        found.append(watcher)
        return found


class Slots:
    """How many of something (connections, subscriptions) each principal holds, up to `limit`.

    Per API process: each process bounds its own memory and CPU, and a count kept in Redis would
    outlive a process that dies holding it.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: Counter[str] = Counter()

    def acquire(self, name: str) -> bool:
        if self._held[name] >= self.limit:
            return False
        self._held[name] += 1
        return True

    def release(self, name: str) -> None:
        self._held[name] -= 1
        if self._held[name] <= 0:
            del self._held[name]

    def held(self, name: str) -> int:
        return self._held.get(name, 0)

    def total(self) -> int:
        return self._held.total()
