"""Prometheus metrics: per API process (multi-process safe) plus global job figures read from Redis.

Two kinds, deliberately:

* Request metrics and jobs submitted live in each API process, via prometheus-client. Under several
  uvicorn workers set `PROMETHEUS_MULTIPROC_DIR` (a fresh, empty, writable directory shared by the
  processes; `gql-jobs serve` sets one up) and `/metrics` sums every process.
* Job outcomes and durations happen in workers, possibly on other machines. The worker adds them to
  small Redis hashes in the same pipeline RQ already sends (no extra round trip), and `/metrics`
  reads them, with queue depths per status, at scrape time. They are global: every API instance
  reports the same totals, so aggregate them with `max`, not `sum`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from redis import Redis
from redis.client import Pipeline

from gql_jobs import inventory
from gql_jobs.constants import KEY_PREFIX

JOB_OUTCOMES_KEY = KEY_PREFIX + "metrics:job_outcomes"
JOB_DURATIONS_KEY = KEY_PREFIX + "metrics:job_durations"
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

REQUESTS = Counter("gql_jobs_requests_total", "API requests handled.", ["transport", "operation", "outcome"])
REQUEST_SECONDS = Histogram(
    "gql_jobs_request_duration_seconds", "API request latency.", ["transport", "operation"]
)
JOBS_SUBMITTED = Counter("gql_jobs_jobs_submitted_total", "Jobs accepted by this API.", ["task"])


def observe_request(transport: str, operation: str, outcome: str, seconds: float) -> None:
    REQUESTS.labels(transport, operation, outcome).inc()
    REQUEST_SECONDS.labels(transport, operation).observe(seconds)


def count_submitted(tasks: Iterable[str]) -> None:
    for task in tasks:
        JOBS_SUBMITTED.labels(task).inc()


def record_job_outcome(pipe: Pipeline, task: str, outcome: str, seconds: float | None) -> None:
    """Called by the worker inside its own pipeline: counts and a duration histogram, per task."""
    label = f"{task}|{outcome}"
    pipe.hincrby(JOB_OUTCOMES_KEY, label, 1)
    if seconds is not None:
        bucket = next((str(b) for b in DURATION_BUCKETS if seconds <= b), "+Inf")
        pipe.hincrby(JOB_DURATIONS_KEY, f"{label}|{bucket}", 1)
        pipe.hincrbyfloat(JOB_DURATIONS_KEY, f"{label}|sum", seconds)


class RedisFiguresCollector(Collector):
    """Job outcomes, durations and queue depths, read from Redis at scrape time (2 round trips)."""

    def __init__(self, connection: Redis) -> None:
        self.connection = connection

    def collect(self) -> Iterator[Any]:
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                pipe.hgetall(JOB_OUTCOMES_KEY)
                pipe.hgetall(JOB_DURATIONS_KEY)
                outcomes, durations = pipe.execute()
            names = inventory.queue_names(self.connection)
            depths = inventory.status_counts(self.connection, names)
        except Exception:
            up = GaugeMetricFamily("gql_jobs_redis_up", "Whether Redis answered this scrape.")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("gql_jobs_redis_up", "Whether Redis answered this scrape.")
        up.add_metric([], 1)
        yield up
        yield _outcome_family(outcomes)
        yield _duration_family(durations)
        depth = GaugeMetricFamily(
            "gql_jobs_queue_jobs", "Jobs per queue and status.", labels=["queue", "status"]
        )
        for queue, per_status in depths.items():
            for status, count in per_status.items():
                depth.add_metric([queue, status.value], count)
        yield depth


def _outcome_family(raw: dict[bytes, bytes]) -> CounterMetricFamily:
    family = CounterMetricFamily(
        "gql_jobs_job_outcomes", "Jobs ended by workers, by task and outcome.", labels=["task", "outcome"]
    )
    for key, value in raw.items():
        task, _, outcome = key.decode().partition("|")
        family.add_metric([task, outcome], int(value))
    return family


def _duration_family(raw: dict[bytes, bytes]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "gql_jobs_job_duration_seconds", "Job run time in workers.", labels=["task", "outcome"]
    )
    series: dict[tuple[str, str], dict[str, float]] = {}
    for key, value in raw.items():
        task, outcome, field = key.decode().split("|", 2)
        series.setdefault((task, outcome), {})[field] = float(value)
    for (task, outcome), fields in sorted(series.items()):
        cumulative = 0.0
        buckets = []
        for bound in [*(str(b) for b in DURATION_BUCKETS), "+Inf"]:
            cumulative += fields.get(bound, 0.0)
            buckets.append((bound, cumulative))
        family.add_metric([task, outcome], buckets, fields.get("sum", 0.0))
    return family


def render(connection: Redis) -> tuple[bytes, str]:
    """The exposition text of `/metrics`."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for collector in (REQUESTS, REQUEST_SECONDS, JOBS_SUBMITTED):
            registry.register(collector)
    registry.register(RedisFiguresCollector(connection))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started
