"""The job history of the `stats` query: counts and run times per minute, queue and task.

Storage: one hash per minute, `gql_jobs:stats:<minutes since the epoch>`, with fields
`<queue>|<task>|<kind>`, where kind is `submitted`, `finished`, `failed`, `us` (the finished jobs'
summed run time, in microseconds) or `rt<i>` (how many finished jobs ran within bucket `i` of a
fixed, log-spaced histogram: `BUCKET_BOUNDS`). Every write is a few commands added to a pipeline
the caller sends anyway (the API's submission MULTI/EXEC, the worker's own pipeline at a job's
end: `count_submitted`, `count_outcome`), with an EXPIRE of `STATS_TTL`, so the history costs no
round trip and forgets itself after a day.

Bounds: queues are the API's (`max_queues` or the allow-list) and, in workers, the queues a worker
was told to work; tasks are declared ones (`tasks.declared_name`; anything else is `(other)`), so a
minute's hash holds at most queues x tasks x (4 + `len(BUCKET_BOUNDS)`) fields, and never more
than 4 per job that minute (the README's "Keys gql-jobs writes" has the bytes).

Reads (`read_window`): every minute hash of a window in one pipelined HGETALL (at most
`STATS_MAX_WINDOW`; HMGET of one pair's fields when both queue and task are given), merged per
step in Python: the cost grows with the window and the fields written in it, never with the
number of jobs. Percentiles are read off the merged histogram: the
upper bound of the bucket that holds the rank, so at most `BUCKET_RATIO` times the true value.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.client import Pipeline

from gql_jobs.constants import STATS_PREFIX, STATS_TTL
from gql_jobs.domain import JobStats, RunTimeSummary, StatsBucket
from gql_jobs.store.script_batch import ScriptBatch

#: Buckets per decade of the run-time histogram; neighbouring bounds are `BUCKET_RATIO` apart.
BUCKETS_PER_DECADE = 8
BUCKET_RATIO = 10 ** (1 / BUCKETS_PER_DECADE)  # ~1.33
#: The first bucket holds run times up to 1 ms; the last, everything above ~11.6 days.
SMALLEST_BOUND = 0.001
BUCKET_BOUNDS: tuple[float, ...] = tuple(SMALLEST_BOUND * 10 ** (i / BUCKETS_PER_DECADE) for i in range(73))
#: The kinds of field kept per queue and task.
SUBMITTED, FINISHED, FAILED, RUN_TIME_SUM = "submitted", "finished", "failed", "us"
RUN_TIME_BUCKET = "rt"
#: Outcomes a worker reports (`worker.job.EventedJob`) that count as failed: RQ keeps both
#: in the failed registry. Retries are not outcomes: the job runs again.
FAILED_OUTCOMES = frozenset({"failed", "stopped"})

AnyPipeline = Pipeline | AsyncPipeline


def minute_of(timestamp: float) -> int:
    """The minute (since the epoch) a moment falls in."""
    return int(timestamp // 60)


def key(minute: int) -> str:
    return f"{STATS_PREFIX}{minute}"


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a run time: the first whose bound it does not exceed."""
    if seconds <= SMALLEST_BOUND:
        return 0
    index = math.ceil(BUCKETS_PER_DECADE * math.log10(seconds / SMALLEST_BOUND) - 1e-9)
    return min(index, len(BUCKET_BOUNDS) - 1)


def count_submitted(pipe: AnyPipeline | ScriptBatch, jobs: Mapping[tuple[str, str], int], at: float) -> None:
    """Stage the submissions of a batch, `{(queue, task): how many}`, on the caller's pipeline (or
    write script)."""
    if not jobs:
        return
    name = key(minute_of(at))
    for (queue, task), count in jobs.items():
        pipe.hincrby(name, f"{queue}|{task}|{SUBMITTED}", count)
    pipe.expire(name, STATS_TTL)


def count_outcome(
    pipe: AnyPipeline, queue: str, task: str, outcome: str, seconds: float | None, at: float
) -> None:
    """Stage one job's end on the worker's pipeline: finished (with its run time) or failed.
    Other outcomes (a retry) are not counted."""
    if outcome == "finished":
        kind = FINISHED
    elif outcome in FAILED_OUTCOMES:
        kind = FAILED
    else:
        return
    name = key(minute_of(at))
    prefix = f"{queue}|{task}|"
    pipe.hincrby(name, prefix + kind, 1)
    if kind == FINISHED and seconds is not None:
        pipe.hincrby(name, f"{prefix}{RUN_TIME_BUCKET}{bucket_of(seconds)}", 1)
        pipe.hincrby(name, prefix + RUN_TIME_SUM, round(seconds * 1_000_000))
    pipe.expire(name, STATS_TTL)


def fields_of(queue: str, task: str) -> list[str]:
    """Every field one queue and task may have in a minute's hash."""
    kinds = [SUBMITTED, FINISHED, FAILED, RUN_TIME_SUM]
    kinds += [f"{RUN_TIME_BUCKET}{index}" for index in range(len(BUCKET_BOUNDS))]
    return [f"{queue}|{task}|{kind}" for kind in kinds]


