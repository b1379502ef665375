"""Expected failures as schema types (members of result unions), mapped from domain exceptions.

Every member answers `code`, the same `ErrorCode` the same failure carries as a top-level error's
`extensions.code` (both read `CODES`), so a client switches on one thing whichever way it failed.
`code` is a required field of `Error` and only `error_member` builds members, from `CODES`: a new
member cannot be made without one.

Anything that is not a `GqlJobsError` is unexpected and masked by `MaskErrors` (see `schema.py`);
GraphQL's own syntax, validation and limit errors are not masked.
"""

from __future__ import annotations

import functools

import strawberry
from graphql import GraphQLError

from gql_jobs import errors as domain
from gql_jobs.errors import ErrorCode

#: What each code means, for the schema's documentation (every value of an enum has one).
CODE_DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.BAD_USER_INPUT: "The input is wrong (a task name, a payload, an option, a cursor): fix it.",
    ErrorCode.PAYLOAD_TOO_LARGE: "The payload is larger than the server accepts.",
    ErrorCode.RQ_VERSION_REQUIRED: (
        "The input needs a newer RQ than the server runs (`concurrency` needs RQ 3): `message` says which."
    ),
    ErrorCode.BATCH_TOO_LARGE: "More jobs in one batch than the server accepts.",
    ErrorCode.INVALID_JOB_STATE: "The operation does not apply to the job in its current status.",
    ErrorCode.IDEMPOTENCY_CONFLICT: "The idempotency key was already used for a different request.",
    ErrorCode.RATE_LIMITED: "Submitting faster than the rate limit; nothing was done, retry later.",
    ErrorCode.SERVICE_UNAVAILABLE: "The job store (Redis) cannot be reached; retry shortly.",
    ErrorCode.SUBMISSION_OUTCOME_UNKNOWN: (
        "The job store failed after the job was sent: it may be stored. Retry with the same idempotency key."
    ),
    ErrorCode.UNAUTHENTICATED: "No valid API key was sent.",
    ErrorCode.FORBIDDEN: "The API key lacks the scope this needs.",
    ErrorCode.TOO_MANY_SUBSCRIPTIONS: "The API key holds as many live subscriptions as it may.",
    ErrorCode.CONCURRENCY_LIMITED: "Too many expensive reads at once for this principal; retry shortly.",
    ErrorCode.INTERNAL_SERVER_ERROR: "An unexpected failure; its details are masked (and logged).",
    ErrorCode.NOT_FOUND: "No job has this id (or it has expired); over HTTP, no such path.",
    ErrorCode.JOB_DELETED: "The followed job was deleted.",
    ErrorCode.GRAPHQL_PARSE_FAILED: "The document is not valid GraphQL syntax.",
    ErrorCode.GRAPHQL_VALIDATION_FAILED: "The document does not validate against the schema.",
    ErrorCode.DOCUMENT_TOO_LARGE: "The document has more tokens than the server accepts.",
    ErrorCode.QUERY_TOO_DEEP: "The document nests deeper than the server accepts.",
    ErrorCode.TOO_MANY_ALIASES: "The document has more aliases than the server accepts.",
    ErrorCode.QUERY_TOO_COMPLEX: "The document would cost more than the server accepts.",
    ErrorCode.PERSISTED_QUERY_NOT_FOUND: "No document is stored for this hash: send it in full.",
    ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED: "Documents sent by hash are off here: send it in full.",
    ErrorCode.PERSISTED_QUERY_HASH_MISMATCH: "The document does not have the hash sent with it.",
    ErrorCode.PERSISTED_DOCUMENT_REQUIRED: "This server runs only its manifest's documents, by hash.",
    ErrorCode.BAD_REQUEST: "The HTTP request is not a GraphQL request the server can read.",
    ErrorCode.METHOD_NOT_ALLOWED: "Not with this HTTP method (e.g. a mutation by GET).",
    ErrorCode.JSON_TOO_DEEP: "The request's JSON nests deeper than the server reads.",
    ErrorCode.STREAMING_REQUIRED: (
        "A subscription over HTTP without a streaming `Accept` (text/event-stream or multipart/mixed)."
    ),
    ErrorCode.BATCHING_DISABLED: "Batched requests (a JSON list of operations) are off.",
    ErrorCode.TOO_MANY_OPERATIONS: "More operations in one batch than the server accepts.",
    ErrorCode.ALREADY_INITIALISED: "The WebSocket connection was already initialised.",
    ErrorCode.TOO_MANY_CONNECTIONS: "The API key holds as many WebSocket connections as it may.",
}

# The GraphQL enum is `ErrorCode` itself (its values its members' names, which are their values),
# so codegen types a member's `code` and a top-level error's `extensions.code` alike.
strawberry.enum(
    ErrorCode,
    name="ErrorCode",
    description=(
        "What kind of failure, for programs: a result-union member's `code`, and the `extensions.code` "
        "of a top-level error (the same code for the same failure)."
    ),
)
for _value in ErrorCode.__strawberry_definition__.values:  # type: ignore[attr-defined]
    _value.description = CODE_DESCRIPTIONS[ErrorCode(_value.value)]


