"""Run RQ workers with gql-jobs' settings, serializer and task modules.

A plain `rq worker -S json -u $REDIS_URL` runs our jobs just as well (the stored function paths are
importable module attributes); this entry point adds the settings, fails fast when a task module
cannot be imported, publishes job events (see `EventedJob`), and offers RQ's worker pool. SIGTERM
is RQ's warm shutdown: the current job finishes, then the worker exits.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any

from redis.client import Pipeline
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.exceptions import StopRequested
from rq.job import Job
from rq.worker_pool import WorkerPool

from gql_jobs.metrics import record_job_outcome
from gql_jobs.settings import Settings
from gql_jobs.store import events, rq_format
from gql_jobs.store.connections import worker_redis
from gql_jobs.store.reads import SERIALIZER
from gql_jobs.store.sentinel import redis_deadline
from gql_jobs.tasks import TaskRegistry, declared_name, task_modules

log = logging.getLogger(__name__)

#: Longest pause between restarts of a worker that keeps losing Redis.
MAX_RESTART_PAUSE = 30.0

#: A stopping worker's last writes (its death, its scheduler's locks) wait this long at most for
#: Redis (with Sentinel, a worker otherwise waits up to `sentinel_failover_wait` for a master).
TEARDOWN_WAIT = 3.0


class EventedJob(rq_format.CompactJob):
    """RQ's job, publishing a job event inside the pipeline RQ already sends at each transition.

    Hooking the job (which RQ hands the pipeline) rather than the worker's methods keeps the cost
    of events at zero extra round trips: the drain rate of `gql-jobs worker` stays RQ's own.
    """

    def prepare_for_execution(self, worker_name: str, pipeline: Pipeline) -> None:
        super().prepare_for_execution(worker_name, pipeline)
        events.publish(pipeline, events.of_rq_job(self))  # started

    def _handle_success(self, result_ttl: int, pipeline: Pipeline, *args: Any, **kwargs: Any) -> None:
        super()._handle_success(result_ttl, pipeline, *args, **kwargs)
        self._report(pipeline, "finished")

    def _handle_failure(self, exc_string: str, pipeline: Pipeline, *args: Any, **kwargs: Any) -> None:
        super()._handle_failure(exc_string, pipeline, *args, **kwargs)
        self._report(pipeline, self.get_status(refresh=False).value)  # failed or stopped

    def retry(self, queue: Queue, pipeline: Pipeline) -> None:
        super().retry(queue, pipeline)
        self._report(pipeline, "retried", retried=True)  # queued or scheduled again

    def _report(self, pipeline: Pipeline, outcome: str, *, retried: bool = False) -> None:
        """The event, and the outcome metrics, ride on RQ's own pipeline."""
        event = events.of_rq_job(self, retried=retried)
        events.publish(pipeline, event)
        ran = (self.ended_at - self.started_at).total_seconds() if self.started_at and self.ended_at else None
        record_job_outcome(pipeline, declared_name(event.task, self.func_name), outcome, ran)


class GqlJobsWorker(Worker):
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

    def get_heartbeat_ttl(self, job: Job) -> int:
        interval = self.job_monitoring_interval
        if job.timeout and job.timeout > 0:
            interval = int(min(job.timeout - self.current_job_working_time, interval))
        return int(interval) + self.heartbeat_grace

    def teardown(self) -> None:
        """RQ's teardown, waiting only briefly for a Redis that is away: a warm shutdown stays short."""
        with redis_deadline(TEARDOWN_WAIT):
            super().teardown()  # type: ignore[no-untyped-call]

    def stop_scheduler(self) -> None:
        """Stop the scheduler process like RQ, but kill it if it does not stop in time.

        RQ joins it without a timeout; a scheduler waiting for a Redis master would hold up the
        shutdown. Its lock then expires by itself (RQ re-acquires expired locks).
        """
        _stop_scheduler(self)


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


