"""A typed Python client for gql-jobs' public API (GraphQL over HTTP and WebSocket), sync and async.

    from gql_jobs.client import GqlJobsClient

    with GqlJobsClient("https://jobs.example.com", api_key="gqljobs_...") as client:
        job = client.submit("add", {"a": 1, "b": 2})
        print(client.wait(job.id, timeout=60))

It needs the `client` extra (`pip install 'gql-jobs[client]'`); the server never imports it. The
typed layer (`_generated/`) is made from `schema.graphql` and `operations/*.graphql` by
ariadne-codegen: run scripts/generate-client after changing either.
"""

from gql_jobs.client._generated.enums import AttemptOutcome, BulkSkipCode, JobEventType, JobOrder, JobStatus
from gql_jobs.client._generated.input_types import JobFilter, RetryInput, SubmitJobInput
from gql_jobs.client.async_client import (
    FINAL_STATUSES,
    AsyncGqlJobsClient,
    Job,
    JobDetail,
    JobEvent,
    JobStats,
    Queue,
    Task,
    Worker,
    job_input,
    new_idempotency_key,
)
from gql_jobs.client.bulk import BulkOutcome, BulkSkip
from gql_jobs.client.config import ClientConfig
from gql_jobs.client.errors import (
    ApiError,
    BatchSubmitError,
    ClientError,
    FieldError,
    IdempotencyConflictError,
    InvalidInputError,
    InvalidJobStateError,
    InvalidPayloadError,
    JobFailedError,
    JobNotFoundError,
    PayloadTooLargeError,
    RateLimitedError,
    RequestError,
    ServerUnreachableError,
    ServiceUnavailableError,
    SubmissionOutcomeUnknownError,
    UnauthorizedError,
    UnknownTaskError,
)
from gql_jobs.client.sync_client import GqlJobsClient

__all__ = [
    "FINAL_STATUSES",
    "ApiError",
    "AsyncGqlJobsClient",
    "AttemptOutcome",
    "BatchSubmitError",
    "BulkOutcome",
    "BulkSkip",
    "BulkSkipCode",
    "ClientConfig",
    "ClientError",
    "FieldError",
    "GqlJobsClient",
    "IdempotencyConflictError",
    "InvalidInputError",
    "InvalidJobStateError",
    "InvalidPayloadError",
    "Job",
    "JobDetail",
    "JobEvent",
    "JobEventType",
    "JobFailedError",
    "JobFilter",
    "JobNotFoundError",
    "JobOrder",
    "JobStats",
    "JobStatus",
    "PayloadTooLargeError",
    "Queue",
    "RateLimitedError",
    "RequestError",
    "RetryInput",
    "ServerUnreachableError",
    "ServiceUnavailableError",
    "SubmissionOutcomeUnknownError",
    "SubmitJobInput",
    "Task",
    "UnauthorizedError",
    "UnknownTaskError",
    "Worker",
    "job_input",
    "new_idempotency_key",
]
