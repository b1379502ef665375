"""Settings, read from the environment and an optional `.env` file.

The lesson's variable names (`REDIS_URL`, `RQ_QUEUE_NAME`, `RQ_DEFAULT_TIMEOUT`) keep working as they
are; everything we added is prefixed `GQL_JOBS_` (`env_prefix`; only those three have aliases).
Settings are never built at import time: the app factory, the worker and the CLI each call
`load_settings()` (or receive a `Settings` from a test).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, DotEnvSettingsSource, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from gql_jobs.auth import KeyEntry
from gql_jobs.constants import LESSON_TAGS, MAX_BATCH_SIZE, MAX_TAGS, NAME_PATTERN
from gql_jobs.trusted_documents import load_manifest

_PREFIX = "GQL_JOBS_"
#: An origin as a browser sends it in `Origin` (lower case, no default port is checked for).
ORIGIN_PATTERN = r"https?://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?"


def _lesson(name: str, lesson: str) -> AliasChoices:
    """Accept the lesson's unprefixed name besides `GQL_JOBS_<NAME>`.

    An alias is not prefixed, so the prefixed name is spelled out, and first: when both are set it
    wins, as it always has. `populate_by_name` keeps the field name working for tests and overrides.
    """
    return AliasChoices(_PREFIX + name, lesson)


class Settings(BaseSettings):
    """Everything gql-jobs can be told; see the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix=_PREFIX,
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    redis_url: str | None = Field(
        default=None,
        validation_alias=_lesson("REDIS_URL", "REDIS_URL"),
        description="Redis to store jobs in. `gql-jobs dev` starts an in-memory one when unset.",
    )
    sentinels: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated host:port of Redis Sentinels; when set, REDIS_URL is not used.",
    )
    sentinel_master: str = Field(
        default="mymaster",
        description="Sentinel's name of the master.",
    )
    sentinel_password: SecretStr | None = Field(default=None, description="Password of the sentinels.")
    sentinel_failover_wait: float = Field(
        default=60.0,
        gt=0,
        description=(
            "Seconds a worker's Redis call waits for a new master during a failover: more than the "
            "sentinels' down-after-milliseconds (30 s by default) plus the promotion."
        ),
    )
    redis_username: str | None = Field(
        default=None,
        description="ACL user of the master (Sentinel mode).",
    )
    redis_password: SecretStr | None = Field(
        default=None,
        description="Password of the master (Sentinel mode).",
    )
    redis_db: int = Field(default=0, ge=0, description="Database (Sentinel mode).")
    redis_wait_replicas: int = Field(
        default=0,
        ge=0,
        description="Replicas that must confirm a submission before it is acknowledged (WAIT); 0: none.",
    )
    redis_wait_timeout_ms: int = Field(
        default=1000,
        gt=0,
        description="How long a submission waits for those replicas before answering 503.",
    )
    queue_name: str = Field(
        default="default",
        validation_alias=_lesson("QUEUE_NAME", "RQ_QUEUE_NAME"),
        description="Queue a job goes to when the caller names none.",
    )
    queues: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description=(
            "Comma-separated queues submissions may name, besides the default queue; "
            "empty: any queue, up to GQL_JOBS_MAX_QUEUES."
        ),
    )
    max_queues: int = Field(
        default=50,
        gt=0,
        description=(
            "Most queues RQ may know of (its `rq:queues` set, which nothing ever shrinks) before a "
            "submission naming a new queue is refused; not used when GQL_JOBS_QUEUES is set."
        ),
    )
    default_timeout: int = Field(
        default=900,
        gt=0,
        validation_alias=_lesson("DEFAULT_TIMEOUT", "RQ_DEFAULT_TIMEOUT"),
        description="Seconds a job may run before the worker kills it.",
    )
    result_ttl: int = Field(
        default=3600,
        ge=-1,
        description="Seconds a finished job and its result are kept (-1: forever). The lesson's value.",
    )
    failure_ttl: int = Field(
        default=86400,
        gt=0,
        description="Seconds a failed job is kept. The lesson's value.",
    )
    max_payload_bytes: int = Field(
        default=64 * 1024,
        gt=0,
        description="Largest payload accepted, measured as compact JSON.",
    )
    max_payload_depth: int = Field(
        default=32,
        gt=0,
        description="Deepest nesting of objects and arrays in a payload (the payload itself is 1).",
    )
    max_batch_size: int = Field(
        default=500,
        gt=0,
        le=MAX_BATCH_SIZE,
        description=(
            f"Most jobs in one batch (at most {MAX_BATCH_SIZE}: a batch is one write script, which "
            "Redis runs while serving no one else)."
        ),
    )
    max_tags: int = Field(
        default=10,
        ge=len(LESSON_TAGS),
        le=MAX_TAGS,
        description=(
            "Most tags on one job (at least the REST API's own two); each distinct tag is a listing "
            "stream (~4 kB of Redis) kept for GQL_JOBS_INDEX_RETENTION."
        ),
    )
    max_page_size: int = Field(default=100, gt=0, description="Most jobs in one page.")
    max_bulk_jobs: int = Field(
        default=1000,
        gt=0,
        le=100_000,
        description=(
            "Most jobs one bulk action (requeueJobs, cancelJobs, deleteJobs) selects and acts on, and "
            "most `ids` it takes; more matching jobs make the result `truncated`."
        ),
    )
    index_retention: int = Field(
        default=7 * 86400,
        gt=0,
        description="Seconds a job stays listable in `jobs` after submission (bounds the index).",
    )
    tasks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated modules whose `@gql_jobs.task` functions may be enqueued.",
    )
    builtin_tasks: bool = Field(
        default=True,
        description="Register the built-in tasks (heavy_compute, echo, sleep, fail).",
    )
    redis_socket_timeout: float = Field(
        default=2.0,
        gt=0,
        description="Seconds the API waits on a Redis reply before answering 503.",
    )
    redis_connect_timeout: float = Field(
        default=1.0,
        gt=0,
        description="Seconds the API waits to connect to Redis before answering 503.",
    )
    redis_max_connections: int = Field(
        default=64,
        gt=0,
        description="Size of the API's Redis connection pool per process.",
    )
    api_keys: dict[str, KeyEntry] = Field(
        default_factory=dict,
        description='JSON {"<sha256 of key>": {"principal": ..., "scopes": [...]}}; empty: open API.',
    )
    idempotency_ttl: int = Field(
        default=86400,
        gt=0,
        description="Seconds an idempotency key keeps returning its job.",
    )
    rate_limit: float = Field(
        default=0,
        ge=0,
        description="Jobs per second each principal may submit (token bucket); 0 turns the limit off.",
    )
    rate_limit_burst: int = Field(
        default=100,
        gt=0,
        description="Jobs a principal may submit at once before the rate applies.",
    )
    request_threads: int = Field(
        default=32,
        gt=0,
        description=(
            "Threads per API process for request work (RQ calls), apart from the health checks' "
            "and anyio's default pool; keep it at or under REDIS_MAX_CONNECTIONS."
        ),
    )
    max_concurrent_reads_per_principal: int = Field(
        default=4,
        gt=0,
        description=(
            "Expensive reads (job listings, counts, positions, queues, workers) one principal may run "
            "at once per API process; more wait for a slot. With no keys every caller is one principal."
        ),
    )
    read_slot_wait: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a read waits for a slot of its principal before failing (CONCURRENCY_LIMITED).",
    )
    worker_heartbeat_interval: int = Field(
        default=10,
        gt=0,
        description="Seconds between a busy worker's heartbeats.",
    )
    worker_heartbeat_grace: int = Field(
        default=60,
        gt=0,
        description="Seconds past a missed heartbeat before a running job counts as abandoned.",
    )
    worker_maintenance_interval: int = Field(
        default=60,
        gt=0,
        description="Seconds between a worker's registry sweeps (how soon a dead worker's job is failed).",
    )
    poll_interval: float = Field(
        default=1.0,
        gt=0,
        description="Seconds between re-reads of watched jobs (catches jobs run by a plain `rq worker`).",
    )
    poll_max_jobs: int = Field(
        default=200,
        gt=0,
        description=(
            "Most jobs (and most queues) the polling fallback reads per interval, however many are "
            "watched; more wait their turn (see gql_jobs/polling.py)."
        ),
    )
    ws_max_subscriptions: int = Field(
        default=100,
        gt=0,
        description="Most subscriptions one WebSocket connection may hold.",
    )
    ws_max_connections_per_principal: int = Field(
        default=50,
        gt=0,
        description="Most WebSocket connections one principal (API key's tenant) may hold per API process.",
    )
    max_subscriptions_per_principal: int = Field(
        default=500,
        gt=0,
        description=(
            "Most subscriptions one principal may hold per API process, over all its WebSocket "
            "connections and Server-Sent Events requests."
        ),
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description=(
            "Seconds a client has to send a request's headers (from connecting, or from the previous "
            "response) before `serve`/`dev` close the connection."
        ),
    )
    body_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds from a request's start to the end of its body; a slower body gets 408.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        # GQL_JOBS_ALLOWED_ORIGINS (WebSocket origins only) is the deprecated name of before.
        validation_alias=AliasChoices(_PREFIX + "CORS_ORIGINS", _PREFIX + "ALLOWED_ORIGINS"),
        description=(
            "Comma-separated origins (`https://app.example`) whose pages may call the API: CORS for "
            "REST and /graphql, and WebSockets; `*`: any origin. Empty: same origin only."
        ),
    )
    cors_localhost: bool = Field(
        default=False,
        description=(
            "Also allow any http://localhost:<port> and http://127.0.0.1:<port> origin (what "
            "`gql-jobs dev` sets, for a frontend's dev server)."
        ),
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="`json` (one object a line, with request ids) or `text` (the `gql-jobs dev` default).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe level logged."
    )
    metrics_access: Literal["auto", "open", "key"] = Field(
        default="auto",
        description=(
            "Who may scrape /metrics: `key` (a key with the `metrics` or `admin` scope), `open`, or "
            "`auto`: `key` when API keys are configured, else `open`."
        ),
    )
    console: bool = Field(default=True, description="Serve the job console at /console.")
    graphiql: bool = Field(default=True, description="Serve the GraphiQL IDE at /graphql.")
    api_docs: bool | None = Field(
        default=None,
        description=(
            "Serve the REST docs (/docs, /redoc, /openapi.json); unset: as GQL_JOBS_GRAPHIQL. FastAPI's "
            "pages load Swagger UI and ReDoc from a public CDN."
        ),
    )
    introspection: bool = Field(default=True, description="Allow schema introspection.")
    max_query_depth: int = Field(
        default=10,
        gt=0,
        description="Deepest field level a GraphQL operation may select (`{ job { id } }` is 1).",
    )
    max_query_tokens: int = Field(
        default=2000,
        gt=0,
        description="Most tokens in a GraphQL document (parsing stops there).",
    )
    max_query_aliases: int = Field(
        default=30,
        gt=0,
        description="Most aliases in a GraphQL document, counted through fragments.",
    )
    max_document_bytes: int = Field(
        default=32 * 1024,
        gt=0,
        description="Largest GraphQL document (the query text, UTF-8), refused before parsing.",
    )
    max_query_cost: int = Field(
        default=10_000,
        gt=0,
        description=(
            "Most a GraphQL operation may cost: 1 per field; a `jobs` page its size (the maximum "
            "when given by a variable) times its selection, plus 2000 when its filter needs a scan; a "
            "bulk action GQL_JOBS_MAX_BULK_JOBS plus 2000 (at most half of this)."
        ),
    )
    max_batch_operations: int = Field(
        default=0,
        ge=0,
        description=(
            "Most GraphQL operations in one batched HTTP request (a JSON array, as Apollo's "
            "BatchHttpLink sends), each checked against the document limits; 0: batching off."
        ),
    )
    document_cache_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=0,
        description="Estimated memory the cache of parsed and validated GraphQL documents may use; 0: none.",
    )
    document_cache_entry_bytes: int = Field(
        default=8 * 1024,
        gt=0,
        description="GraphQL documents larger than this are checked each time, not cached.",
    )
    persisted_queries: bool = Field(
        default=True,
        description=(
            "Automatic persisted queries (Apollo's APQ): a document sent once with its SHA-256 may "
            "then be sent by hash only; kept in Redis, shared by every API process."
        ),
    )
    persisted_query_ttl: int = Field(
        default=86400,
        gt=0,
        description="Seconds an automatic persisted query is kept in Redis after its last use.",
    )
    persisted_documents: Path | None = Field(
        default=None,
        description=(
            "A manifest of trusted documents generated by the frontend's build (Apollo's persisted-"
            'query manifest, or a {"<sha256>": "<document>"} map): clients may send them by hash.'
        ),
    )
    only_persisted_documents: bool = Field(
        default=False,
        description=(
            "Run only the manifest's documents (sent by hash or in full): any other document is "
            "refused before parsing, except from admin keys. Needs GQL_JOBS_PERSISTED_DOCUMENTS."
        ),
    )

    @field_validator("tasks", "cors_origins", "sentinels", "queues", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("tasks")
    @classmethod
    def _check_modules(cls, value: list[str]) -> list[str]:
        for module in value:
            if not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*", module):
                raise ValueError(f"{module!r} is not a dotted module path")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        """Origins as browsers send them; `*` alone. No credentials are ever allowed (API keys
        travel in headers, never in cookies), so `*` is safe to combine with CORS."""
        if "*" in value and len(value) > 1:
            raise ValueError("`*` already allows every origin: give it alone")
        for origin in value:
            if origin != "*" and not re.fullmatch(ORIGIN_PATTERN, origin):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], lower case, no path)")
        # Browsers leave the default port out of `Origin`: so must the list, to match it.
        return list(dict.fromkeys(re.sub(r"^(http://.*):80$|^(https://.*):443$", r"\1\2", o) for o in value))

    @field_validator("api_keys")
    @classmethod
    def _check_key_hashes(cls, value: dict[str, KeyEntry]) -> dict[str, KeyEntry]:
        for digest in value:
            if not re.fullmatch(r"[0-9a-fA-F]{64}", digest):
                raise ValueError("keys must be SHA-256 hex digests of API keys (see `gql-jobs create-key`)")
        return value

    @field_validator("queue_name")
    @classmethod
    def _check_queue(cls, value: str) -> str:
        if not re.fullmatch(NAME_PATTERN, value):
            raise ValueError(f"{value!r} is not a valid queue name ({NAME_PATTERN})")
        return value

    @field_validator("queues")
    @classmethod
    def _check_queues(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(cls._check_queue(name) for name in value))

    @property
    def allowed_queues(self) -> frozenset[str]:
        """The queues submissions may name when `queues` restricts them (the default one always)."""
        return frozenset({self.queue_name, *self.queues})

    @field_validator("persisted_documents")
    @classmethod
    def _check_manifest(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """Read once here, so that a manifest that cannot serve stops start-up, naming the setting."""
        if value is not None:
            limit = info.data.get("max_document_bytes")
            for digest, document in load_manifest(value).items():
                if limit is not None and len(document.encode("utf-8", "surrogatepass")) > limit:
                    raise ValueError(f"the document {digest} is larger than GQL_JOBS_MAX_DOCUMENT_BYTES")
        return value

    @field_validator("only_persisted_documents")
    @classmethod
    def _check_only_persisted(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("persisted_documents") is None:
            raise ValueError("needs a manifest of the documents to run: set GQL_JOBS_PERSISTED_DOCUMENTS")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


class SettingsError(Exception):
    """Settings could not be built; the message is one line naming the variable."""


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning pydantic's report into one readable line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        given = _variables_set()
        problems = []
        for error in exc.errors():
            variable = _variable_name(str(error["loc"][0]) if error["loc"] else "?", given)
            problems.append(f"{variable}: {error['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
    except SourceError as exc:  # a JSON setting (GQL_JOBS_API_KEYS) that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        variable = _variable_name(field.group(1), _variables_set()) if field else "?"
        raise SettingsError(f"invalid settings: {variable}: Invalid JSON, {exc.__cause__ or exc}") from None


#: Variables of before that still work, and the names that replace them.
DEPRECATED = {"GQL_JOBS_ALLOWED_ORIGINS": "GQL_JOBS_CORS_ORIGINS"}


def deprecated_variables() -> dict[str, str]:
    """The deprecated variables set (in the environment or `.env`), with their replacements."""
    given = _variables_set()
    return {old: new for old, new in DEPRECATED.items() if old in given}


def _variables_set() -> set[str]:
    """The names set in the environment or the `.env` file, upper-cased: pydantic-settings ignores case."""
    return {name.upper() for name in [*os.environ, *DotEnvSettingsSource(Settings).env_vars]}


def variable_names(field: str) -> tuple[str, ...]:
    """The environment variables that set `field`, in the order pydantic-settings reads them.

    Derived from the model config, as pydantic-settings does it: an alias is used as it is (the
    prefix is not added to it), and the prefixed field name is read when the field has no alias or
    `populate_by_name` is on. Names are case-insensitive; they are shown upper-case.
    """
    config = Settings.model_config
    alias = Settings.model_fields[field].validation_alias
    names = [str(choice) for choice in alias.choices] if isinstance(alias, AliasChoices) else []
    if not names or config.get("populate_by_name"):
        names.append(config.get("env_prefix", "") + field)
    return tuple(dict.fromkeys(name.upper() for name in names))


def _variable_name(loc: str, given: set[str]) -> str:
    """The environment variable behind an error location: the one the user set, when we can tell.

    The location is the field name (overrides) or the first variable of the field (environment).
    """
    for field in Settings.model_fields:
        names = variable_names(field)
        if loc == field or loc.upper() in names:
            present = [name for name in names if name in given]
            return " or ".join(present or names)
    return loc.upper()
