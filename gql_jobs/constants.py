"""Names and limits shared across modules: every Redis key we own is spelled here.

RQ owns its own keys (`rq:job:<id>`, `rq:queue:<name>`, registries, `rq:results:<id>`); we only add
the listing indexes below, all under one prefix so they are easy to find and to drop.
"""

from __future__ import annotations

#: Job ids we create: the lesson's `JOB-<uuid4>` form.
JOB_ID_PREFIX = "JOB-"
#: Any id RQ accepts (`[A-Za-z0-9_-]+`), bounded, so a hostile id never reaches Redis as a key trick.
JOB_ID_PATTERN = r"[A-Za-z0-9_-]{1,128}"
#: Queue, task and tag names: short, printable, no spaces or glob characters.
NAME_PATTERN = r"[A-Za-z0-9_.:-]{1,64}"

#: Tags the lesson stamps on every job submitted over REST.
LESSON_TAGS = ("api", "v1")

KEY_PREFIX = "gql_jobs:"
#: Streams of job ids in submission order (`gql_jobs.store.index`). Before 0.2 the index was sorted
#: sets under `gql_jobs:index:*`, which nothing reads any more.
INDEX_ALL = KEY_PREFIX + "listing:all"
INDEX_BY_QUEUE = KEY_PREFIX + "listing:queue:"
INDEX_BY_TASK = KEY_PREFIX + "listing:task:"
INDEX_BY_TAG = KEY_PREFIX + "listing:tag:"
INDEX_BY_OWNER = KEY_PREFIX + "listing:owner:"
#: `<prefix><principal>:<client's key>` -> `<request fingerprint>|<job id>`, for `idempotency_ttl`.
IDEMPOTENCY_PREFIX = KEY_PREFIX + "idempotency:"
#: Token buckets of the per-principal submission rate limit.
RATE_LIMIT_PREFIX = KEY_PREFIX + "rate:"
#: Extra field in RQ's job hash naming the principal that submitted the job (RQ ignores it).
OWNER_FIELD = "gql_jobs_owner"

#: Keys in `job.meta` that we stamp (the lesson's names) or maintain.
META_JOB_ID = "job_id"
META_SUBMITTED_AT = "submitted_at"
META_PAYLOAD = "payload"
META_TASK = "task_name"
META_TAGS = "tags"
META_PROGRESS = "progress"

#: Pub/sub channel of job events (see `gql_jobs.store.events`).
EVENTS_CHANNEL = KEY_PREFIX + "events"
