"""`report_progress`: what a running task calls to say how far it got (public API).

Progress is stored in the job's meta (`meta["progress"]`), so REST clients see it in the lesson's
`meta` field and GraphQL clients as `Job.progress`, and a progress event is published with it.
Outside a worker it does nothing, so tasks can be called directly in tests. The work is done by
`gql_jobs.worker.progress`, on the worker floor (it speaks RQ); this name stays where tasks
import it from.
"""

from __future__ import annotations

from gql_jobs.worker.progress import report_progress

__all__ = ["report_progress"]