@strawberry.interface(description="An expected failure: every error member of a result union has these.")
class Error:
    message: str = strawberry.field(description="What went wrong, for humans.")
    code: ErrorCode = strawberry.field(
        description="What kind of failure, for programs: the same code as this failure's top-level error."
    )


@strawberry.type(description="No task is registered under this name.")
class UnknownTaskError(Error):
    task: str = strawberry.field(description="The name that was given.")


@strawberry.type(description="One problem found in a payload.")
class FieldError:
    path: list[str] = strawberry.field(description="Where in the payload (keys and list indexes).")
    message: str = strawberry.field(description="What is wrong there.")
    code: str = strawberry.field(description="A machine-readable kind of problem (pydantic's error type).")


@strawberry.type(description="The payload does not match the task's input model.")
class InvalidPayloadError(Error):
    field_errors: list[FieldError] = strawberry.field(description="Each problem found.")


@strawberry.type(description="The payload is larger than the server accepts.")
class PayloadTooLargeError(Error):
    limit_bytes: int = strawberry.field(description="The limit, in bytes of compact JSON.")
    actual_bytes: int = strawberry.field(description="The payload's size, in bytes of compact JSON.")


@strawberry.type(description="A submission option is out of range (queue name, TTL, tags, schedule...).")
class InvalidInputError(Error):
    field: str = strawberry.field(description="The input field at fault.")


@strawberry.type(description="No job has this id (or it has expired); over HTTP, no such path.")
class JobNotFoundError(Error):
    job_id: strawberry.ID = strawberry.field(description="The id that was given.")


@strawberry.type(description="The operation does not apply to the job in its current status.")
class InvalidJobStateError(Error):
    job_id: strawberry.ID = strawberry.field(description="The job.")
    status: str = strawberry.field(description="Its status when the operation was refused.")


@strawberry.type(
    description=(
        "The job store (Redis) cannot be reached; retry shortly. For a submission, nothing of the job "
        "was written (when its write may have reached Redis the answer is SubmissionOutcomeUnknownError "
        "instead). Cancel, requeue and delete are safe to retry."
    )
)
class ServiceUnavailableError(Error):
    retry_after_seconds: int = strawberry.field(description="A sensible wait before retrying.")


@strawberry.type(
    description=(
        "The job store (Redis) failed after the job was sent to it (a timeout, a connection lost "
        "before the reply, or replicas not confirming in time): the job may or may not be stored, "
        "and if it is, it runs. Retry with the same `idempotencyKey` to get exactly one job (the "
        "stored one, or a new one); a retry without a key may create a second job."
    )
)
class SubmissionOutcomeUnknownError(Error):
    job_id: strawberry.ID = strawberry.field(
        description="The id the job has if it was stored (it may appear a moment after this answer)."
    )
    idempotency_key: str | None = strawberry.field(
        description="The key given, to retry with; null when none was (a retry may then duplicate)."
    )
    retry_after_seconds: int = strawberry.field(description="A sensible wait before retrying.")


@strawberry.type(description="No valid API key was sent, or the key lacks the scope this needs.")
class UnauthorizedError(Error):
    required_scope: str | None = strawberry.field(
        description="The scope missing; null when no valid key was sent."
    )


@strawberry.type(description="The idempotency key was already used, within its TTL, for a different request.")
class IdempotencyConflictError(Error):
    idempotency_key: str = strawberry.field(description="The key that was given.")


@strawberry.type(description="Submitting faster than this principal's rate limit; nothing was enqueued.")
class RateLimitedError(Error):
    retry_after_seconds: float = strawberry.field(description="When enough capacity will be back.")


def error_member(exc: domain.GqlJobsError, idempotency_key: str | None = None) -> Error:
    """The union member for an expected failure (unexpected ones are re-raised, then masked), with
    the code `query_error` would give it."""
    return _member(exc, code_of(exc), idempotency_key)


@functools.singledispatch
def _member(exc: domain.GqlJobsError, code: ErrorCode, idempotency_key: str | None) -> Error:
    raise exc


@_member.register
def _(exc: domain.UnknownTaskError, code: ErrorCode, idempotency_key: str | None) -> Error:
    return UnknownTaskError(message=exc.message, code=code, task=exc.task)


@_member.register
def _(exc: domain.InvalidPayloadError, code: ErrorCode, idempotency_key: str | None) -> Error:
    errors = [
        FieldError(path=[str(p) for p in e.path], message=e.message, code=e.type) for e in exc.field_errors
    ]
    return InvalidPayloadError(message=exc.message, code=code, field_errors=errors)


