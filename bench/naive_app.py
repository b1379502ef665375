"""A naive Strawberry + RQ app, as a baseline: what Strawberry's and RQ's docs show, put together.

    REDIS_URL=redis://... uvicorn bench.naive_app:app

Sync resolvers (Strawberry's getting-started), `Queue.enqueue` to submit and `Job.fetch` to read
(RQ's docs), a page of jobs as `Job.fetch_many` over the ids of RQ's finished registry (what RQ
offers for "the latest jobs"), objects built field by field from RQ's `Job`. The same JSON
serializer and no-op task as the other baselines, so the figures compare the stacks, not the
work. Not for production: sync resolvers block the loop (see /work/shared/STACK-NOTES.md).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

import strawberry
from fastapi import FastAPI
from redis import Redis
from rq import Queue
from rq.job import Job as RQJob
from rq.registry import FinishedJobRegistry
from strawberry.fastapi import GraphQLRouter
from strawberry.scalars import JSON

from bench import noop

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
redis = Redis.from_url(REDIS_URL)
queue = Queue("default", connection=redis, serializer="json")


@strawberry.type
class Job:
    id: strawberry.ID
    status: str
    task: str | None
    submitted_at: datetime | None
    payload: JSON | None
    result: JSON | None
    error: str | None
    progress: JSON | None

    @classmethod
    def of(cls, job: RQJob) -> Job:
        meta: dict[str, Any] = job.meta or {}
        return cls(
            id=strawberry.ID(job.id),
            status=job.get_status(refresh=False).value,
            task=meta.get("task"),
            submitted_at=job.enqueued_at,
            payload=job.args[0] if job.args else None,
            result=job.return_value(refresh=True),
            error=job.exc_info,
            progress=meta.get("progress"),
        )


@strawberry.input
class SubmitJobInput:
    task: str
    payload: JSON | None = None
    tags: list[str] | None = None


@strawberry.type
class Query:
    @strawberry.field
    def job(self, id: strawberry.ID) -> Job | None:
        try:
            return Job.of(RQJob.fetch(str(id), connection=redis, serializer="json"))
        except Exception:
            return None

    @strawberry.field
    def jobs(self, first: int = 50) -> list[Job]:
        ids = FinishedJobRegistry(queue=queue).get_job_ids(0, first - 1)
        return [Job.of(j) for j in RQJob.fetch_many(ids, connection=redis, serializer="json") if j]


@strawberry.type
class Mutation:
    @strawberry.mutation
    def submit_job(self, input: SubmitJobInput) -> Job:
        job = queue.enqueue(noop.noop, input.payload, meta={"task": input.task, "tags": input.tags or []})
        return Job.of(job)


schema = strawberry.Schema(query=Query, mutation=Mutation)
app = FastAPI()
app.include_router(GraphQLRouter(schema), prefix="/graphql")
