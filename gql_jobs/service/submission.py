"""Turning a `SubmitRequest` into a checked, ready-to-enqueue job (pure: no Redis here).

Everything a client can get wrong is checked before anything is written, so a rejected request
leaves no trace, and a batch can report one error per item while enqueueing the rest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from gql_jobs import jsonvalues
from gql_jobs.auth import ANONYMOUS
from gql_jobs.constants import (
    JOB_ID_PATTERN,
    JOB_ID_PREFIX,
    META_JOB_ID,
    META_PAYLOAD,
    META_SUBMITTED_AT,
    META_TAGS,
    META_TASK,
    NAME_PATTERN,
)
from gql_jobs.domain import ConcurrencyLimit, PreparedJob, SubmitRequest
from gql_jobs.errors import InvalidRequestError, JobNotFoundError, RqFeatureUnavailableError
from gql_jobs.settings import Settings
from gql_jobs.store.rq_adapter import HAS_RQ3, RQ3_REQUIRED, RQ_VERSION
from gql_jobs.tasks import TaskRegistry

MAX_TIMEOUT = 7 * 86400
MAX_TTL = 366 * 86400
MAX_RETRIES = 100
MAX_DEPENDENCIES = 50
MAX_DESCRIPTION = 1000
MAX_IDEMPOTENCY_KEY = 255
#: The most jobs of one concurrency key allowed at once (RQ takes any; a bound keeps it meaningful).
MAX_CONCURRENCY = 10_000


def new_job_id() -> str:
    return f"{JOB_ID_PREFIX}{uuid.uuid4()}"


def is_valid_job_id(job_id: str) -> bool:
    return re.fullmatch(JOB_ID_PATTERN, job_id) is not None


def prepare(
    request: SubmitRequest, registry: TaskRegistry, settings: Settings, owner: str | None
) -> PreparedJob:
    """Check one request and stamp the lesson's metadata. Raises a `GqlJobsError` on bad input."""
    spec = registry.get(request.task)
    raw_payload = {} if request.payload is None else request.payload
    jsonvalues.check(raw_payload, settings.max_payload_depth, settings.max_payload_bytes)
    payload = spec.validate(raw_payload)
    if payload is not raw_payload:  # an input model may make numbers of strings ("inf" -> inf)
        jsonvalues.check(payload, settings.max_payload_depth)
    queue = _queue(request.queue, settings)
    tags = _tags(request.tags, settings.max_tags)
    submitted = datetime.now(UTC)
    submitted_at = submitted.isoformat()
    job_id = new_job_id()
    return PreparedJob(
        job_id=job_id,
        spec=spec,
        queue=queue,
        payload=payload,
        meta={
            META_JOB_ID: job_id,
            META_SUBMITTED_AT: submitted_at,
            META_PAYLOAD: payload,
            META_TASK: spec.name,
            META_TAGS: list(tags),
        },
        description=_description(request.description) or f"{spec.name} submitted at {submitted_at}",
        timeout=_bounded("timeout", request.timeout, settings.default_timeout, 1, MAX_TIMEOUT),
        result_ttl=_bounded("resultTtl", request.result_ttl, settings.result_ttl, -1, MAX_TTL),
        failure_ttl=_bounded("failureTtl", request.failure_ttl, settings.failure_ttl, 1, MAX_TTL),
        retry_max=_bounded("retry.max", request.retry.max if request.retry else 0, 0, 0, MAX_RETRIES),
        retry_intervals=_intervals(request.retry.intervals if request.retry else ()),
        run_at=_run_at(request, submitted),
        depends_on=_dependencies(request.depends_on),
        at_front=request.at_front,
        submitted_at=submitted,
        owner=owner,
        idempotency_key=_idempotency_key(request),
        fingerprint=fingerprint(request, payload) if request.idempotency_key is not None else None,
        concurrency=_concurrency(request, owner),
    )


