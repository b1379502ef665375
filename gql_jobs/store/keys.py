"""RQ's key names, taken from RQ's own classes (never restated), and the keys built from them.

Our own keys (`gql_jobs:*`) are spelled in `gql_jobs.constants`; RQ's are RQ's to name, so they
are read off its classes here, and a rename in RQ reaches every reader at once.
"""

from __future__ import annotations

from rq.intermediate_queue import IntermediateQueue
from rq.job import Job
from rq.queue import Queue
from rq.registry import (
    CanceledJobRegistry,
    DeferredJobRegistry,
    FailedJobRegistry,
    FinishedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)
from rq.results import Result
from rq.worker import Worker

from gql_jobs.domain import JobStatus

#: `rq:job:<id>`: a job's hash.
JOB_KEY_PREFIX: str = Job.redis_job_namespace_prefix
#: `rq:queue:<name>`: a queue's list of job ids.
QUEUE_KEY_PREFIX: str = Queue.redis_queue_namespace_prefix
#: `rq:queues`: the set of every queue's key.
QUEUES_SET: str = Queue.redis_queues_keys
#: `rq:worker:<name>`: a worker's hash.
WORKER_KEY_PREFIX: str = Worker.redis_worker_namespace_prefix
#: `rq:workers`: the set of every worker's key.
WORKERS_SET: str = Worker.redis_workers_keys
#: The key template (`.format(queue)`) of each registry, by the status it holds.
REGISTRY_KEY_TEMPLATES: dict[JobStatus, str] = {
    JobStatus.STARTED: StartedJobRegistry.key_template,
    JobStatus.FINISHED: FinishedJobRegistry.key_template,
    JobStatus.FAILED: FailedJobRegistry.key_template,
    JobStatus.DEFERRED: DeferredJobRegistry.key_template,
    JobStatus.SCHEDULED: ScheduledJobRegistry.key_template,
    JobStatus.CANCELED: CanceledJobRegistry.key_template,
}


def job_key(job_id: str) -> str:
    return JOB_KEY_PREFIX + job_id


def queue_key(queue: str) -> str:
    return QUEUE_KEY_PREFIX + queue


def intermediate_key(queue: str) -> str:
    """RQ's list of jobs a worker has taken off a queue but not yet started (still QUEUED to RQ)."""
    return str(IntermediateQueue.get_intermediate_queue_key(queue_key(queue)))


def registry_key(status: JobStatus, queue: str) -> str:
    return REGISTRY_KEY_TEMPLATES[status].format(queue)


def results_key(job_id: str) -> str:
    """RQ's stream of results of one job."""
    return str(Result.get_key(job_id))  # type: ignore[no-untyped-call]
