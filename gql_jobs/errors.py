"""Domain exceptions raised by the job service; each transport maps them at its edge.

GqlJobsError
 ├── UnknownTaskError          task name not registered
 ├── InvalidPayloadError       payload fails the task's input model (field paths inside)
 ├── PayloadTooLargeError      payload over `max_payload_bytes`
 ├── InvalidRequestError       a submission option is out of range (queue name, TTL, tags...)
 ├── BatchTooLargeError        more jobs in one batch than `max_batch_size`
 ├── JobNotFoundError          no such job (or a malformed id: same answer, no oracle)
 ├── JobDeletedError           a followed job was deleted while followed
 ├── InvalidJobStateError      the operation does not apply to the job's current status
 ├── InvalidCursorError        a pagination cursor we did not issue
 ├── IdempotencyConflictError  an idempotency key reused for a different request
 ├── RateLimitedError          the caller submits faster than its rate limit
 ├── TooManySubscriptionsError the caller holds as many live subscriptions as it may
 ├── TooManyConcurrentReadsError  the caller runs more expensive reads at once than it may
 ├── UnauthenticatedError      no valid API key (while keys are configured)
 ├── ForbiddenError            the key lacks the scope the operation needs
 └── ServiceUnavailableError   Redis cannot be reached (a submission: nothing was written)
      └── SubmissionOutcomeUnknownError  Redis failed after a job's write was sent: it may be stored
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    """Every `extensions.code` the API answers with, and every result-union member's `code` (the
    GraphQL enum `ErrorCode`), in one place (both GraphQL transports, HTTP and WebSocket, take
    theirs from here; `tests/test_architecture.py` checks none is spelled elsewhere). REST answers
    with HTTP statuses and the lesson's `{"detail": ...}` bodies instead.
    """

    # Failures of the service (`gql_jobs.graphql.errors` maps each `GqlJobsError` to one, the same
    # as a top-level error's `extensions.code` and as a result-union member's `code`).
    BAD_USER_INPUT = "BAD_USER_INPUT"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
    INVALID_JOB_STATE = "INVALID_JOB_STATE"
    IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
    RATE_LIMITED = "RATE_LIMITED"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    SUBMISSION_OUTCOME_UNKNOWN = "SUBMISSION_OUTCOME_UNKNOWN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    TOO_MANY_SUBSCRIPTIONS = "TOO_MANY_SUBSCRIPTIONS"
    CONCURRENCY_LIMITED = "CONCURRENCY_LIMITED"
    # An input that needs a newer RQ than the server runs (`RqFeatureUnavailableError`).
    RQ_VERSION_REQUIRED = "RQ_VERSION_REQUIRED"
    # An unexpected failure, its details masked (and logged).
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    # A followed job.
    NOT_FOUND = "NOT_FOUND"
    JOB_DELETED = "JOB_DELETED"
    # Documents refused before they run (`gql_jobs.graphql.documents`).
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    DOCUMENT_TOO_LARGE = "DOCUMENT_TOO_LARGE"
    QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
    TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    # Documents sent by hash (`gql_jobs.graphql.persisted`): Apollo's link sends the full document
    # again on the first two.
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
    PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
    PERSISTED_DOCUMENT_REQUIRED = "PERSISTED_DOCUMENT_REQUIRED"
    # Requests refused before GraphQL runs (`gql_jobs.graphql.router`).
    BAD_REQUEST = "BAD_REQUEST"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    JSON_TOO_DEEP = "JSON_TOO_DEEP"
    STREAMING_REQUIRED = "STREAMING_REQUIRED"
    BATCHING_DISABLED = "BATCHING_DISABLED"
    TOO_MANY_OPERATIONS = "TOO_MANY_OPERATIONS"
    ALREADY_INITIALISED = "ALREADY_INITIALISED"
    TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"


class RedisNotConfiguredError(RuntimeError):
    """Neither `REDIS_URL` nor Sentinel is configured, and nothing provided an embedded Redis.

    A configuration error found at start-up (not a `GqlJobsError`: no client ever sees it)."""


class TaskModuleError(RuntimeError):
    """A module named in `GQL_JOBS_TASKS` cannot be imported: a start-up error, said in one line."""


class GqlJobsError(Exception):
    """Base of every error the service raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownTaskError(GqlJobsError):
    def __init__(self, task: str) -> None:
        super().__init__(f"Unknown task: {task}")
        self.task = task


@dataclass(frozen=True)
class FieldError:
    """One problem in a payload: `path` locates it (e.g. `("items", 2, "name")`)."""

    path: tuple[str | int, ...]
    message: str
    type: str = "value_error"


