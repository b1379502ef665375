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
workers at run time.

Two RQ majors are supported (`rq>=2.12,<3.1` in pyproject.toml), and every difference between them
is decided here, on `RQ_MAJOR`, and nowhere else:

* the heartbeat: RQ 2 keeps a running job's working time on the worker
  (`current_job_working_time`), RQ 3 passes it to `get_heartbeat_ttl(job, working_time)` (a
  2.x-style override raised `AttributeError` on RQ 3's first job);
* what RQ 3 adds (`HAS_RQ3`): concurrency limits per key (`rate_limit`), stopping one execution
  (`stop_running_job`), the `rq:ready:` registry and RQ's key prefix (`ready_registry_template`,
  `key_prefix`), the rate-limited jobs waiting per key (`rate_limited_keys`).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from typing import Any

import rq
from redis import Redis
from redis.client import Pipeline
from rq import Queue, Worker
from rq.command import send_command, send_stop_job_command
from rq.exceptions import InvalidJobOperation
from rq.job import Job, JobStatus
from rq.registry import CanceledJobRegistry, FailedJobRegistry

from gql_jobs.store.rq_format import SERIALIZER, CompactJob

#: The installed RQ's (major, minor) version, and its major: the one switch between RQ 2 and 3.
RQ_VERSION: tuple[int, int] = (int(rq.__version__.split(".")[0]), int(rq.__version__.split(".")[1]))
RQ_MAJOR: int = RQ_VERSION[0]
#: Whether RQ 3's features are there: concurrency limits, execution stops, unique scheduled jobs.
HAS_RQ3: bool = RQ_MAJOR >= 3
#: The RQ a feature of RQ 3 needs, as said to a client that asks for one on RQ 2.
RQ3_REQUIRED = "RQ >= 3.0"

#: RQ 2's attribute holding a running job's working time (RQ 3 passes it to `get_heartbeat_ttl`).
RQ2_WORKING_TIME = "current_job_working_time"
#: RQ 3's method reading a job's stored status without caching it (`Job._remove_from_registries`).
RQ3_FETCH_STATUS = "_fetch_status"