def run_worker(
    settings: Settings,
    queues: Sequence[str] = (),
    *,
    burst: bool = False,
    pool_size: int | None = None,
    with_scheduler: bool = True,
    logging_level: str = "INFO",
) -> bool:
    """Work the given queues (in priority order; the default queue when none).

    True when the worker stopped as asked (a signal, or the end of a burst)."""
    TaskRegistry.from_modules(task_modules(settings.tasks, settings.builtin_tasks))
    names = list(queues) or [settings.queue_name]
    worker_class = worker_class_for(settings)
    if pool_size:
        pool = WorkerPool(
            names,
            connection=worker_redis(settings),
            num_workers=pool_size,
            serializer=SERIALIZER,
            job_class=EventedJob,
            worker_class=worker_class,
        )
        pool.start(burst=burst, logging_level=logging_level)
        return True
    return _supervise(
        # A fresh client each time: nothing of a connection that lost its server is reused.
        lambda: worker_class(
            names, connection=worker_redis(settings), default_result_ttl=settings.result_ttl
        ),
        burst=burst,
        with_scheduler=with_scheduler,
        logging_level=logging_level,
    )


def _supervise(
    make_worker: Callable[[], Worker], *, burst: bool, with_scheduler: bool, logging_level: str
) -> bool:
    """Run a worker; if it quits without being asked to (RQ quits on an error it does not handle,
    e.g. Redis restarting, or failing over, while a job runs), start a fresh one after a pause.

    The job in hand at that moment is failed or retried by the abandoned-job sweep, as after a
    crash (with Sentinel, a worker first waits out a failover: see `gql_jobs.store.sentinel`). Only a
    stop request (SIGTERM/SIGINT) or the end of a burst ends the process.
    """
    pause = 1.0
    while True:
        worker: Worker | None = None
        failed = False
        try:
            worker = make_worker()  # talks to Redis already (CLIENT SETNAME)
            worker.work(burst=burst, with_scheduler=with_scheduler, logging_level=logging_level)
        except RedisError as exc:  # Redis away at the start, or still away in RQ's teardown
            log.warning("worker %s lost Redis (%s)", worker.name if worker else "(new)", exc)
            failed = True
        except StopRequested:  # SIGTERM/SIGINT before this worker set its own handlers
            if worker is not None:
                _release(worker)
            return True
        if worker is not None:
            _release(worker)
            if worker._shutdown_requested_date is not None:  # set by RQ on SIGTERM/SIGINT
                return True
        if burst:
            return not failed
        name = worker.name if worker else "(not started)"
        log.warning("worker %s quit unexpectedly; starting a new worker in %.0f s", name, pause)
        try:
            time.sleep(pause)
        except StopRequested:  # SIGTERM/SIGINT meanwhile (the last worker's handlers are still set)
            return True
        pause = min(pause * 2, MAX_RESTART_PAUSE)


def _release(worker: Worker) -> None:
    """Let go of a finished worker's processes, pub/sub thread and connections, without a word to
    Redis.

    RQ's teardown unsubscribes and stops the scheduler, but it is skipped when an earlier step
    raised (Redis away), and unsubscribing from an unreachable Redis would only raise again (or wait
    for a master). A worker that quits that way leaves its children to us: a work horse still
    running its job (which the abandoned-job sweep fails or retries, so the horse must not finish it
    too), and a scheduler process that died on the same error. Both are stopped and reaped here, or
    each outage would leave a zombie (or a stray job) behind.
    """
    _stop_horse(worker)
    _stop_scheduler(worker)
    thread = worker.pubsub_thread
    if thread is not None:
        thread.stop()
        thread.join(timeout=1)
        worker.pubsub.close()
    worker.connection.close()


def _stop_horse(worker: Worker) -> None:
    """Kill and reap the work horse of a worker that quit in the middle of a job."""
    if worker.horse_pid:
        log.warning("worker %s quit during a job; killing its work horse %s", worker.name, worker.horse_pid)
        worker.kill_horse(signal.SIGKILL)  # its whole process group; a horse already gone is fine
        worker.wait_for_horse()


def _stop_scheduler(worker: Worker) -> None:
    """Stop (or just reap, if it already died) the worker's scheduler process, waiting briefly."""
    process = worker.scheduler._process if worker.scheduler else None
    if process is None or not process.pid or not process.is_alive():  # `is_alive` reaps a dead one
        return
    os.kill(process.pid, signal.SIGTERM)
    process.join(TEARDOWN_WAIT)
    if process.is_alive():
        log.warning("scheduler process %s did not stop in time; killing it", process.pid)
        process.kill()
        process.join()
