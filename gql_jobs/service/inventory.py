"""What the system around the jobs looks like to a caller: tasks, queues and workers
(`JobService.tasks`, `queues`, `workers`), read from RQ's records (`store.inventory`).

Apart from `jobs` because the rules here are about what a tenant may learn of the others: an
admin sees every queue and worker in full, anyone else only the queues its own newest jobs are in
and the workers serving them, with nothing that names a host, a process, another tenant's queue or
job, or counts over all tenants. The reads are synchronous (RQ's records): the service runs them
on a store thread within the caller's read slots, after checking its scope.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

from gql_jobs.auth import Principal
from gql_jobs.constants import SCAN_BUDGET
from gql_jobs.domain import QueueInfo, TaskInfo, WorkerInfo
from gql_jobs.settings import Settings
from gql_jobs.store import inventory, listing
from gql_jobs.store.connections import Client
from gql_jobs.tasks import TaskRegistry


def task_infos(registry: TaskRegistry) -> list[TaskInfo]:
    """The registered tasks, as any reader may see them."""
    return [TaskInfo(s.name, s.description, s.input_schema()) for s in registry.specs()]


def queues_seen_by(connection: Client, reader: Principal) -> list[QueueInfo]:
    """Every queue with its counts per status for an admin; else the reader's own, without counts."""
    if not reader.is_admin:
        return [QueueInfo(name, None) for name in _own_queues(connection, reader)]
    names = inventory.queue_names(connection)
    counts = inventory.status_counts(connection, names)
    return [QueueInfo(name, counts[name]) for name in names]


def workers_seen_by(connection: Client, reader: Principal, pseudonym_key: bytes) -> list[WorkerInfo]:
    """Every worker for an admin; else those serving the reader's queues, as it may see them."""
    found = inventory.workers(connection)
    if reader.is_admin:
        return found
    own_queues = set(_own_queues(connection, reader))
    serving = [worker for worker in found if own_queues.intersection(worker.queues)]
    running = [worker.current_job_id for worker in serving if worker.current_job_id]
    owners = inventory.job_owners(connection, running)
    return [_as_seen_by(reader, worker, own_queues, owners, pseudonym_key) for worker in serving]


def _own_queues(connection: Client, reader: Principal) -> list[str]:
    return listing.owner_queues(connection, reader.name, SCAN_BUDGET)


def _as_seen_by(
    reader: Principal,
    worker: WorkerInfo,
    own_queues: set[str],
    owners: dict[str, str | None],
    pseudonym_key: bytes,
) -> WorkerInfo:
    """A worker as a non-admin may see it: a pseudonym for its name (which RQ or an operator may
    make of the host and pid), no host or pid, only the reader's queues, its current job only if it
    is the reader's, and no job counts (they add up every tenant's jobs)."""
    job = worker.current_job_id
    return replace(
        worker,
        name="worker-" + hmac.new(pseudonym_key, worker.name.encode(), "sha256").hexdigest()[:16],
        queues=[queue for queue in worker.queues if queue in own_queues],
        current_job_id=job if job is not None and owners.get(job) == reader.name else None,
        successful_job_count=None,
        failed_job_count=None,
        pid=None,
        hostname=None,
        extra={},
    )


def pseudonym_key(settings: Settings) -> bytes:
    """The key of workers' pseudonyms: the same in every API process with the same keys (so a name
    stays the same), and unknown to tenants (who never see the configured key hashes)."""
    return hashlib.sha256(" ".join(sorted(settings.api_keys)).encode()).digest()