def read_window(
    connection: Redis, first_minute: int, minutes: int, queue: str | None = None, task: str | None = None
) -> list[dict[bytes, bytes]]:
    """Every minute hash from `first_minute` on (`minutes` of them), in one round trip: whole, or
    only the fields of one queue and task when both are given (a bounded read however many
    other queues and tasks were busy)."""
    wanted = fields_of(queue, task) if queue is not None and task is not None else None
    with connection.pipeline(transaction=False) as pipe:
        for minute in range(first_minute, first_minute + minutes):
            if wanted is None:
                pipe.hgetall(key(minute))
            else:
                pipe.hmget(key(minute), wanted)
        replies: list[Any] = pipe.execute()
    if wanted is None:
        return replies
    names = [name.encode() for name in wanted]
    return [{n: v for n, v in zip(names, values, strict=True) if v is not None} for values in replies]


@dataclass
class Tally:
    """Counts merged over some minutes (for one step, or the whole window)."""

    submitted: int = 0
    finished: int = 0
    failed: int = 0
    run_time_us: int = 0
    histogram: Counter[int] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.submitted += other.submitted
        self.finished += other.finished
        self.failed += other.failed
        self.run_time_us += other.run_time_us
        self.histogram.update(other.histogram)

    def bucket(self, start_minute: int, minutes: int) -> StatsBucket:
        return StatsBucket(
            start=datetime.fromtimestamp(start_minute * 60, UTC),
            minutes=minutes,
            submitted=self.submitted,
            finished=self.finished,
            failed=self.failed,
            run_time=self.run_time(),
        )

    def run_time(self) -> RunTimeSummary:
        count = sum(self.histogram.values())
        if not count:
            return RunTimeSummary(0, None, None, None, None, None)
        return RunTimeSummary(
            count=count,
            p50=self.percentile(0.5, count),
            p90=self.percentile(0.9, count),
            p99=self.percentile(0.99, count),
            max=BUCKET_BOUNDS[max(self.histogram)],
            mean=self.run_time_us / count / 1_000_000,
        )

    def percentile(self, quantile: float, count: int) -> float:
        """The bound of the bucket holding the job of rank ceil(quantile x count)."""
        rank = max(1, math.ceil(quantile * count))
        seen = 0
        for index in sorted(self.histogram):
            seen += self.histogram[index]
            if seen >= rank:
                return BUCKET_BOUNDS[index]
        return BUCKET_BOUNDS[max(self.histogram)]  # not reached: the counts add up to `count`


def tally(fields: Mapping[bytes, bytes], queue: str | None, task: str | None) -> Tally:
    """One minute's counts, over the fields of `queue` and `task` (every one when `None`)."""
    found = Tally()
    for raw_name, raw_value in fields.items():
        name_queue, _, rest = raw_name.decode().rpartition("|")  # a queue may hold "|"; the rest do not
        name_queue, _, name_task = name_queue.rpartition("|")
        if (queue is not None and name_queue != queue) or (task is not None and name_task != task):
            continue
        value = int(raw_value)
        if rest == SUBMITTED:
            found.submitted += value
        elif rest == FINISHED:
            found.finished += value
        elif rest == FAILED:
            found.failed += value
        elif rest == RUN_TIME_SUM:
            found.run_time_us += value
        elif rest.startswith(RUN_TIME_BUCKET) and rest[len(RUN_TIME_BUCKET) :].isdigit():
            index = int(rest[len(RUN_TIME_BUCKET) :])
            if index < len(BUCKET_BOUNDS):
                found.histogram[index] += value
    return found


def merge(
    hashes: Sequence[Mapping[bytes, bytes]],
    first_minute: int,
    step: int,
    queue: str | None = None,
    task: str | None = None,
) -> tuple[list[StatsBucket], StatsBucket]:
    """The minute hashes of a window (oldest first, from `first_minute`) as buckets of `step`
    minutes, and the whole window's totals."""
    buckets: list[StatsBucket] = []
    totals = Tally()
    for offset in range(0, len(hashes), step):
        part = Tally()
        for fields in hashes[offset : offset + step]:
            part.add(tally(fields, queue, task))
        buckets.append(part.bucket(first_minute + offset, len(hashes[offset : offset + step])))
        totals.add(part)
    return buckets, totals.bucket(first_minute, len(hashes))


def history(
    connection: Redis, now: float, window: int, step: int, queue: str | None, task: str | None
) -> JobStats:
    """The last `window` minutes up to `now`'s (included), in buckets of `step` minutes (`window`
    is a multiple of `step`): one round trip, on a store thread."""
    first_minute = minute_of(now) - window + 1
    hashes = read_window(connection, first_minute, window, queue, task)
    buckets, totals = merge(hashes, first_minute, step, queue, task)
    return JobStats(window=window, step=step, queue=queue, task=task, buckets=buckets, totals=totals)
