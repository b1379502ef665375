"""The lesson's approach, as a baseline: `shared/reference/lesson-fastapi-rq.md`, sections 3, 6, 7.

    REDIS_URL=redis://... uvicorn bench.lesson_app:app

Written the way the lesson writes it (module-level Redis client and queue, a sync FastAPI endpoint
calling `Queue.enqueue` with the stamped metadata, a status route built on `Job.fetch` and the
job's properties), with three changes for a fair comparison: RQ's JSON serializer (as gql-jobs
uses), `job.id` instead of the `get_id()` RQ 2 removed, and the task registry maps `bench_noop` to
the benchmarks' no-op function (the lesson's `heavy_compute` sleeps two seconds). Settings come
from the environment (the lesson uses pydantic-settings; that costs nothing per request).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from bench import noop

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
RQ_QUEUE_NAME = os.environ.get("RQ_QUEUE_NAME", "default")
RQ_DEFAULT_TIMEOUT = int(os.environ.get("RQ_DEFAULT_TIMEOUT", "900"))

_redis_client: Redis | None = None
_default_queue: Queue | None = None


def get_redis() -> Redis:
    global _redis_client  # noqa: PLW0603 (the lesson's module-level singletons)
    if _redis_client is None:
        _redis_client = Redis.from_url(REDIS_URL)
    return _redis_client


def get_queue() -> Queue:
    global _default_queue  # noqa: PLW0603
    if _default_queue is None:
        _default_queue = Queue(
            RQ_QUEUE_NAME,
            connection=get_redis(),
            default_timeout=RQ_DEFAULT_TIMEOUT,
            serializer=JSONSerializer,
        )
    return _default_queue


TASK_REGISTRY = {"bench_noop": noop.noop}


class JobPayload(BaseModel):
    task: str = Field(examples=["heavy_compute"])
    payload: dict[str, Any] = Field(default_factory=dict)


def submit_job(task_name: str, payload: dict[str, Any]) -> dict[str, Any]:
    if task_name not in TASK_REGISTRY:
        raise ValueError(f"Unknown task: {task_name}")

    job_id = f"JOB-{uuid4()}"
    submitted_at = datetime.now(UTC).isoformat()

    q = get_queue()
    job: Job = q.enqueue(
        TASK_REGISTRY[task_name],
        payload,
        job_id=job_id,
        meta={
            "job_id": job_id,
            "submitted_at": submitted_at,
            "payload": payload,
            "task_name": task_name,
            "tags": ["api", "v1"],
        },
        description=f"{task_name} submitted at {submitted_at}",
        retry=None,
        ttl=None,
        result_ttl=3600,
        failure_ttl=86400,
    )

    return {
        "job_id": job.id,
        "status": job.get_status(),
        "submitted_at": submitted_at,
    }


app = FastAPI(title="Workflow API (the lesson's approach)")


@app.post("/submit-job")
def submit_job_endpoint(body: JobPayload) -> dict[str, Any]:
    try:
        return submit_job(body.task, body.payload)
    except ValueError as e:
        raise HTTPException(status_code=400, detail=str(e)) from e


@app.get("/job-status/{job_id}")
def job_status(job_id: str) -> dict[str, Any]:
    conn = get_redis()
    try:
        job = Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
    except Exception as e:
        raise HTTPException(status_code=404, detail="Job not found") from e

    return {
        "job_id": job.id,
        "status": job.get_status(),
        "meta": job.meta,
        "enqueued_at": getattr(job, "enqueued_at", None),
        "started_at": getattr(job, "started_at", None),
        "ended_at": getattr(job, "ended_at", None),
        "result": job.result if job.is_finished else None,
        "exc_info": job.exc_info if job.is_failed else None,
    }
