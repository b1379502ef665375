"""`report_progress` inside a worker: the current RQ job's progress, written with its event.

Progress is stored in the job's meta (`meta["progress"]`), so REST clients see it in the lesson's
`meta` field and GraphQL clients as `Job.progress`, and a progress event is published with it.
Outside a worker it does nothing, so tasks can be called directly in tests.
"""

from __future__ import annotations

from rq import get_current_job

from gql_jobs.constants import META_PROGRESS
from gql_jobs.domain import EventKind
from gql_jobs.store import events
from gql_jobs.store.reads import iso_now
from gql_jobs.store.rq_format import SERIALIZER


def report_progress(current: float, total: float | None = None, message: str | None = None) -> None:
    """Record progress on the current job (one small Redis write)."""
    job = get_current_job()
    if job is None:
        return
    job.meta[META_PROGRESS] = {
        "current": current,
        "total": total,
        "message": message,
        "updated_at": iso_now(),
    }
    with job.connection.pipeline() as pipe:  # the write and its event in one round trip
        pipe.hset(job.key, "meta", SERIALIZER.dumps(job.meta))
        events.publish(pipe, events.of_rq_job(job, EventKind.PROGRESS))
        pipe.execute()
