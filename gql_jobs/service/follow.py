"""Following jobs as they change, whatever the transport: one job to its end, or a stream of events.

GraphQL subscriptions (over WebSocket or Server-Sent Events) and any later transport iterate these
and only convert what they get; the rules of a live stream live here, once:

* `follow`: the job's current state first, then each change not shown yet (a read older than one
  shown, or one a client could not tell apart, is skipped: the same change may arrive twice, from
  an event and from the poller); it ends on a final state, raises `JobNotFoundError` at the start
  for a job the caller may not read, and `JobDeletedError` once the job is deleted.
* `events`: the events of the jobs the caller may read that match its filter, each with the job
  as read after it (`None` once deleted); an event whose job vanished before it was read is not
  passed on (there is nothing to show of it).

Both take the caller's `subscriptions` slot for as long as they run (`LiveUpdates`), and register
their watcher *before* reading a job's current state, so nothing is missed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from gql_jobs.auth import Principal, Scope
from gql_jobs.domain import EventKind, JobFilter, JobRecord
from gql_jobs.errors import JobDeletedError
from gql_jobs.service.live import LiveUpdates
from gql_jobs.service.watchers import Update, fingerprint


async def follow(live: LiveUpdates, caller: Principal | None, job_id: str) -> AsyncGenerator[JobRecord, None]:
    """The job now, then at every change it shows, until it reaches a final state."""
    reader = live.service.authorize(caller, Scope.READ)
    async with live.watch_job(job_id, reader) as updates:  # subscribe first, then read
        shown_seq = live.next_seq()
        record = await live.service.get(reader, job_id)
        shown = fingerprint(record)
        yield record
        while not record.status.is_final:
            update = await updates.get()
            if update.seq < shown_seq or fingerprint(update.record) == shown:
                continue
            if update.record is None:
                raise JobDeletedError(job_id)
            record, shown, shown_seq = update.record, fingerprint(update.record), update.seq
            yield record


async def events(
    live: LiveUpdates, caller: Principal | None, job_filter: JobFilter
) -> AsyncGenerator[Update, None]:
    """Every event of a job the caller may read that matches `job_filter`, for as long as it runs.

    `LiveUpdates` already routes each event only to the watchers that may see its job (by owner,
    then by filter: `watchers.EventWatchers`); the checks here make that the rule of the stream
    rather than a property of the routing."""
    reader = live.service.authorize(caller, Scope.READ)
    async with live.watch_events(job_filter, reader) as updates:
        while True:
            update = await updates.get()
            if _shows(reader, job_filter, update):
                yield update


def _shows(reader: Principal, job_filter: JobFilter, update: Update) -> bool:
    if update.record is None and update.event.kind != EventKind.DELETED:
        return False  # gone before it could be read: nothing to show
    owner = update.record.owner if update.record is not None else update.event.owner
    return reader.owns(owner) and update.event.matches(job_filter)