class InvalidPayloadError(GqlJobsError):
    def __init__(self, field_errors: list[FieldError]) -> None:
        summary = "; ".join(f"{'.'.join(map(str, e.path)) or '(payload)'}: {e.message}" for e in field_errors)
        super().__init__(f"Invalid payload: {summary}")
        self.field_errors = field_errors


class PayloadTooLargeError(GqlJobsError):
    def __init__(self, limit_bytes: int, actual_bytes: int) -> None:
        super().__init__(f"Payload is {actual_bytes} bytes; the limit is {limit_bytes} bytes")
        self.limit_bytes = limit_bytes
        self.actual_bytes = actual_bytes


class InvalidRequestError(GqlJobsError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class RqFeatureUnavailableError(InvalidRequestError):
    """An input the installed RQ cannot honour (a feature of a newer RQ): refused, not ignored."""

    def __init__(self, field: str, required: str, installed: str) -> None:
        super().__init__(field, f"needs {required}; this server runs RQ {installed}")
        self.required = required


class BatchTooLargeError(GqlJobsError):
    def __init__(self, limit: int, actual: int) -> None:
        super().__init__(f"Batch has {actual} jobs; the limit is {limit}")
        self.limit = limit
        self.actual = actual


class JobNotFoundError(GqlJobsError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"Job not found: {job_id[:140]}")
        self.job_id = job_id


class JobDeletedError(GqlJobsError):
    """The job a caller follows (`service.follow.follow`) was deleted: the end of the stream."""

    def __init__(self, job_id: str) -> None:
        super().__init__("Job was deleted")
        self.job_id = job_id


class InvalidJobStateError(GqlJobsError):
    def __init__(self, job_id: str, status: str, action: str) -> None:
        super().__init__(f"Cannot {action} job {job_id}: it is {status}")
        self.job_id = job_id
        self.status = status
        self.action = action


class InvalidCursorError(GqlJobsError):
    def __init__(self, cursor: str) -> None:
        super().__init__("Invalid cursor")
        self.cursor = cursor


#: What `ServiceUnavailableError` says unless told more.
UNAVAILABLE = "Job store (Redis) is unavailable; try again shortly"


class ServiceUnavailableError(GqlJobsError):
    """Redis cannot be reached. Raised for a submission only when nothing of it was sent."""

    def __init__(self, message: str = UNAVAILABLE) -> None:
        super().__init__(message)


#: Why a job of a batch was not written, when Redis failed for an earlier one.
NOT_ATTEMPTED = (
    "Not submitted: the job store (Redis) failed earlier in this batch; nothing was written for it"
)


class SubmissionOutcomeUnknownError(ServiceUnavailableError):
    """Redis failed after a job's write was sent (a timeout, or the connection lost before the
    reply), or replicas did not confirm it in time: the job may be stored, and then it runs.

    Retrying with the same idempotency key settles it (the stored job, or a new one, exactly
    once); a retry without a key may make a second job."""

    def __init__(self, job_id: str, reason: str | None = None) -> None:
        super().__init__(
            f"{reason or 'The job store (Redis) did not answer after the job was sent'}: it may or may "
            f"not have been stored (as {job_id}, and then it runs). Retry with the same idempotency "
            "key to get exactly one job; a retry without one may create a second job."
        )
        self.job_id = job_id


class IdempotencyConflictError(GqlJobsError):
    def __init__(self, key_digest: str) -> None:
        super().__init__("This idempotency key was already used for a different request")
        self.key_digest = key_digest


class RateLimitedError(GqlJobsError):
    def __init__(self, retry_after_seconds: float) -> None:
        super().__init__(f"Too many submissions; retry in {retry_after_seconds:.1f} s")
        self.retry_after_seconds = retry_after_seconds


class TooManySubscriptionsError(GqlJobsError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Too many subscriptions: this API key may hold {limit} at once in this server process; "
            "end one before starting another"
        )
        self.limit = limit


class TooManyConcurrentReadsError(GqlJobsError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Too many expensive reads at once for this principal (at most {limit}); retry shortly"
        )
        self.limit = limit


class UnauthenticatedError(GqlJobsError):
    def __init__(self) -> None:
        super().__init__("A valid API key is required (Authorization: Bearer <key>, or X-API-Key)")


class ForbiddenError(GqlJobsError):
    def __init__(self, scope: str, why: str | None = None) -> None:
        super().__init__(f"This API key lacks the {scope!r} scope" + (f": {why}" if why else ""))
        self.scope = scope
