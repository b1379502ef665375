"""`EventedJob`: the job class our workers run, publishing job events, outcome metrics and the
job history (`store.stats`).

Its saves are compact like every job we write (`store.rq_format.CompactJob`); the hooks after
RQ's success and failure handlers come from `store.rq_adapter.HookedJob`, the one place that
overrides RQ's private methods.
"""

from __future__ import annotations

import time
import traceback

from redis.client import Pipeline
from rq import Queue
from rq.results import Result

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

    #: Why the run now being retried failed, as the worker told it (see `GqlJobsWorker`).
    failure_text: str | None = None

    def retry(self, queue: Queue, pipeline: Pipeline) -> None:
        """RQ's retry, plus the attempt's result: RQ records none for a run it retries, so the
        job's attempts would not say why each try failed (`store.attempts`)."""
        ended = self.ended_at
        super().retry(queue, pipeline)
        Result.create(
            self,
            Result.Type.RETRIED,
            self.failure_ttl,
            exc_string=self.failure_text or _current_traceback(),
            worker_name=self.worker_name or "",
            pipeline=pipeline,
            execution_started_at=self.started_at,
            execution_ended_at=ended,
        )
        self.failure_text = None
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


def _current_traceback() -> str | None:
    """The traceback of the exception being handled (RQ retries a job inside its `except`)."""
    text = traceback.format_exc()
    return None if text.strip() == "NoneType: None" else text
