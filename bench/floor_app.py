"""A bare-ASGI floor: our Redis work for a submit and a read, with nothing around it.

    bench.compare builds it in-process: `floor_app(settings, registry)`
    REDIS_URL=redis://... GQL_JOBS_TASKS=bench.tasks,bench.noop uvicorn --factory bench.floor_app:create

No framework, no GraphQL, no middleware: parse the JSON body, check and stamp the job as the
service does (`submission.prepare`), write it with the same write script (`writes.plain_batch`:
the job in RQ's layout, the listing entries and counts, the job event) on the same async client
(`connections.api_async_redis`: hiredis packing), and answer its id; read a job with the same
script (`reads.read_jobs`) and answer a few fields; read a page with the same XREVRANGE + script.
What a request of gql-jobs could cost at the least, so its figures are quoted as a ratio to this
floor (issue #20).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from gql_jobs.constants import INDEX_ALL
from gql_jobs.domain import SubmitRequest
from gql_jobs.service.submission import prepare
from gql_jobs.settings import Settings, load_settings
from gql_jobs.store import listing, rq_format
from gql_jobs.store.connections import api_async_redis
from gql_jobs.store.reads import read_jobs
from gql_jobs.store.writes import plain_batch
from gql_jobs.tasks import TaskRegistry, task_modules

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def floor_app(settings: Settings, registry: TaskRegistry) -> Callable[..., Awaitable[None]]:
    connection = api_async_redis(settings)

    async def submit(body: bytes) -> dict[str, Any]:
        raw = json.loads(body)
        job = prepare(SubmitRequest(task=raw["task"], payload=raw.get("payload")), registry, settings, None)
        batch = plain_batch([job], [rq_format.new_record(job)], settings.index_retention)
        await connection.execute_command(*batch.command())  # type: ignore[no-untyped-call]
        return {"id": job.job_id, "status": "queued"}

    async def read(job_id: str) -> dict[str, Any]:
        [record] = await read_jobs(connection, [job_id])
        if record is None:
            return {"id": job_id, "status": None}
        return {"id": record.id, "status": record.status.value, "result": record.result}

    async def page(first: int) -> dict[str, Any]:
        entries = listing._entries(await connection.xrevrange(INDEX_ALL, "+", "-", count=first))
        records = await read_jobs(connection, [e.job_id for e in entries])
        return {"jobs": [{"id": r.id, "status": r.status.value, "task": r.task} for r in records if r]}

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        body = b""
        if scope["method"] == "POST":
            body = (await receive()).get("body", b"")
        path: str = scope["path"]
        if path == "/submit":
            answer = await submit(body)
        elif path.startswith("/job/"):
            answer = await read(path.removeprefix("/job/"))
        else:
            answer = await page(int(path.removeprefix("/page/") or 50))
        payload = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(payload)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    return app


def create() -> Callable[..., Awaitable[None]]:
    """Entry point for `uvicorn --factory bench.floor_app:create` (bench.servers): the settings from
    the environment and the registry from their task modules, as `gql_jobs.app.create_app` builds
    them, so the floor is served by the same kind of server as the apps it is compared with."""
    settings = load_settings()
    registry = TaskRegistry.from_modules(task_modules(settings.tasks, settings.builtin_tasks))
    return floor_app(settings, registry)
