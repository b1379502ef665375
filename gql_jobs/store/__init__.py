"""The store floor: the only code that speaks Redis or RQ for job work.

Writes (`writes`, in RQ's format: `rq_format`), reads (`reads`), pages (`listing`), queues and
workers (`inventory`), cancel/stop/requeue/delete (`manage`), events (`events`), the submission
rate limit and queue quota, the job figures of `/metrics` (`figures`), the Redis clients
(`connections`, `sentinel`), RQ's key names (`keys`) and every use of a private RQ name
(`rq_adapter`, held to the installed RQ by `tests/test_rq_adapter.py`).

May import: the root modules (`constants`, `domain`, `errors`, `settings`, `auth`, `concurrency`,
...), `rq` and `redis`. Never `service`, `worker`, `web` or `graphql`: it is the bottom floor.
"""
