"""The store floor: the only code that speaks Redis or RQ for job work.

Writes (`writes`, in RQ's format: `rq_format`), reads (`reads`), the listing index (`listing_index`)
and pages read from it (`listing`), queues and workers (`inventory`), cancel/stop/requeue/delete
(`manage`), events (`events`), the thread pools that RQ's synchronous calls run on (`threads`: its
one helper, `in_thread`), the submission rate limit and queue quota, the job figures of `/metrics`
(`figures`), the Redis clients (`connections`, `sentinel`), Redis failures turned into domain
errors (`guard`), RQ's key names (`keys`) and every use of a private RQ name (`rq_adapter`, held
to the installed RQ by `tests/store/test_rq_adapter.py`).

RQ's `Job` subclasses: `rq_format.CompactJob` (how our jobs are saved) lives here, since the store
saves jobs through RQ too (dependencies, requeues); `rq_adapter.HookedJob` adds public hooks to it,
and `gql_jobs.worker.job.EventedJob` implements them. So the worker builds on the store, never the
other way round.

May import: the root modules (`constants`, `domain`, `errors`, `settings`, `auth`,
...), `rq` and `redis`. Never `service`, `worker`, `web` or `graphql`: it is the bottom floor.
"""
