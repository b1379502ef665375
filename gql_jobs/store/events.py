"""Job events: what the service and our worker publish on every transition and progress report.

Transport: Redis pub/sub on one channel. Subscribers always read the job's current state after
subscribing, so an event is only a prompt to look again: losing one (no subscriber yet, a
reconnect) costs nothing but latency, which the API's polling fallback bounds. A stream would add
replay we do not need, plus trimming and per-reader offsets. Events are published inside the same
MULTI/EXEC (or pipeline) as the write they describe, so publishing costs no extra round trip.
`listen` holds the one subscription of an API process (see `gql_jobs.service.live`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.client import Pipeline
from rq.job import Job

from gql_jobs import jsoncodec
from gql_jobs.constants import EVENTS_CHANNEL, META_TAGS, META_TASK, RECONNECT_DELAY_SECONDS
from gql_jobs.domain import EventKind, JobEvent, JobRecord
from gql_jobs.store.guard import REDIS_ERRORS
from gql_jobs.store.reads import iso_now
from gql_jobs.store.script_batch import ScriptBatch

log = logging.getLogger(__name__)


def _as_json(event: JobEvent) -> dict[str, Any]:
    return {
        "id": event.job_id,
        "kind": event.kind.value,
        "status": event.status,
        "queue": event.queue,
        "task": event.task,
        "tags": list(event.tags),
        "at": event.at,
        "retried": event.retried,
        "owner": event.owner,
    }


def encode(events: Sequence[JobEvent]) -> str:
    """One message: an event object, or an array of them (a batch submitted together)."""
    body = _as_json(events[0]) if len(events) == 1 else [_as_json(event) for event in events]
    return json.dumps(body, separators=(",", ":"))


def decode(raw: bytes | str) -> list[JobEvent]:
    """Parse a message's events, dropping what is malformed (the channel is not ours alone to trust)."""
    try:
        data = jsoncodec.loads(raw)
    except ValueError:
        return []
    items = data if isinstance(data, list) else [data]
    return [event for event in map(_event, items) if event is not None]


def _event(data: Any) -> JobEvent | None:
    try:
        return JobEvent(
            job_id=str(data["id"]),
            kind=EventKind(data["kind"]),
            status=str(data["status"]),
            queue=str(data["queue"]),
            task=data.get("task") if isinstance(data.get("task"), str) else None,
            tags=tuple(str(t) for t in data.get("tags") or ()),
            at=str(data.get("at", "")),
            retried=bool(data.get("retried", False)),
            owner=data.get("owner") if isinstance(data.get("owner"), str) else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def publish(connection: Redis | Pipeline | AsyncPipeline | ScriptBatch, *events: JobEvent) -> None:
    """Publish events (one message for all of them: one command however many jobs)."""
    if events:
        connection.publish(EVENTS_CHANNEL, encode(events))


async def publish_now(redis: AsyncRedis, *events: JobEvent) -> None:
    """`publish` on the event loop, on its own (not staged on a pipeline)."""
    if events:
        await redis.publish(EVENTS_CHANNEL, encode(events))


def of_rq_job(job: Job, kind: EventKind = EventKind.STATUS, *, retried: bool = False) -> JobEvent:
    meta: dict[str, Any] = job.meta if isinstance(job.meta, dict) else {}
    task = meta.get(META_TASK)
    return JobEvent(
        job_id=job.id,
        kind=kind,
        status=job.get_status(refresh=False).value,
        queue=job.origin,
        task=task if isinstance(task, str) else None,
        tags=tuple(str(t) for t in meta.get(META_TAGS) or ()),
        at=iso_now(),
        retried=retried,
    )


def of_record(record: JobRecord, kind: EventKind = EventKind.STATUS) -> JobEvent:
    return JobEvent(
        job_id=record.id,
        kind=kind,
        status=record.raw_status,
        queue=record.queue,
        task=record.task,
        tags=record.tags,
        at=iso_now(),
        owner=record.owner,
    )


async def listen(
    redis: AsyncRedis, subscribed: asyncio.Event, dispatch: Callable[[JobEvent], Awaitable[None]]
) -> None:
    """Hand every event published on the channel to `dispatch`, for ever (until cancelled).

    `subscribed` is set while the channel is subscribed. A lost subscription is taken again after
    `RECONNECT_DELAY_SECONDS`; so is one that `dispatch` broke (a bug must not silence every
    subscriber of the process for good)."""
    while True:
        try:
            async with redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                await pubsub.subscribe(EVENTS_CHANNEL)
                subscribed.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        for event in decode(message["data"]):
                            await dispatch(event)
        except REDIS_ERRORS as exc:
            subscribed.clear()
            log.warning("job event subscription lost (%s); retrying", exc)
            await asyncio.sleep(RECONNECT_DELAY_SECONDS)
        except Exception:
            subscribed.clear()
            log.exception("job event listener failed; restarting it")
            await asyncio.sleep(RECONNECT_DELAY_SECONDS)
