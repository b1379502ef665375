"""Expected failures as schema types (members of result unions), mapped from domain exceptions.

Anything that is not a `GqlJobsError` is unexpected and masked by `MaskErrors` (see `schema.py`);
GraphQL's own syntax, validation and limit errors are not masked.
"""

from __future__ import annotations

import functools

import strawberry
from graphql import GraphQLError

from gql_jobs import errors as domain
from gql_jobs.errors import ErrorCode


@strawberry.interface(description="An expected failure: every error member of a result union has these.")
class Error:
    message: str = strawberry.field(description="What went wrong, for humans.")


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
    code: str = strawberry.field(
        default=ErrorCode.BAD_USER_INPUT.value,
        description=(
            "BAD_USER_INPUT, or RQ_VERSION_REQUIRED for an input that needs a newer RQ than the "
            "server runs (`message` says which)."
        ),
    )


@strawberry.type(description="No job has this id (or it has expired).")
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
    """The union member for an expected failure (unexpected ones are re-raised, then masked)."""
    return _member(exc, idempotency_key)


@functools.singledispatch
def _member(exc: domain.GqlJobsError, idempotency_key: str | None) -> Error:
    raise exc


@_member.register
def _(exc: domain.UnknownTaskError, idempotency_key: str | None) -> Error:
    return UnknownTaskError(message=exc.message, task=exc.task)


@_member.register
def _(exc: domain.InvalidPayloadError, idempotency_key: str | None) -> Error:
    errors = [
        FieldError(path=[str(p) for p in e.path], message=e.message, code=e.type) for e in exc.field_errors
    ]
    return InvalidPayloadError(message=exc.message, field_errors=errors)


@_member.register
def _(exc: domain.PayloadTooLargeError, idempotency_key: str | None) -> Error:
    return PayloadTooLargeError(
        message=exc.message, limit_bytes=exc.limit_bytes, actual_bytes=exc.actual_bytes
    )


@_member.register
def _(exc: domain.JobNotFoundError, idempotency_key: str | None) -> Error:
    return JobNotFoundError(message=exc.message, job_id=strawberry.ID(exc.job_id))


@_member.register
def _(exc: domain.InvalidJobStateError, idempotency_key: str | None) -> Error:
    return InvalidJobStateError(message=exc.message, job_id=strawberry.ID(exc.job_id), status=exc.status)


@_member.register
def _(exc: domain.ServiceUnavailableError, idempotency_key: str | None) -> Error:
    return ServiceUnavailableError(message=exc.message, retry_after_seconds=1)


@_member.register
def _(exc: domain.SubmissionOutcomeUnknownError, idempotency_key: str | None) -> Error:
    return SubmissionOutcomeUnknownError(
        message=exc.message,
        job_id=strawberry.ID(exc.job_id),
        idempotency_key=idempotency_key,
        retry_after_seconds=1,
    )


@_member.register
def _(exc: domain.InvalidRequestError, idempotency_key: str | None) -> Error:
    return InvalidInputError(message=exc.message, field=exc.field, code=exc.code.value)


@_member.register
def _(exc: domain.UnauthenticatedError, idempotency_key: str | None) -> Error:
    return UnauthorizedError(message=exc.message, required_scope=None)


@_member.register
def _(exc: domain.ForbiddenError, idempotency_key: str | None) -> Error:
    return UnauthorizedError(message=exc.message, required_scope=exc.scope)


@_member.register
def _(exc: domain.IdempotencyConflictError, idempotency_key: str | None) -> Error:
    return IdempotencyConflictError(message=exc.message, idempotency_key=idempotency_key or "")


@_member.register
def _(exc: domain.RateLimitedError, idempotency_key: str | None) -> Error:
    return RateLimitedError(message=exc.message, retry_after_seconds=exc.retry_after_seconds)


#: The code of a query's failure, by its exact type (any other: `DEFAULT_CODE`).
CODES: dict[type[domain.GqlJobsError], ErrorCode] = {
    domain.ServiceUnavailableError: ErrorCode.SERVICE_UNAVAILABLE,
    domain.BatchTooLargeError: ErrorCode.BATCH_TOO_LARGE,
    domain.InvalidCursorError: ErrorCode.BAD_USER_INPUT,
    domain.InvalidRequestError: ErrorCode.BAD_USER_INPUT,
    domain.RqFeatureUnavailableError: ErrorCode.RQ_VERSION_REQUIRED,
    domain.UnauthenticatedError: ErrorCode.UNAUTHENTICATED,
    domain.ForbiddenError: ErrorCode.FORBIDDEN,
    domain.TooManySubscriptionsError: ErrorCode.TOO_MANY_SUBSCRIPTIONS,
    domain.TooManyConcurrentReadsError: ErrorCode.CONCURRENCY_LIMITED,
    domain.JobNotFoundError: ErrorCode.NOT_FOUND,  # a followed job (a query's is null or a member)
    domain.JobDeletedError: ErrorCode.JOB_DELETED,
}
DEFAULT_CODE = ErrorCode.BAD_USER_INPUT


def query_error(exc: domain.GqlJobsError) -> GraphQLError:
    """A top-level error for failures of queries (which return data, not unions), with a code."""
    return GraphQLError(exc.message, extensions={"code": CODES.get(type(exc), DEFAULT_CODE).value})
