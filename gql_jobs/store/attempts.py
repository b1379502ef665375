"""A job's attempts: RQ's results stream (`rq:results:<id>`, its 10 latest results), read for a
page of jobs in one pipelined round trip, oldest attempt first.

RQ writes a result when a run succeeds, fails for good or is stopped. A run that fails and is
retried leaves none in RQ (2.12 and 3.0 alike), so our worker adds one, of RQ's own `RETRIED` type
with the run's traceback (`gql_jobs.worker.job.EventedJob.retry`): a retried job shows why each
try failed. Results expire with the job (`result_ttl` / `failure_ttl`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq.results import Result

from gql_jobs.domain import Attempt, AttemptOutcome
from gql_jobs.store.keys import results_key
from gql_jobs.store.reads import error_of
from gql_jobs.store.rq_format import SERIALIZER

log = logging.getLogger(__name__)

_OUTCOMES = {
    Result.Type.SUCCESSFUL: AttemptOutcome.SUCCESSFUL,
    Result.Type.FAILED: AttemptOutcome.FAILED,
    Result.Type.STOPPED: AttemptOutcome.STOPPED,
    Result.Type.RETRIED: AttemptOutcome.RETRIED,
    Result.Type.MAX_RETRIES_EXCEEDED: AttemptOutcome.MAX_RETRIES_EXCEEDED,
}


async def read_attempts(
    connection: AsyncRedis, rq_connection: Redis, job_ids: Sequence[str]
) -> list[list[Attempt]]:
    """Each job's attempts, oldest first, in one pipelined round trip (`rq_connection` is only
    handed to RQ's `Result`, never used)."""
    if not job_ids:
        return []
    async with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.xrange(results_key(job_id), "-", "+")
        replies = await pipe.execute()
    return [_attempts(rq_connection, job_id, reply) for job_id, reply in zip(job_ids, replies, strict=True)]


def _attempts(connection: Redis, job_id: str, entries: list[Any]) -> list[Attempt]:
    attempts = []
    for result_id, payload in entries or ():
        try:
            result = Result.restore(job_id, result_id.decode(), payload, connection, SERIALIZER)
        except Exception:  # written by another client, or a value our serializer cannot read
            log.warning("unreadable result %s of job %s", result_id, job_id)
            continue
        attempts.append(_attempt(result))
    return attempts


def _attempt(result: Result) -> Attempt:
    outcome = _OUTCOMES.get(result.type, AttemptOutcome.UNKNOWN)
    value = result.return_value if outcome == AttemptOutcome.SUCCESSFUL else None
    return Attempt(
        id=str(result.id),
        outcome=outcome,
        return_value=value,
        error=error_of(result.exc_string),
        worker_name=result.worker_name or None,
        created_at=result.created_at,
        started_at=result.execution_started_at,
        ended_at=result.execution_ended_at,
    )
