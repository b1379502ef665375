"""Run RQ workers with gql-jobs' settings, serializer and task modules, and keep them running.

A plain `rq worker -S json -u $REDIS_URL` runs our jobs just as well (the stored function paths are
importable module attributes); this entry point adds the settings, fails fast when a task module
cannot be imported, publishes job events (see `EventedJob`), and offers RQ's worker pool. SIGTERM
is RQ's warm shutdown: the current job finishes, then the worker exits.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Sequence

from redis.exceptions import RedisError
from rq import Worker
from rq.exceptions import StopRequested
from rq.worker_pool import WorkerPool

from gql_jobs import tracing
from gql_jobs.constants import MAX_RESTART_PAUSE
from gql_jobs.settings import Settings
from gql_jobs.store import rq_adapter
from gql_jobs.store.connections import worker_redis
from gql_jobs.store.rq_format import SERIALIZER
from gql_jobs.tasks import TaskRegistry, task_modules
from gql_jobs.worker.job import EventedJob
from gql_jobs.worker.worker import stop_scheduler_process, worker_class_for

log = logging.getLogger(__name__)


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
    tracing.start(tracing.WORKER_SERVICE)  # before forking: pool workers and work horses inherit it
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
            if rq_adapter.shutdown_requested(worker):  # SIGTERM/SIGINT
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
    stop_scheduler_process(worker)
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