@_member.register
def _(exc: domain.PayloadTooLargeError, code: ErrorCode, idempotency_key: str | None) -> Error:
    return PayloadTooLargeError(
        message=exc.message, code=code, limit_bytes=exc.limit_bytes, actual_bytes=exc.actual_bytes
    )


@_member.register
def _(exc: domain.JobNotFoundError, code: ErrorCode, idempotency_key: str | None) -> Error:
    return JobNotFoundError(message=exc.message, code=code, job_id=strawberry.ID(exc.job_id))


@_member.register
def _(exc: domain.InvalidJobStateError, code: ErrorCode, idempotency_key: str | None) -> Error:
    return InvalidJobStateError(
        message=exc.message, code=code, job_id=strawberry.ID(exc.job_id), status=exc.status
    )


@_member.register
def _(exc: domain.ServiceUnavailableError, code: ErrorCode, idempotency_key: str | None) -> Error:
    return ServiceUnavailableError(message=exc.message, code=code, retry_after_seconds=1)


@_member.register
def _(exc: domain.SubmissionOutcomeUnknownError, code: ErrorCode, idempotency_key: str | None) -> Error:
    return SubmissionOutcomeUnknownError(
        message=exc.message,
        code=code,
        job_id=strawberry.ID(exc.job_id),
        idempotency_key=idempotency_key,
        retry_after_seconds=1,
    )


@_member.register
def _(exc: domain.InvalidRequestError, code: ErrorCode, idempotency_key: str | None) -> Error:
    return InvalidInputError(message=exc.message, code=code, field=exc.field)


@_member.register
def _(exc: domain.UnauthenticatedError, code: ErrorCode, idempotency_key: str | None) -> Error:
    return UnauthorizedError(message=exc.message, code=code, required_scope=None)


@_member.register
def _(exc: domain.ForbiddenError, code: ErrorCode, idempotency_key: str | None) -> Error:
    return UnauthorizedError(message=exc.message, code=code, required_scope=exc.scope)


@_member.register
def _(exc: domain.IdempotencyConflictError, code: ErrorCode, idempotency_key: str | None) -> Error:
    return IdempotencyConflictError(message=exc.message, code=code, idempotency_key=idempotency_key or "")


@_member.register
def _(exc: domain.RateLimitedError, code: ErrorCode, idempotency_key: str | None) -> Error:
    return RateLimitedError(message=exc.message, code=code, retry_after_seconds=exc.retry_after_seconds)


#: The code of each failure, by its exact type: a top-level error's `extensions.code` and a
#: union member's `code` (any type missing: `DEFAULT_CODE`; a test holds every one to be here).
CODES: dict[type[domain.GqlJobsError], ErrorCode] = {
    domain.UnknownTaskError: ErrorCode.BAD_USER_INPUT,
    domain.InvalidPayloadError: ErrorCode.BAD_USER_INPUT,
    domain.InvalidRequestError: ErrorCode.BAD_USER_INPUT,
    domain.InvalidCursorError: ErrorCode.BAD_USER_INPUT,
    domain.PayloadTooLargeError: ErrorCode.PAYLOAD_TOO_LARGE,
    domain.BatchTooLargeError: ErrorCode.BATCH_TOO_LARGE,
    domain.InvalidJobStateError: ErrorCode.INVALID_JOB_STATE,
    domain.IdempotencyConflictError: ErrorCode.IDEMPOTENCY_CONFLICT,
    domain.RateLimitedError: ErrorCode.RATE_LIMITED,
    domain.ServiceUnavailableError: ErrorCode.SERVICE_UNAVAILABLE,
    domain.SubmissionOutcomeUnknownError: ErrorCode.SUBMISSION_OUTCOME_UNKNOWN,
    domain.RqFeatureUnavailableError: ErrorCode.RQ_VERSION_REQUIRED,
    domain.UnauthenticatedError: ErrorCode.UNAUTHENTICATED,
    domain.ForbiddenError: ErrorCode.FORBIDDEN,
    domain.TooManySubscriptionsError: ErrorCode.TOO_MANY_SUBSCRIPTIONS,
    domain.TooManyConcurrentReadsError: ErrorCode.CONCURRENCY_LIMITED,
    domain.JobNotFoundError: ErrorCode.NOT_FOUND,  # a query's is null or a member
    domain.JobDeletedError: ErrorCode.JOB_DELETED,
}
DEFAULT_CODE = ErrorCode.BAD_USER_INPUT


def code_of(exc: domain.GqlJobsError) -> ErrorCode:
    """The one code of a failure, however it is answered (a top-level error or a union member)."""
    return CODES.get(type(exc), DEFAULT_CODE)


def query_error(exc: domain.GqlJobsError) -> GraphQLError:
    """A top-level error for failures of queries (which return data, not unions), with a code."""
    return GraphQLError(exc.message, extensions={"code": code_of(exc).value})
