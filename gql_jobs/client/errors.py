"""What the client raises: the API's result-union members as exceptions of the same names, and the
failures that happen before or after the API answers.

ClientError
 ├── ApiError                         a member of a result union (its `__typename` is the class name),
 │    │                               .code (its `ErrorCode`, the server's code for that failure)
 │    ├── UnknownTaskError            .task
 │    ├── InvalidPayloadError         .field_errors (each with .path, .message, .code)
 │    ├── PayloadTooLargeError        .limit_bytes, .actual_bytes
 │    ├── InvalidInputError           .field
 │    ├── JobNotFoundError            .job_id
 │    ├── InvalidJobStateError        .job_id, .status
 │    ├── IdempotencyConflictError    .idempotency_key
 │    ├── RateLimitedError            .retry_after_seconds
 │    ├── UnauthorizedError           .required_scope (also: a key refused over HTTP or WebSocket)
 │    └── ServiceUnavailableError     .retry_after_seconds
 │         └── SubmissionOutcomeUnknownError  .job_id, .idempotency_key
 ├── ServerUnreachableError           no answer from the server (after the retries)
 ├── RequestError                     the server refused the request itself (a GraphQL error)
 ├── BatchSubmitError                 some jobs of `submit_many` were refused (.results)
 └── JobFailedError                   `wait`: the job ended FAILED, STOPPED or CANCELED (.job)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from gql_jobs.errors import ErrorCode

if TYPE_CHECKING:
    from gql_jobs.client._generated.fragments import JobFields


class ClientError(Exception):
    """Everything the client raises on purpose; `str()` is one line a person can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class FieldError:
    """One problem found in a payload: where (keys and list indexes), what, and pydantic's kind."""

    path: tuple[str, ...]
    message: str
    code: str


class ApiError(ClientError):
    """A result-union member other than success. Subclasses are named as the schema's types and
    carry their fields in snake case (as the generated models name them). `code` is the member's
    `code` (the one a program switches on: e.g. `UnauthorizedError` is UNAUTHENTICATED or FORBIDDEN);
    the client sets it too when it raises one of these itself (a key refused over HTTP, say)."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, code: ErrorCode, **fields: Any) -> None:
        super().__init__(message)
        self.code = code
        self.fields = fields
        for name, value in fields.items():
            setattr(self, name, value)


class UnknownTaskError(ApiError):
    task: str


class InvalidPayloadError(ApiError):
    field_errors: list[FieldError]

    def __str__(self) -> str:
        problems = "; ".join(f"{'.'.join(e.path) or '(payload)'}: {e.message}" for e in self.field_errors)
        return f"{self.message}: {problems}" if problems and problems not in self.message else self.message


class PayloadTooLargeError(ApiError):
    limit_bytes: int
    actual_bytes: int


class InvalidInputError(ApiError):
    field: str


class JobNotFoundError(ApiError):
    job_id: str


class InvalidJobStateError(ApiError):
    job_id: str
    status: str


class IdempotencyConflictError(ApiError):
    idempotency_key: str


class RateLimitedError(ApiError):
    retryable = True
    retry_after_seconds: float


class UnauthorizedError(ApiError):
    required_scope: str | None


class ServiceUnavailableError(ApiError):
    retryable = True
    retry_after_seconds: float


class SubmissionOutcomeUnknownError(ServiceUnavailableError):
    """Retried with the same idempotency key, this yields exactly one job."""

    job_id: str
    idempotency_key: str | None


class ServerUnreachableError(ClientError):
    pass


class RequestError(ClientError):
    """A GraphQL error (not a union member): `code` is its `extensions.code`, when it has one."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class BatchSubmitError(ClientError):
    """Some jobs of a batch were refused: `results` holds, in input order, each job or its error."""

    def __init__(self, results: list[JobFields | ApiError]) -> None:
        refused = [r for r in results if isinstance(r, ApiError)]
        super().__init__(f"{len(refused)} of {len(results)} jobs were refused; first: {refused[0]}")
        self.results = results


class JobFailedError(ClientError):
    """The job `wait` waited for did not finish: its error's type, message and traceback are here."""

    def __init__(self, job: JobFields) -> None:
        error = job.error
        what = (
            f"{error.type_}: {error.message}" if error and error.type_ else (error.message if error else "")
        )
        super().__init__(f"job {job.id} {job.status.value}" + (f": {what}" if what else ""))
        self.job = job
        self.error_type = error.type_ if error else None
        self.traceback = error.traceback if error else None


#: Each union member's `__typename` -> its exception.
API_ERRORS: dict[str, type[ApiError]] = {
    cls.__name__: cls
    for cls in (
        UnknownTaskError,
        InvalidPayloadError,
        PayloadTooLargeError,
        InvalidInputError,
        JobNotFoundError,
        InvalidJobStateError,
        IdempotencyConflictError,
        RateLimitedError,
        UnauthorizedError,
        ServiceUnavailableError,
        SubmissionOutcomeUnknownError,
    )
}
#: Fields the operations alias (one selection set may not give a name two types): their schema names.
_ALIASES = {
    "rate_limit_retry_after_seconds": "retry_after_seconds",
    "outcome_idempotency_key": "idempotency_key",
}


def api_error(member: Any) -> ApiError:
    """The exception for a generated union-member model (`typename__`, `message`, its fields)."""
    data = member.model_dump(exclude={"typename__", "message", "code"})
    fields = {_ALIASES.get(name, name): value for name, value in data.items()}
    if "field_errors" in fields:
        fields["field_errors"] = [
            FieldError(tuple(e["path"]), e["message"], e["code"]) for e in fields["field_errors"]
        ]
    return API_ERRORS[member.typename__](member.message, code=ErrorCode(member.code.value), **fields)
