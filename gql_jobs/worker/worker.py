"""`GqlJobsWorker`: RQ's fork worker with our heartbeat and maintenance timing, and short stops."""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from rq import Queue, Worker
from rq.job import Job

from gql_jobs.constants import TEARDOWN_WAIT
from gql_jobs.settings import Settings
from gql_jobs.store import rq_adapter
from gql_jobs.store.rq_adapter import HeartbeatWorker
from gql_jobs.store.rq_format import SERIALIZER
from gql_jobs.store.sentinel import redis_deadline
from gql_jobs.worker.job import EventedJob

log = logging.getLogger(__name__)


class GqlJobsWorker(HeartbeatWorker):
    """RQ's fork worker with our heartbeat and maintenance timing (see `worker_class_for`).

    RQ declares a running job abandoned when its heartbeat is `job_monitoring_interval + 60` s
    late, and sweeps for such jobs every `maintenance_interval` (600 s by default). A SIGKILLed
    worker's job is therefore failed (or retried, per its retry policy) by another worker within
    heartbeat interval + heartbeat grace + maintenance interval: 10 + 60 + 60 = 130 s with our
    defaults, all three being settings.
    """

    heartbeat_grace = 60
    sweep_interval = 60
    heartbeat_interval = 10

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("job_class", EventedJob)
        kwargs.setdefault("serializer", SERIALIZER)
        super().__init__(*args, **kwargs)
        self.maintenance_interval = self.sweep_interval
        self.job_monitoring_interval = self.heartbeat_interval

    @property
    def dequeue_timeout(self) -> int:
        """Wake from an idle BLPOP at least every sweep interval: RQ sweeps only between waits."""
        return max(1, min(self.worker_ttl - 15, self.sweep_interval))

    def heartbeat_ttl(self, job: Job, working_time: float) -> int:
        interval = self.job_monitoring_interval
        if job.timeout and job.timeout > 0:
            interval = int(min(job.timeout - working_time, interval))
        return int(interval) + self.heartbeat_grace

    def handle_job_failure(self, job: Job, queue: Queue, *args: Any, **kwargs: Any) -> None:
        """RQ's, telling our job why it failed first: if RQ retries it, the attempt records that."""
        exc_string = kwargs.get("exc_string", args[1] if len(args) > 1 else "")
        if isinstance(job, EventedJob):
            job.failure_text = exc_string or None
        super().handle_job_failure(job, queue, *args, **kwargs)

    def teardown(self) -> None:
        """RQ's teardown, waiting only briefly for a Redis that is away: a warm shutdown stays short."""
        with redis_deadline(TEARDOWN_WAIT):
            super().teardown()  # type: ignore[no-untyped-call]

    def stop_scheduler(self) -> None:
        """Stop the scheduler process like RQ, but kill it if it does not stop in time.

        RQ joins it without a timeout; a scheduler waiting for a Redis master would hold up the
        shutdown. Its lock then expires by itself (RQ re-acquires expired locks).
        """
        stop_scheduler_process(self)


def worker_class_for(settings: Settings) -> type[GqlJobsWorker]:
    """A worker class carrying the settings (RQ's pool builds workers from a class alone)."""
    return type(
        "ConfiguredGqlJobsWorker",
        (GqlJobsWorker,),
        {
            "heartbeat_grace": settings.worker_heartbeat_grace,
            "sweep_interval": settings.worker_maintenance_interval,
            "heartbeat_interval": settings.worker_heartbeat_interval,
        },
    )


def stop_scheduler_process(worker: Worker) -> None:
    """Stop (or just reap, if it already died) the worker's scheduler process, waiting briefly."""
    process = rq_adapter.scheduler_process(worker)
    if process is None or not process.pid or not process.is_alive():  # `is_alive` reaps a dead one
        return
    os.kill(process.pid, signal.SIGTERM)
    process.join(TEARDOWN_WAIT)
    if process.is_alive():
        log.warning("scheduler process %s did not stop in time; killing it", process.pid)
        process.kill()
        process.join()