def fingerprint(request: SubmitRequest, payload: Any) -> str:
    """What "the same request" means for idempotency: everything the client asked for."""
    asked = dataclasses.asdict(request) | {"payload": payload, "idempotency_key": None}
    canonical = json.dumps(asked, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _idempotency_key(request: SubmitRequest) -> str | None:
    key = request.idempotency_key
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise InvalidRequestError(
            "idempotencyKey", f"must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters"
        )
    if request.depends_on:
        raise InvalidRequestError("idempotencyKey", "cannot be combined with dependsOn")
    return hashlib.sha256(key.encode()).hexdigest()  # fixed length, no odd characters in key names


def _concurrency(request: SubmitRequest, owner: str | None) -> ConcurrencyLimit | None:
    """The job's concurrency limit, its key scoped to the submitter (RQ's limits are global: one
    tenant's key must not hold back another's). Needs RQ 3: on RQ 2 it is refused, not ignored."""
    asked = request.concurrency
    if asked is None:
        return None
    if not HAS_RQ3:
        raise RqFeatureUnavailableError("concurrency", RQ3_REQUIRED, ".".join(map(str, RQ_VERSION)))
    _name("concurrency.key", asked.key)
    if not 1 <= asked.limit <= MAX_CONCURRENCY:
        raise InvalidRequestError("concurrency.limit", f"must be between 1 and {MAX_CONCURRENCY}")
    if request.idempotency_key is not None:
        raise InvalidRequestError("concurrency", "cannot be combined with idempotencyKey")
    return ConcurrencyLimit(f"{owner or ANONYMOUS.name}:{asked.key}", asked.limit)


def _name(field: str, value: str) -> str:
    if not re.fullmatch(NAME_PATTERN, value):
        raise InvalidRequestError(field, f"must match {NAME_PATTERN}")
    return value


def _queue(requested: str | None, settings: Settings) -> str:
    """The job's queue: a well-formed name, and one of `settings.queues` when they restrict it
    (the bound on new queues, `max_queues`, needs Redis: `queue_quota`)."""
    queue = _name("queue", requested or settings.queue_name)
    if settings.queues and queue not in settings.allowed_queues:
        raise InvalidRequestError("queue", f"must be one of {', '.join(sorted(settings.allowed_queues))}")
    return queue


def _tags(tags: tuple[str, ...], limit: int) -> tuple[str, ...]:
    """Tags, checked and without repeats. Each distinct tag is a listing stream kept for the
    index retention: `max_tags` bounds what one job can add."""
    if len(tags) > limit:
        raise InvalidRequestError("tags", f"at most {limit} tags")
    return tuple(dict.fromkeys(_name("tags", tag) for tag in tags))


def _description(value: str | None) -> str | None:
    if value is not None and len(value) > MAX_DESCRIPTION:
        raise InvalidRequestError("description", f"at most {MAX_DESCRIPTION} characters")
    if value is not None and not jsonvalues.is_text(value):
        raise InvalidRequestError("description", jsonvalues.NOT_TEXT)
    return value


def _bounded(field: str, value: int | None, default: int, low: int, high: int) -> int:
    chosen = default if value is None else value
    if not low <= chosen <= high:
        raise InvalidRequestError(field, f"must be between {low} and {high}")
    return chosen


def _intervals(intervals: tuple[int, ...]) -> tuple[int, ...]:
    if len(intervals) > MAX_RETRIES or any(not 0 <= i <= MAX_TTL for i in intervals):
        raise InvalidRequestError("retry.intervals", f"at most {MAX_RETRIES} intervals of 0..{MAX_TTL} s")
    return intervals


def _run_at(request: SubmitRequest, submitted: datetime) -> datetime | None:
    if request.delay_seconds is not None and request.scheduled_at is not None:
        raise InvalidRequestError("delaySeconds", "give delaySeconds or scheduledAt, not both")
    if request.delay_seconds is not None:
        if not 0 <= request.delay_seconds <= MAX_TTL:
            raise InvalidRequestError("delaySeconds", f"must be between 0 and {MAX_TTL}")
        return submitted + timedelta(seconds=request.delay_seconds) if request.delay_seconds else None
    if request.scheduled_at is not None:
        when = request.scheduled_at
        if when.tzinfo is None:
            raise InvalidRequestError("scheduledAt", "must carry a time zone")
        if when - submitted > timedelta(seconds=MAX_TTL):
            raise InvalidRequestError("scheduledAt", "is too far in the future")
        return when.astimezone(UTC) if when > submitted else None
    return None


def _dependencies(ids: tuple[str, ...]) -> tuple[str, ...]:
    if len(ids) > MAX_DEPENDENCIES:
        raise InvalidRequestError("dependsOn", f"at most {MAX_DEPENDENCIES} jobs")
    for job_id in ids:
        if not is_valid_job_id(job_id):
            raise JobNotFoundError(job_id)
    return tuple(dict.fromkeys(ids))
