"""Work the benchmark does in processes of its own (started with `spawn`, so nothing is shared).

* `raw_rq`: the raw-RQ baselines, `Queue.enqueue` and `Queue.enqueue_many` in one process, with the
  lesson's metadata and RQ's JSON serializer, in a loop bounded in time and count;
* `fill_service`: jobs written through gql-jobs' own batch path, `JobService.submit_many(ANONYMOUS,
  ...)` in batches of 500 (what `submitJobs` calls), as the REST route would submit them;
* `fill_lesson`: jobs submitted with the lesson's `submit_job` helper (bench/lesson_app.py);
* `drain`: an in-process `SimpleWorker` in burst mode, to turn queued jobs into finished ones
  quickly (no fork per job): our `EventedJob` (as `gql-jobs worker` runs them) or RQ's `Job`.

Every job calls `bench.noop.noop` with the same payload, so jobs and results are the same size.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.serializers import JSONSerializer

from bench.noop import FUNC_PATH
from bench.tasks import TASK, TASK_MODULES

PAYLOAD: dict[str, Any] = {"user_id": 101, "message": "hello"}
FILL_BATCH = 500


def lesson_meta(task_name: str = TASK) -> tuple[str, dict[str, Any], str]:
    """A job id, the lesson's stamped metadata and description."""
    job_id = f"JOB-{uuid.uuid4()}"
    submitted_at = datetime.now(UTC).isoformat()
    meta = {
        "job_id": job_id,
        "submitted_at": submitted_at,
        "payload": PAYLOAD,
        "task_name": task_name,
        "tags": ["api", "v1"],
    }
    return job_id, meta, f"{task_name} submitted at {submitted_at}"


def enqueue_one(queue: Queue) -> None:
    job_id, meta, description = lesson_meta()
    queue.enqueue(
        FUNC_PATH,
        PAYLOAD,
        job_id=job_id,
        meta=meta,
        description=description,
        result_ttl=3600,
        failure_ttl=86400,
    )


def enqueue_batch(queue: Queue, size: int) -> None:
    datas = []
    for _ in range(size):
        job_id, meta, description = lesson_meta()
        datas.append(
            Queue.prepare_data(
                FUNC_PATH,
                args=(PAYLOAD,),
                job_id=job_id,
                meta=meta,
                description=description,
                result_ttl=3600,
                failure_ttl=86400,
            )
        )
    queue.enqueue_many(datas)


def raw_rq(url: str, batch: int, duration: float, max_jobs: int) -> dict[str, Any]:
    """Enqueue in a loop for `duration` s (or `max_jobs` jobs): one job per call when `batch` is 1
    (`Queue.enqueue`), else `batch` jobs per `Queue.enqueue_many` call. Jobs/s and call latencies."""
    connection = redis.Redis.from_url(url)
    queue = Queue("default", connection=connection, serializer=JSONSerializer, default_timeout=900)
    for _ in range(3):  # warm: connection, imports
        if batch == 1:
            enqueue_one(queue)
        else:
            enqueue_batch(queue, batch)
    latencies: list[float] = []
    jobs = 0
    began = time.monotonic()
    end = began + duration
    while time.monotonic() < end and jobs < max_jobs:
        sent = time.monotonic()
        if batch == 1:
            enqueue_one(queue)
        else:
            enqueue_batch(queue, batch)
        latencies.append(time.monotonic() - sent)
        jobs += batch
    elapsed = time.monotonic() - began
    connection.close()
    return {"jobs": jobs, "calls": len(latencies), "elapsed_s": elapsed, "latencies_s": latencies}


def bench_service(url: str) -> Any:
    """A `JobService` like the API's (our task modules, default settings) on plain clients; use it
    on one event loop, and close it there (`close_bench_service`)."""
    from gql_jobs.service.jobs import JobService  # noqa: PLC0415 (heavy; only the children need it)
    from gql_jobs.settings import Settings  # noqa: PLC0415
    from gql_jobs.tasks import TaskRegistry, task_modules  # noqa: PLC0415

    settings = Settings.model_validate({"redis_url": url, "tasks": TASK_MODULES.split(",")})
    registry = TaskRegistry.from_modules(task_modules(settings.tasks, settings.builtin_tasks))
    return JobService(redis.Redis.from_url(url), registry, settings, redis.asyncio.Redis.from_url(url))


def fill_service(url: str, count: int) -> list[str]:
    """Submit `count` REST-like jobs (the lesson's tags) through `JobService.submit_many` (the
    service is async: this runs it on an event loop of its own, so call it from synchronous code)."""
    return asyncio.run(_fill_service(url, count))


async def _fill_service(url: str, count: int) -> list[str]:
    from gql_jobs.auth import ANONYMOUS  # noqa: PLC0415
    from gql_jobs.constants import LESSON_TAGS  # noqa: PLC0415
    from gql_jobs.domain import SubmitRequest  # noqa: PLC0415

    service = bench_service(url)
    request = SubmitRequest(task=TASK, payload=PAYLOAD, tags=LESSON_TAGS)
    ids: list[str] = []
    left = count
    try:
        while left > 0:
            size = min(FILL_BATCH, left)
            for outcome in await service.submit_many(ANONYMOUS, [request] * size):
                if isinstance(outcome, Exception):
                    raise outcome
                ids.append(outcome.record.id)
            left -= size
    finally:
        service.connection.close()
        await service.async_connection.aclose()
    return ids


def fill_lesson(url: str, count: int) -> list[str]:
    """Submit `count` jobs with the lesson's own helper, as its POST /submit-job does."""
    from bench import lesson_app  # noqa: PLC0415

    lesson_app.REDIS_URL = url
    return [str(lesson_app.submit_job(TASK, dict(PAYLOAD))["job_id"]) for _ in range(count)]


def drain(url: str, evented: bool) -> int:
    """Run queued jobs to completion in this process (burst); returns how many this worker ran."""
    job_class: type[Job] = Job
    if evented:
        from gql_jobs.worker.job import EventedJob  # noqa: PLC0415

        job_class = EventedJob
    connection = redis.Redis.from_url(url)
    queue = Queue("default", connection=connection, serializer=JSONSerializer)
    worker = SimpleWorker([queue], connection=connection, serializer=JSONSerializer, job_class=job_class)
    worker.work(burst=True, logging_level="WARNING", with_scheduler=False)
    done = int(worker.successful_job_count) + int(worker.failed_job_count)
    connection.close()
    return done
