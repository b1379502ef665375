"""Queue and worker control that RQ offers: suspending every worker, emptying a queue.

Suspension is RQ's own (`rq.suspension`: one `rq:suspended` key): a suspended worker finishes its
current job and takes no other until resumed (or the suspension's TTL lapses), as `rq suspend`
does. Emptying a queue is RQ's `Queue.empty`: one Lua script pops every queued job id and deletes
its hash (and dependents list), atomically. The jobs' listing entries stay until a listing walks
past them and drops them, as for any deleted or expired job (`listing._prune`); followers learn
of the deletion from the poller, which finds the jobs gone. Synchronous: for a store thread.
"""

from __future__ import annotations

from redis import Redis
from rq import Queue
from rq.suspension import is_suspended, resume, suspend

from gql_jobs.store.keys import QUEUES_SET, queue_key


def suspend_workers(connection: Redis, ttl_seconds: int | None) -> None:
    """Suspend every worker on this Redis (for `ttl_seconds`, or until resumed)."""
    suspend(connection, ttl_seconds)


def resume_workers(connection: Redis) -> None:
    resume(connection)


def workers_suspended(connection: Redis) -> bool:
    return bool(is_suspended(connection))


def queue_exists(connection: Redis, queue: Queue) -> bool:
    """Whether RQ knows the queue (it is in `rq:queues`) or has jobs queued on it."""
    return bool(connection.sismember(QUEUES_SET, queue_key(queue.name)) or connection.llen(queue.key))


def empty_queue(queue: Queue) -> int:
    """Delete every job waiting on the queue (RQ's `Queue.empty`); how many there were."""
    return int(queue.empty())  # type: ignore[no-untyped-call]
