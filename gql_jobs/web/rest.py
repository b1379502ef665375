"""The lesson's REST contract, kept byte for byte: `POST /submit-job` and `GET /job-status/{id}`.

Shapes, field names, status values and error codes are the tutorial service's (see
`shared/reference/lesson-fastapi-rq.md`); legacy clients must not notice the move. Responses are
rendered here by hand (not by a `response_model`) because pydantic would print datetimes as `...Z`
where the lesson's FastAPI printed `...+00:00`.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from gql_jobs import jsonvalues
from gql_jobs.constants import LESSON_TAGS
from gql_jobs.domain import JobRecord, JobStatus, SubmitRequest
from gql_jobs.errors import (
    BatchTooLargeError,
    ForbiddenError,
    GqlJobsError,
    IdempotencyConflictError,
    InvalidPayloadError,
    InvalidRequestError,
    JobNotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    ServiceUnavailableError,
    SubmissionOutcomeUnknownError,
    UnauthenticatedError,
    UnknownTaskError,
)
from gql_jobs.web.deps import caller_of, service_of

router = APIRouter(tags=["REST (lesson-compatible)"])


class SafeJSONResponse(JSONResponse):
    """Starlette's JSON, except that a value JSON cannot carry, stored before submissions were
    checked (by an older version, or another RQ client), no longer makes the answer a 500: a
    non-finite number is sent as null, a lone surrogate escaped (`jsonvalues.utf8`)."""

    def render(self, content: Any) -> bytes:
        return jsonvalues.utf8(content)


class JobPayload(BaseModel):
    """The lesson's request body."""

    task: str = Field(examples=["heavy_compute"])
    payload: dict[str, Any] = Field(default_factory=dict)


class SubmitJobResponse(BaseModel):
    job_id: str = Field(examples=["JOB-7e5f0b1a-6a25-4d3b-bc7e-0f0bb0b8a5b0"])
    status: str = Field(examples=["queued"])
    submitted_at: str = Field(examples=["2025-10-28T03:40:21.331454+00:00"])


class JobStatusResponse(BaseModel):
    job_id: str
    status: str = Field(description="queued | started | finished | failed | deferred | scheduled | ...")
    meta: dict[str, Any] = Field(description="job_id, submitted_at, payload, task_name, tags (+ progress)")
    enqueued_at: str | None
    started_at: str | None
    ended_at: str | None
    result: Any = Field(description="The task's return value once finished, else null")
    exc_info: str | None = Field(description="The traceback once failed, else null")


class ErrorResponse(BaseModel):
    detail: str


class OutcomeUnknownResponse(ErrorResponse):
    job_id: str | None = Field(
        default=None,
        description="Only when the outcome is unknown: the id the job has if it was stored.",
    )


@router.post(
    "/submit-job",
    summary="Submit a job (lesson-compatible)",
    responses={
        200: {"model": SubmitJobResponse},
        400: {"model": ErrorResponse, "description": "Unknown task"},
        413: {"model": ErrorResponse, "description": "Payload too large"},
        503: {
            "model": OutcomeUnknownResponse,
            "description": (
                "Redis unavailable: nothing stored (`detail` only), or, with `job_id`, Redis failed after "
                "the job was sent: it may be stored as that job; retry with the same Idempotency-Key"
            ),
        },
    },
)
async def submit_job(
    body: JobPayload,
    http: Request,
    idempotency_key: Annotated[
        str | None, Header(description="Retry-safe submission: same key, same job")
    ] = None,
) -> JSONResponse:
    request = SubmitRequest(
        task=body.task, payload=body.payload, tags=LESSON_TAGS, idempotency_key=idempotency_key
    )
    record = (await service_of(http).submit(caller_of(http), request)).record
    return SafeJSONResponse(
        {"job_id": record.id, "status": record.status.value, "submitted_at": record.submitted_at}
    )


@router.get(
    "/job-status/{job_id}",
    summary="Read a job's status (lesson-compatible)",
    responses={
        200: {"model": JobStatusResponse},
        404: {"model": ErrorResponse, "description": "Job not found"},
        503: {"model": ErrorResponse, "description": "Redis unavailable"},
    },
)
async def job_status(job_id: str, request: Request) -> JSONResponse:
    return SafeJSONResponse(status_body(await service_of(request).get(caller_of(request), job_id)))


def status_body(record: JobRecord) -> dict[str, Any]:
    return {
        "job_id": record.id,
        "status": record.raw_status,
        "meta": record.meta,
        "enqueued_at": _iso(record.enqueued_at),
        "started_at": _iso(record.started_at),
        "ended_at": _iso(record.ended_at),
        "result": record.result if record.status == JobStatus.FINISHED else None,
        "exc_info": record.error.traceback if record.status == JobStatus.FAILED and record.error else None,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


_STATUS_CODES: list[tuple[type[GqlJobsError], int]] = [
    (UnknownTaskError, 400),
    (UnauthenticatedError, 401),
    (ForbiddenError, 403),
    (JobNotFoundError, 404),
    (IdempotencyConflictError, 409),
    (PayloadTooLargeError, 413),
    (BatchTooLargeError, 413),
    (RateLimitedError, 429),
    (ServiceUnavailableError, 503),
]


def _status_code(exc: GqlJobsError) -> int:
    for kind, code in _STATUS_CODES:
        if isinstance(exc, kind):
            return code
    return 422


def _headers(exc: GqlJobsError) -> dict[str, str] | None:
    if isinstance(exc, RateLimitedError):
        return {"Retry-After": str(max(1, math.ceil(exc.retry_after_seconds)))}
    if isinstance(exc, ServiceUnavailableError):
        return {"Retry-After": "1"}
    if isinstance(exc, UnauthenticatedError):
        return {"WWW-Authenticate": "Bearer"}
    return None


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    """Map service errors to the lesson's `{"detail": ...}` bodies."""
    assert isinstance(exc, GqlJobsError)
    code = _status_code(exc)
    headers = _headers(exc)
    if isinstance(exc, InvalidPayloadError):
        detail: Any = [
            {"type": e.type, "loc": ["body", "payload", *e.path], "msg": e.message} for e in exc.field_errors
        ]
    elif isinstance(exc, InvalidRequestError):
        detail = [{"type": "value_error", "loc": ["body", exc.field], "msg": exc.message}]
    elif isinstance(exc, JobNotFoundError):
        detail = "Job not found"
    else:
        detail = exc.message
    body: dict[str, Any] = {"detail": detail}
    if isinstance(exc, SubmissionOutcomeUnknownError):
        body["job_id"] = exc.job_id
    return SafeJSONResponse(body, status_code=code, headers=headers)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own 422 (its body quotes the input, which may be `NaN` or a lone surrogate)."""
    assert isinstance(exc, RequestValidationError)
    return SafeJSONResponse({"detail": jsonable_encoder(exc.errors())}, status_code=422)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.add_exception_handler(GqlJobsError, _domain_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
