"""Names and limits shared across modules: every Redis key we own is spelled here.

RQ owns its own keys (`rq:job:<id>`, `rq:queue:<name>`, registries, `rq:results:<id>`): their names
are taken from RQ's classes in `gql_jobs.store.keys` (this module imports no RQ, so every floor may
use it). We only add the keys below, all under one prefix so they are easy to find and to drop.
"""

from __future__ import annotations

#: The RQ serializer of every job we write and read, and of our workers (`rq worker -S json`):
#: RQ's alias for `rq.serializers.JSONSerializer` (resolved in `gql_jobs.store.rq_format`).
SERIALIZER_NAME = "json"

#: Job ids we create: the lesson's `JOB-<uuid4>` form.
JOB_ID_PREFIX = "JOB-"
#: Any id RQ accepts (`[A-Za-z0-9_-]+`), bounded, so a hostile id never reaches Redis as a key trick.
JOB_ID_PATTERN = r"[A-Za-z0-9_-]{1,128}"
#: Queue, task and tag names: short, printable, no spaces or glob characters.
NAME_PATTERN = r"[A-Za-z0-9_.:-]{1,64}"

#: Tags the lesson stamps on every job submitted over REST.
LESSON_TAGS = ("api", "v1")

#: The most jobs a batch may be set to take, and tags a job: at both, a batch's write script (one
#: EVAL, `store.script_batch`) is ~660,000 words, under the 1,048,576 arguments Redis 6 takes in one
#: command, and keeps Redis busy ~1.5 s (tests/store/test_script_batch.py sends one).
MAX_BATCH_SIZE = 5000
MAX_TAGS = 100

KEY_PREFIX = "gql_jobs:"
#: Streams of job ids in submission order (`gql_jobs.store.index`). Before 0.2 the index was sorted
#: sets under `gql_jobs:index:*`, which nothing reads any more.
INDEX_ALL = KEY_PREFIX + "listing:all"
INDEX_BY_QUEUE = KEY_PREFIX + "listing:queue:"
INDEX_BY_TASK = KEY_PREFIX + "listing:task:"
INDEX_BY_TAG = KEY_PREFIX + "listing:tag:"
INDEX_BY_OWNER = KEY_PREFIX + "listing:owner:"
#: How many index entries one page may examine when criteria must be checked on the jobs (also how
#: many of a tenant's newest jobs `queues` and `workers` look at to find its queues).
SCAN_BUDGET = 2000
#: `<prefix><principal>:<client's key>` -> `<request fingerprint>|<job id>`, for `idempotency_ttl`.
IDEMPOTENCY_PREFIX = KEY_PREFIX + "idempotency:"
#: Token buckets of the per-principal submission rate limit.
RATE_LIMIT_PREFIX = KEY_PREFIX + "rate:"
#: `<prefix><sha256 hex>` -> a GraphQL document registered by automatic persisted queries (Apollo's
#: APQ), for `persisted_query_ttl`, refreshed when read (`gql_jobs.store.persisted`).
PERSISTED_QUERY_PREFIX = KEY_PREFIX + "persisted:"
#: Extra field in RQ's job hash naming the principal that submitted the job (RQ ignores it).
OWNER_FIELD = "gql_jobs_owner"

#: Keys in `job.meta` that we stamp (the lesson's names) or maintain.
META_JOB_ID = "job_id"
META_SUBMITTED_AT = "submitted_at"
META_PAYLOAD = "payload"
META_TASK = "task_name"
META_TAGS = "tags"
META_PROGRESS = "progress"
#: W3C trace context of the submission (only when tracing is on): the worker continues that trace.
META_TRACEPARENT = "traceparent"

#: Pub/sub channel of job events (see `gql_jobs.store.events`).
EVENTS_CHANNEL = KEY_PREFIX + "events"

#: The job figures of `/metrics` kept in Redis (`gql_jobs.store.figures`), and how long they outlive
#: the last job outcome.
JOB_OUTCOMES_KEY = KEY_PREFIX + "metrics:job_outcomes"
JOB_DURATIONS_KEY = KEY_PREFIX + "metrics:job_durations"
METRICS_TTL = 7 * 86400
#: Upper bounds (seconds) of the job duration histogram's buckets.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)
#: The metric label value of everything outside the bounds (not a valid task or queue name).
OTHER = "(other)"

#: The job history of the `stats` query (`gql_jobs.store.stats`): one hash per minute,
#: `<prefix><minutes since the epoch>`, kept `STATS_TTL` seconds (a day and an hour), so the
#: longest window, `STATS_MAX_WINDOW` minutes, is always whole.
STATS_PREFIX = KEY_PREFIX + "stats:"
STATS_TTL = 25 * 3600
STATS_MAX_WINDOW = 24 * 60

#: Longest pause between restarts of a worker that keeps losing Redis.
MAX_RESTART_PAUSE = 30.0
#: A stopping worker's last writes (its death, its scheduler's locks) wait this long at most for
#: Redis (with Sentinel, a worker otherwise waits up to `sentinel_failover_wait` for a master).
TEARDOWN_WAIT = 3.0

#: How long `JobService.cancel` waits for a worker to confirm it stopped a running job.
STOP_CONFIRM_SECONDS = 3.0
#: How many not-yet-final jobs seen in events the poller keeps following for event watchers.
MAX_TRACKED_JOBS = 10_000
#: Attempts at an idempotent submission before giving up (each lost race costs one).
MAX_WATCH_ATTEMPTS = 20
#: Pause before subscribing again after the subscription failed.
RECONNECT_DELAY_SECONDS = 1.0


# -- the Python client (gql_jobs.client) and its CLI commands -------------------------------------
#: Where the client looks for the server when neither `url` nor GQL_JOBS_URL says.
CLIENT_DEFAULT_URL = "http://127.0.0.1:8000"
#: Seconds the client waits for one HTTP answer, and how many times it retries a failed request.
CLIENT_DEFAULT_TIMEOUT = 30.0
CLIENT_DEFAULT_RETRIES = 3
