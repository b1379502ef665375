"""Every use of a private RQ name, in one module, held to the installed RQ by a test.

RQ gives no public hook for some of what we need: the pipeline of a job's success or failure (to
publish its event and outcome metrics in RQ's own round trip), a running job's working time (for
the heartbeat), whether a worker was asked to stop, its scheduler's process, a job's dependency
ids and stored traceback, and an enqueue that skips the dependency check (a requeue). Each use is
here and nowhere else: classes that must override a private method do it here and call a public
hook that `gql_jobs.worker` implements; everything else is a small function.

`tests/store/test_rq_adapter.py` checks every name in `PRIVATE_NAMES` against the installed RQ (the
methods' parameters by name and kind, the attributes on real instances), and that no other module
of the package touches one, so an RQ upgrade that changes them fails that test instead of failing
workers at run time. Written against RQ 2.12 (`rq>=2.12,<3` in pyproject.toml): RQ 3.0 replaced
`current_job_working_time` with a `get_heartbeat_ttl(job, working_time)` parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from typing import Any

from redis import Redis
from redis.client import Pipeline
from rq import Queue, Worker
from rq.job import Job, JobStatus
from rq.registry import CanceledJobRegistry, FailedJobRegistry

from gql_jobs.store.rq_format import SERIALIZER, CompactJob

#: The private RQ members this module relies on (owner, name), and nothing else does.
PRIVATE_NAMES = frozenset(
    {
        ("Job", "_handle_success"),
        ("Job", "_handle_failure"),
        ("Job", "_exc_info"),
        ("Job", "_dependency_ids"),
        ("Queue", "_enqueue_job"),
        ("Worker", "current_job_working_time"),
        ("Worker", "_shutdown_requested_date"),
        ("RQScheduler", "_process"),
    }
)


class HookedJob(CompactJob):
    """Our job class (compact saves), with public hooks after RQ's private outcome handlers.

    RQ hands `_handle_success` / `_handle_failure` the pipeline it is about to send: what a hook
    stages on it costs no extra round trip."""

    def _handle_success(self, result_ttl: int, pipeline: Pipeline, *args: Any, **kwargs: Any) -> None:
        super()._handle_success(result_ttl, pipeline, *args, **kwargs)
        self.after_success(pipeline)

    def _handle_failure(self, exc_string: str, pipeline: Pipeline, *args: Any, **kwargs: Any) -> None:
        super()._handle_failure(exc_string, pipeline, *args, **kwargs)
        self.after_failure(pipeline)

    def after_success(self, pipeline: Pipeline) -> None:
        """Called once RQ has staged the job's success on `pipeline` (not yet sent)."""

    def after_failure(self, pipeline: Pipeline) -> None:
        """Called once RQ has staged the job's failure (or stop) on `pipeline` (not yet sent)."""


class HeartbeatWorker(Worker):
    """RQ's worker, asking `heartbeat_ttl` for the TTL of a running job's heartbeat."""

    def get_heartbeat_ttl(self, job: Job) -> int:
        return self.heartbeat_ttl(job, self.current_job_working_time)

    def heartbeat_ttl(self, job: Job, working_time: float) -> int:
        """How long the heartbeat of `job`, running for `working_time` seconds, stays valid."""
        return int(super().get_heartbeat_ttl(job))


def shutdown_requested(worker: Worker) -> bool:
    """Whether RQ was asked to stop this worker (SIGTERM/SIGINT), as opposed to quitting by itself."""
    return worker._shutdown_requested_date is not None


def scheduler_process(worker: Worker) -> BaseProcess | None:
    """The process of the worker's scheduler, if it started one (RQ only joins it, untimed)."""
    return worker.scheduler._process if worker.scheduler else None


def enqueue_directly(queue: Queue, job: Job, pipeline: Pipeline | None = None) -> None:
    """Put an existing job on `queue` as it is, without RQ's dependency check (for a requeue)."""
    queue._enqueue_job(job, pipeline=pipeline)


class SnapshotJob(CompactJob):
    """A job read under WATCH, whose status RQ's calls take from that read instead of asking Redis.

    RQ's `cancel` and `delete` check `is_canceled`, `is_finished`, ... each a round trip
    (`get_status()` refreshes). Read under WATCH, the snapshot is the stored status until our
    MULTI/EXEC (or the EXEC fails and we read again), so the answer is the same and a chunk of jobs
    costs one read instead of a few per job. (Public methods only: no private RQ name.)"""

    snapshot: JobStatus | None = None

    def get_status(self, refresh: bool = True) -> JobStatus:
        if refresh and self.snapshot is not None:
            return self.snapshot
        return super().get_status(refresh=False)

    @property
    def execution_registry(self) -> Any:
        """RQ's `delete` reads a job's executions (two round trips) to unlink each from the started
        registry; a job that is not running has none there (its worker removed it, or the sweep
        that failed an abandoned one did), so its executions key is deleted unread, staged."""
        registry = super().execution_registry
        return registry if self.snapshot == JobStatus.STARTED else _UnreadExecutions(registry.key)


class _UnreadExecutions:
    """An executions registry deleted without reading it (see `SnapshotJob.execution_registry`)."""

    def __init__(self, key: str) -> None:
        self.key = key

    def delete(self, job: Job, pipeline: Pipeline) -> None:
        pipeline.delete(self.key)


def fetch_snapshots(connection: Redis, job_ids: Sequence[str]) -> list[SnapshotJob | None]:
    """The jobs in one round trip (`None`: gone), each with its status snapshot."""
    jobs: list[SnapshotJob | None] = []
    for job in SnapshotJob.fetch_many(job_ids, connection=connection, serializer=SERIALIZER):
        assert job is None or isinstance(job, SnapshotJob)
        if job is not None:
            job.snapshot = job.get_status(refresh=False)
        jobs.append(job)
    return jobs


def stage_requeue(queue: Queue, job: Job, pipeline: Pipeline) -> None:
    """RQ's registry `requeue` (failed or canceled), staged on our MULTI/EXEC: out of both
    registries (RQ files stopped jobs as failed), times and stored traceback cleared, enqueued."""
    for registry_class in (FailedJobRegistry, CanceledJobRegistry):
        registry_class(job.origin, connection=queue.connection, serializer=SERIALIZER).remove(
            job, pipeline=pipeline
        )
    job.started_at = None
    job.ended_at = None
    job._exc_info = ""
    enqueue_directly(queue, job, pipeline)


def stored_traceback(job: Job) -> str | None:
    """The traceback RQ stored on the job hash (`exc_info`; older RQ had no results stream)."""
    traceback: str | None = job._exc_info
    return traceback


def dependency_ids(job: Job) -> list[str]:
    """The ids of the jobs `job` depends on, as read from its hash (no round trip)."""
    return list(job._dependency_ids)
