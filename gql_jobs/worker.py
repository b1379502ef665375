"""Run RQ workers with gql-jobs' settings, serializer and task modules.

A plain `rq worker -S json -u $REDIS_URL` runs our jobs just as well (the stored function paths are
importable module attributes); this entry point adds the settings, fails fast when a task module
cannot be imported, and offers RQ's worker pool. SIGTERM is RQ's warm shutdown: the current job
finishes, then the worker exits.
"""

from __future__ import annotations

from collections.abc import Sequence

from rq import Worker
from rq.worker_pool import WorkerPool

from gql_jobs.connections import worker_redis
from gql_jobs.settings import Settings
from gql_jobs.snapshots import SERIALIZER
from gql_jobs.tasks import TaskRegistry, task_modules


def run_worker(
    settings: Settings,
    queues: Sequence[str] = (),
    *,
    burst: bool = False,
    pool_size: int | None = None,
    with_scheduler: bool = True,
    logging_level: str = "INFO",
) -> bool:
    """Work the given queues (in priority order; the default queue when none). True if clean exit."""
    TaskRegistry.from_modules(task_modules(settings.tasks, settings.builtin_tasks))
    names = list(queues) or [settings.queue_name]
    connection = worker_redis(settings)
    if pool_size:
        pool = WorkerPool(names, connection=connection, num_workers=pool_size, serializer=SERIALIZER)
        pool.start(burst=burst, logging_level=logging_level)
        return True
    worker = Worker(
        names,
        connection=connection,
        serializer=SERIALIZER,
        default_result_ttl=settings.result_ttl,
        maintenance_interval=settings.worker_maintenance_interval,
    )
    return bool(worker.work(burst=burst, with_scheduler=with_scheduler, logging_level=logging_level))
