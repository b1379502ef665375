"""`EventedJob`: the job class our workers run, publishing job events, outcome metrics and the
job history (`store.stats`).

Its saves are compact like every job we write (`store.rq_format.CompactJob`); the hooks after
RQ's success and failure handlers come from `store.rq_adapter.HookedJob`, the one place that
overrides RQ's private methods.
"""

from __future__ import annotations

import time

from redis.client import Pipeline
from rq import Queue

from gql_jobs.constants import OTHER
from gql_jobs.store import events, stats
from gql_jobs.store.figures import record_job_outcome
from gql_jobs.store.rq_adapter import HookedJob
from gql_jobs.tasks import declared_name


class EventedJob(HookedJob):
    """RQ's job, publishing a job event inside the pipeline RQ already sends at each transition.

    Hooking the job (which RQ hands the pipeline) rather than the worker's methods keeps the cost
    of events at zero extra round trips: the drain rate of `gql-jobs worker` stays RQ's own.
    """

    def prepare_for_execution(self, worker_name: str, pipeline: Pipeline) -> None:
        super().prepare_for_execution(worker_name, pipeline)
        events.publish(pipeline, events.of_rq_job(self))  # started

    def after_success(self, pipeline: Pipeline) -> None:
        self._report(pipeline, "finished")

    def after_failure(self, pipeline: Pipeline) -> None:
        self._report(pipeline, self.get_status(refresh=False).value)  # failed or stopped

    def retry(self, queue: Queue, pipeline: Pipeline) -> None:
        super().retry(queue, pipeline)
        self._report(pipeline, "retried", retried=True)  # queued or scheduled again

    def _report(self, pipeline: Pipeline, outcome: str, *, retried: bool = False) -> None:
        """The event, the outcome metrics and the job history (`store.stats`, in the minute the
        job ended) ride on RQ's own pipeline."""
        event = events.of_rq_job(self, retried=retried)
        events.publish(pipeline, event)
        ran = (self.ended_at - self.started_at).total_seconds() if self.started_at and self.ended_at else None
        task = declared_name(event.task, self.func_name)
        record_job_outcome(pipeline, task, outcome, ran)
        ended = self.ended_at.timestamp() if self.ended_at else time.time()  # none: swept as abandoned
        stats.count_outcome(pipeline, self.origin, task or OTHER, outcome, ran, ended)
