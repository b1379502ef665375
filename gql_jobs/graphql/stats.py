"""The `stats` query's types: job history per time bucket, built from `domain.JobStats`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, TypeAlias

import strawberry

from gql_jobs.domain import JobStats as DomainStats
from gql_jobs.domain import RunTimeSummary, StatsBucket
from gql_jobs.graphql.errors import InvalidInputError, ServiceUnavailableError, UnauthorizedError


@strawberry.type(
    description=(
        "Run times (seconds) of the jobs that finished; failed ones are not timed. Percentiles and "
        "max are read off a histogram whose bucket bounds are 10^(1/8) (~1.33x) apart, from 1 ms to "
        "10^6 s: each is the upper bound of the bucket holding that rank, so at most 1.33x the true "
        "value (and 0.001 for anything up to 1 ms). All null when no job finished."
    )
)
class RunTimeStats:
    count: int = strawberry.field(description="Finished jobs timed.")
    p50: float | None = strawberry.field(description="Median run time (bucket bound).")
    p90: float | None = strawberry.field(description="90th percentile run time (bucket bound).")
    p99: float | None = strawberry.field(description="99th percentile run time (bucket bound).")
    max: float | None = strawberry.field(description="Longest run time (bucket bound).")
    mean: float | None = strawberry.field(description="Mean run time (exact, not from the histogram).")

    @classmethod
    def of(cls, summary: RunTimeSummary) -> RunTimeStats:
        return cls(
            count=summary.count,
            p50=summary.p50,
            p90=summary.p90,
            p99=summary.p99,
            max=summary.max,
            mean=summary.mean,
        )


@strawberry.type(description="What happened to jobs in one time bucket.")
class JobStatsBucket:
    start: datetime = strawberry.field(description="The bucket's first minute (UTC).")
    minutes: int = strawberry.field(description="Its length in minutes (the step; the window for totals).")
    submitted: int = strawberry.field(description="Jobs accepted by the API in it (deduplicated ones not).")
    finished: int = strawberry.field(description="Jobs that ended successfully in it.")
    failed: int = strawberry.field(
        description="Jobs that failed (or were stopped) in it, after their last retry (retries do not count)."
    )
    run_time: RunTimeStats = strawberry.field(description="Run times of the jobs that finished in it.")

    @classmethod
    def of(cls, bucket: StatsBucket) -> JobStatsBucket:
        return cls(
            start=bucket.start,
            minutes=bucket.minutes,
            submitted=bucket.submitted,
            finished=bucket.finished,
            failed=bucket.failed,
            run_time=RunTimeStats.of(bucket.run_time),
        )


@strawberry.type(
    description=(
        "Job history over a window of minutes ending with the current one (unfinished), in buckets "
        "of `step` minutes, oldest first, from per-minute counters kept for 25 hours."
    )
)
class JobStats:
    window: int = strawberry.field(description="Minutes covered.")
    step: int = strawberry.field(description="Minutes per bucket.")
    queue: str | None = strawberry.field(description="The queue counted; null: every queue.")
    task: str | None = strawberry.field(
        description="The task counted; null: every task (jobs of undeclared tasks count as `(other)`)."
    )
    buckets: list[JobStatsBucket] = strawberry.field(description="window / step buckets, oldest first.")
    totals: JobStatsBucket = strawberry.field(description="The whole window as one bucket.")

    @classmethod
    def of(cls, found: DomainStats) -> JobStats:
        return cls(
            window=found.window,
            step=found.step,
            queue=found.queue,
            task=found.task,
            buckets=[JobStatsBucket.of(bucket) for bucket in found.buckets],
            totals=JobStatsBucket.of(found.totals),
        )


StatsResult: TypeAlias = Annotated[
    JobStats | InvalidInputError | UnauthorizedError | ServiceUnavailableError,
    strawberry.union(
        "StatsResult",
        description=(
            "The job history; or a window or step out of range; or a key that is not admin's (the "
            "history counts every tenant's jobs, so only admins may read it); or Redis unavailable."
        ),
    ),
]