#: The private RQ members this module relies on (owner, name), and nothing else does.
PRIVATE_NAMES = frozenset(
    {
        ("Job", "_handle_success"),
        ("Job", "_handle_failure"),
        ("Job", "_exc_info"),
        ("Job", "_dependency_ids"),
        ("Queue", "_enqueue_job"),
        ("Worker", "_shutdown_requested_date"),
        ("Worker", "_set_ip_address"),
        ("RQScheduler", "_process"),
        # RQ 3 passes the working time to `get_heartbeat_ttl` instead.
        *([] if HAS_RQ3 else [("Worker", RQ2_WORKING_TIME)]),
        # RQ 3 reads the stored status again (a round trip) when it removes a job from registries.
        *([("Job", RQ3_FETCH_STATUS)] if HAS_RQ3 else []),
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
    """RQ's worker, asking `heartbeat_ttl` for the TTL of a running job's heartbeat.

    One signature for both majors: RQ 3 calls `get_heartbeat_ttl(job, working_time=...)` (or
    `(job)` as a job starts), RQ 2 always `(job)`, keeping the working time on the worker."""

    def _set_ip_address(self, connection: Redis) -> None:
        """RQ's, but "unknown" when the server's CLIENT INFO reply cannot be parsed: RQ 3 asks for
        it, and redis-py fails (ValueError) on the reply of fakeredis's TCP server, the in-memory
        Redis of `gql-jobs dev`, so the worker died at start there. RQ 2 reads CLIENT LIST."""
        try:
            super()._set_ip_address(connection)
        except ValueError:
            self.ip_address = "unknown"

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        if not HAS_RQ3:  # read by name: RQ 3's type of `Worker` has no such attribute
            working_time = float(vars(self)[RQ2_WORKING_TIME])
        return self.heartbeat_ttl(job, working_time)

    def heartbeat_ttl(self, job: Job, working_time: float) -> int:
        """How long the heartbeat of `job`, running for `working_time` seconds, stays valid."""
        rqs_own: Any = Worker.get_heartbeat_ttl  # its signature is the installed major's
        return int(rqs_own(self, job, working_time) if HAS_RQ3 else rqs_own(self, job))


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

    def _fetch_status(self) -> JobStatus:
        """RQ 3's uncached read of the stored status (`_remove_from_registries`, per job in
        `cancel` and `delete`): the snapshot is that status until our MULTI/EXEC."""
        if self.snapshot is not None:
            return self.snapshot
        fetch: Any = getattr(super(), RQ3_FETCH_STATUS)
        return JobStatus(fetch())

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


# -- what RQ 3 adds -------------------------------------------------------------------------------


def _rq3(module: str) -> Any:
    """A module only RQ 3 has (imported by name so that RQ 2 never reaches the import)."""
    return importlib.import_module(f"rq.{module}")


def key_prefix() -> str:
    """RQ's key prefix: `rq`, or RQ 3's `RQ_KEY_PREFIX` (read by RQ from the environment)."""
    return str(_rq3("defaults").RQ_KEY_PREFIX) if HAS_RQ3 else "rq"


def ready_registry_template() -> str | None:
    """RQ 3's `rq:ready:<queue>` registry (dependents whose dependencies are met, about to be
    enqueued), as a `.format(queue)` template; `None` on RQ 2, which has none."""
    return str(_rq3("registry").ReadyJobRegistry.key_template) if HAS_RQ3 else None


def rate_limit(key: str, concurrency: int) -> Any:
    """RQ 3's `RateLimit`: at most `concurrency` jobs of `key` queued or running at once."""
    if not HAS_RQ3:
        raise RuntimeError(f"concurrency limits need {RQ3_REQUIRED}")  # the service checks first
    return _rq3("rate_limit").RateLimit(key, concurrency)


def rate_limited_keys(connection: Redis) -> list[tuple[str, str]]:
    """Each concurrency-limit key RQ knows, with the key of its set of jobs held back (RATE_LIMITED,
    waiting for a slot). Empty on RQ 2."""
    if not HAS_RQ3:
        return []
    registry_class = _rq3("rate_limit").RateLimitRegistry
    return [
        (registry.key, registry.rate_limited_key) for registry in registry_class.all(connection=connection)
    ]


def has_concurrency_limit(job: Job) -> bool:
    """Whether the job is held to an RQ 3 concurrency limit (`RateLimit`; there are none on RQ 2)."""
    return HAS_RQ3 and bool(getattr(job, "has_rate_limit", False))


def worker_executions_key(worker_name: str) -> str | None:
    """RQ 3's index of a worker's live executions (its current job is there, no longer on the
    worker's hash as `current_job`); None on RQ 2."""
    if not HAS_RQ3:
        return None
    template: str = _rq3("executions").WORKER_EXECUTIONS_KEY_TEMPLATE
    return template.format(worker_name)


def job_id_of_execution(member: bytes) -> str:
    """The job id in a member of a worker's executions index (`<job id>:<execution id>`)."""
    job_id, _ = _rq3("executions").parse_composite_key(member.decode())
    return str(job_id)


def stage_stop(pipe: Pipeline, job: Job) -> bool:
    """Stage RQ's stop command for a running `job` in `pipe` (a bulk action's transaction); False
    when no worker runs it (any more). As `stop_running_job`: per live execution on RQ 3 (their
    list is read now, on the job's connection), per job on RQ 2."""
    if not HAS_RQ3:
        if not job.worker_name:
            return False
        send_command(pipe, job.worker_name, "stop-job", job_id=job.id)
        return True
    staged = False
    for execution in job.get_executions():
        if execution.worker_name:
            send_command(
                pipe, execution.worker_name, "stop-execution", job_id=job.id, execution_id=execution.id
            )
            staged = True
    return staged


def stop_running_job(connection: Redis, job_id: str) -> None:
    """Ask the worker running the job to kill its work horse; `InvalidJobOperation` if none runs it.

    RQ 3 stops *executions*: the stop goes to the worker of each live execution of the job
    (`send_stop_execution_command`), so a job re-run by another worker after its first one was
    lost is stopped where it really runs. RQ 2 sends the job-level command to the worker named on
    the job hash (`send_stop_job_command`)."""
    if not HAS_RQ3:
        send_stop_job_command(connection, job_id, serializer=SERIALIZER)
        return
    send_stop_execution_command = _rq3("command").send_stop_execution_command
    job = Job.fetch(job_id, connection=connection, serializer=SERIALIZER)
    executions = job.get_executions()
    if not executions:
        raise InvalidJobOperation("Job is not currently executing")
    for execution in executions:
        send_stop_execution_command(connection, job_id, execution.id)
