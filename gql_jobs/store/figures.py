"""The job figures kept in Redis for `/metrics`: written by workers, read at scrape time.

Two small hashes (`JOB_OUTCOMES_KEY`, `JOB_DURATIONS_KEY`) that the worker updates in the pipeline
RQ already sends, and expire `METRICS_TTL` after the last job outcome (see `gql_jobs.metrics`,
which turns what `read` returns into metric families).
"""

from __future__ import annotations

from redis import Redis
from redis.client import Pipeline

from gql_jobs.constants import DURATION_BUCKETS, JOB_DURATIONS_KEY, JOB_OUTCOMES_KEY, METRICS_TTL, OTHER
from gql_jobs.metrics import JobFigures
from gql_jobs.store import inventory


def record_job_outcome(pipe: Pipeline, task: str | None, outcome: str, seconds: float | None) -> None:
    """Called by the worker inside its own pipeline: counts and a duration histogram, per task.

    `task` is a task declared in the worker (`tasks.declared_name`), or `None` for any other job:
    the hashes hold a field per task and outcome, so what a stored job says must not name one."""
    label = f"{task or OTHER}|{outcome}"
    pipe.hincrby(JOB_OUTCOMES_KEY, label, 1)
    pipe.expire(JOB_OUTCOMES_KEY, METRICS_TTL)
    if seconds is not None:
        bucket = next((str(b) for b in DURATION_BUCKETS if seconds <= b), "+Inf")
        pipe.hincrby(JOB_DURATIONS_KEY, f"{label}|{bucket}", 1)
        pipe.hincrbyfloat(JOB_DURATIONS_KEY, f"{label}|sum", seconds)
        pipe.expire(JOB_DURATIONS_KEY, METRICS_TTL)


def read(connection: Redis) -> JobFigures:
    """Job outcomes and durations (one round trip), queue depths (two more), and workers' last
    heartbeats (two more)."""
    with connection.pipeline(transaction=False) as pipe:
        pipe.hgetall(JOB_OUTCOMES_KEY)
        pipe.hgetall(JOB_DURATIONS_KEY)
        outcomes, durations = pipe.execute()
    names = inventory.queue_names(connection)
    depths = inventory.status_counts(connection, names)
    return JobFigures(outcomes, durations, depths, tuple(inventory.heartbeats(connection)))
