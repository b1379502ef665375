"""Prometheus metrics: per API process (multi-process safe) plus global job figures kept in Redis.

Two kinds, deliberately:

* Request metrics and jobs submitted live in each API process, via prometheus-client. Under several
  uvicorn workers set `PROMETHEUS_MULTIPROC_DIR` (a fresh, empty, writable directory shared by the
  processes; `gql-jobs serve` sets one up) and `/metrics` sums every process.
* Job outcomes and durations happen in workers, possibly on other machines. The worker adds them to
  small Redis hashes in the same pipeline RQ already sends (no extra round trip), and `/metrics`
  reads them, with queue depths per status, at scrape time (`gql_jobs.store.figures` reads and
  writes them; this module only makes metric families of them, and speaks no Redis). They are
  global: every API instance reports the same totals, so aggregate them with `max`, not `sum`.

Every label's values are bounded by configuration, never by what clients send (issue #13): tasks
by the task registry, queues by the allow-list or `max_queues`, GraphQL operations by the schema's
root fields. Anything else is counted under `OTHER`, which no task or queue name can spell. The
two Redis hashes expire after `METRICS_TTL` without a job outcome (each outcome sets it again): a
deployment idle that long starts its counters from zero, which Prometheus reads as a reset.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
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

from gql_jobs.constants import DURATION_BUCKETS, OTHER
from gql_jobs.domain import JobStatus

REQUESTS = Counter("gql_jobs_requests_total", "API requests handled.", ["transport", "operation", "outcome"])
REQUEST_SECONDS = Histogram(
    "gql_jobs_request_duration_seconds", "API request latency.", ["transport", "operation"]
)
JOBS_SUBMITTED = Counter("gql_jobs_jobs_submitted_total", "Jobs accepted by this API.", ["task"])


#: Each label set's counter and histogram: `labels()` looks them up again (locks, tuple checks:
#: 4 of a `job(id)`'s 65 us of execution), for label values that are bounded (see above).
_REQUEST_CHILDREN: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def observe_request(transport: str, operation: str, outcome: str, seconds: float) -> None:
    key = (transport, operation, outcome)
    children = _REQUEST_CHILDREN.get(key)
    if children is None:
        children = (REQUESTS.labels(*key), REQUEST_SECONDS.labels(transport, operation))
        _REQUEST_CHILDREN[key] = children
    children[0].inc()
    children[1].observe(seconds)


def count_submitted(tasks: Iterable[str]) -> None:
    for task in tasks:
        JOBS_SUBMITTED.labels(task).inc()


@dataclass(frozen=True)
class JobFigures:
    """What `/metrics` reads from Redis at scrape time (`gql_jobs.store.figures.read`): the raw
    outcome and duration hashes, the jobs per status of each queue, and the last heartbeat of each
    live worker (RQ's worker hashes, which expire when a worker stops heartbeating)."""

    outcomes: dict[bytes, bytes]
    durations: dict[bytes, bytes]
    depths: dict[str, dict[JobStatus, int]]
    heartbeats: tuple[datetime, ...] = ()


@dataclass(frozen=True)
class LabelBounds:
    """The label values `/metrics` may show: the API's tasks, and its queues (the allow-list, or
    the default queue and the first `max_queues` others by name)."""

    tasks: frozenset[str]
    default_queue: str
    allowed_queues: frozenset[str] | None
    max_queues: int

    def task(self, name: str) -> str:
        return name if name in self.tasks else OTHER

    def queues(self, names: list[str]) -> dict[str, str]:
        """Each queue's label value."""
        if self.allowed_queues is not None:
            shown = self.allowed_queues
        else:
            others = sorted(n for n in names if n != self.default_queue)
            shown = frozenset({self.default_queue, *others[: self.max_queues]})
        return {name: name if name in shown else OTHER for name in names}


class JobFiguresCollector(Collector):
    """Job outcomes, durations and queue depths, read at scrape time by `read` (from Redis)."""

    def __init__(self, read: Callable[[], JobFigures], bounds: LabelBounds) -> None:
        self.read = read
        self.bounds = bounds

    def collect(self) -> Iterator[Any]:
        try:
            figures = self.read()
        except Exception:
            up = GaugeMetricFamily("gql_jobs_redis_up", "Whether Redis answered this scrape.")
            up.add_metric([], 0)
            yield up
            return
        up = GaugeMetricFamily("gql_jobs_redis_up", "Whether Redis answered this scrape.")
        up.add_metric([], 1)
        yield up
        yield _outcome_family(figures.outcomes, self.bounds)
        yield _duration_family(figures.durations, self.bounds)
        yield _depth_family(figures.depths, self.bounds)
        yield from _worker_families(figures.heartbeats)


def _outcome_family(raw: dict[bytes, bytes], bounds: LabelBounds) -> CounterMetricFamily:
    family = CounterMetricFamily(
        "gql_jobs_job_outcomes", "Jobs ended by workers, by task and outcome.", labels=["task", "outcome"]
    )
    totals: dict[tuple[str, str], int] = {}
    for key, value in raw.items():
        task, _, outcome = key.decode().partition("|")
        labels = (bounds.task(task), outcome)
        totals[labels] = totals.get(labels, 0) + int(value)
    for labels, total in sorted(totals.items()):
        family.add_metric(list(labels), total)
    return family


def _duration_family(raw: dict[bytes, bytes], bounds: LabelBounds) -> HistogramMetricFamily:
    family = HistogramMetricFamily(
        "gql_jobs_job_duration_seconds", "Job run time in workers.", labels=["task", "outcome"]
    )
    series: dict[tuple[str, str], dict[str, float]] = {}
    for key, value in raw.items():
        task, outcome, field = key.decode().split("|", 2)
        fields = series.setdefault((bounds.task(task), outcome), {})
        fields[field] = fields.get(field, 0.0) + float(value)
    for (task, outcome), fields in sorted(series.items()):
        cumulative = 0.0
        buckets = []
        for bound in [*(str(b) for b in DURATION_BUCKETS), "+Inf"]:
            cumulative += fields.get(bound, 0.0)
            buckets.append((bound, cumulative))
        family.add_metric([task, outcome], buckets, fields.get("sum", 0.0))
    return family


def _depth_family(depths: dict[str, dict[JobStatus, int]], bounds: LabelBounds) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "gql_jobs_queue_jobs", "Jobs per queue and status.", labels=["queue", "status"]
    )
    totals: dict[tuple[str, str], int] = {}
    for queue, label in bounds.queues(sorted(depths)).items():
        for status, count in depths[queue].items():
            totals[(label, status.value)] = totals.get((label, status.value), 0) + count
    for labels, total in totals.items():
        family.add_metric(list(labels), total)
    return family


def _worker_families(heartbeats: tuple[datetime, ...]) -> Iterator[GaugeMetricFamily]:
    """How many workers are alive, and how long ago the freshest one last heartbeat (no labels:
    worker names are not bounded). The age is left out when there is no worker at all."""
    workers = GaugeMetricFamily("gql_jobs_workers", "RQ workers alive (their registration not expired).")
    workers.add_metric([], len(heartbeats))
    yield workers
    if heartbeats:
        age = GaugeMetricFamily(
            "gql_jobs_worker_heartbeat_age_seconds", "Seconds since the most recent heartbeat of any worker."
        )
        age.add_metric([], max(0.0, (datetime.now(UTC) - max(heartbeats)).total_seconds()))
        yield age


def render(read_figures: Callable[[], JobFigures], bounds: LabelBounds) -> tuple[bytes, str]:
    """The exposition text of `/metrics` (`read_figures` reads the global figures)."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        for collector in (REQUESTS, REQUEST_SECONDS, JOBS_SUBMITTED):
            registry.register(collector)
    registry.register(JobFiguresCollector(read_figures, bounds))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started
