"""Controlling the workers and queues (`JobService.suspend_workers`, `resume_workers`,
`workers_suspended`, `empty_queue`): RQ's suspension and `Queue.empty` (`store.control`).

Apart from `jobs` because none of it acts on a job the caller names: it checks the request, then
runs RQ's synchronous call on a store thread. The caller's scope was checked by the service (admins
only for what stops or deletes every tenant's work).
"""

from __future__ import annotations

import re

from gql_jobs.constants import NAME_PATTERN
from gql_jobs.errors import InvalidRequestError
from gql_jobs.store import control
from gql_jobs.store.connections import Client
from gql_jobs.store.threads import in_thread
from gql_jobs.store.writes import Enqueuer


async def suspend_workers(connection: Client, ttl_seconds: int | None) -> bool:
    """Suspend every worker, until resumed or for `ttl_seconds`; whether they are suspended."""
    if ttl_seconds is not None and ttl_seconds <= 0:
        raise InvalidRequestError("ttlSeconds", "must be positive (or null: until resumed)")
    await in_thread(control.suspend_workers, connection, ttl_seconds)
    return True


async def resume_workers(connection: Client) -> bool:
    """Let suspended workers take jobs again; whether they are suspended."""
    await in_thread(control.resume_workers, connection)
    return False


async def workers_suspended(connection: Client) -> bool:
    return await in_thread(control.workers_suspended, connection)


async def empty_queue(connection: Client, enqueuer: Enqueuer, queue: str) -> int:
    """Delete every job waiting on `queue`; how many were deleted. An unknown queue is
    `InvalidRequestError`."""
    if not re.fullmatch(NAME_PATTERN, queue):
        raise InvalidRequestError("queue", "is not a queue name")
    rq_queue = enqueuer.queue(queue)
    if not await in_thread(control.queue_exists, connection, rq_queue):
        raise InvalidRequestError("queue", f"no queue named {queue!r} (see `queues`)")
    return await in_thread(control.empty_queue, rq_queue)
