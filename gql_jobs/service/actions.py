"""What each job action (cancel, requeue, delete) applies to, and as whom a manager reads its jobs.

Shared by the single actions (`jobs.JobService.cancel`, `requeue`, `delete`) and the bulk ones
(`bulk`), so a job is acted on under the same rules whichever way it is named.
"""

from __future__ import annotations

from gql_jobs.auth import SYSTEM, Principal, Scope
from gql_jobs.domain import BulkAction, JobStatus

CANCELABLE = frozenset({JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.RATE_LIMITED})
REQUEUEABLE = frozenset({JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED})
#: The statuses each action applies to (cancel stops a running job; delete takes any but running).
APPLIES_TO = {
    BulkAction.CANCEL: CANCELABLE | {JobStatus.STARTED},
    BulkAction.REQUEUE: REQUEUEABLE,
    BulkAction.DELETE: frozenset(JobStatus) - {JobStatus.STARTED},
}


def reader_for(manager: Principal) -> Principal:
    """Who reads the jobs a manager acts on: every job for an admin, else only its own."""
    return SYSTEM if manager.is_admin else Principal(manager.name, frozenset({Scope.READ}))
