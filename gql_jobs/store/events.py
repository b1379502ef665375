"""Job events: what the service and our worker publish on every transition and progress report.

Transport: Redis pub/sub on one channel. Subscribers always read the job's current state after
subscribing, so an event is only a prompt to look again: losing one (no subscriber yet, a
reconnect) costs nothing but latency, which the API's polling fallback bounds. A stream would add
replay we do not need, plus trimming and per-reader offsets. Events are published inside the same
MULTI/EXEC (or pipeline) as the write they describe, so publishing costs no extra round trip.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from redis import Redis
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.client import Pipeline
from rq.job import Job

from gql_jobs.constants import EVENTS_CHANNEL, META_TAGS, META_TASK
from gql_jobs.domain import EventKind, JobEvent, JobRecord
from gql_jobs.store.reads import iso_now


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
        data = json.loads(raw)
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


def publish(connection: Redis | Pipeline | AsyncPipeline, *events: JobEvent) -> None:
    """Publish events (one message for all of them: one command however many jobs)."""
    if events:
        connection.publish(EVENTS_CHANNEL, encode(events))


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
