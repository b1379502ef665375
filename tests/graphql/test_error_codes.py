"""Every error has a code: each `Error` member of the schema answers `code`, the same `ErrorCode`
the same failure carries as a top-level error's `extensions.code`."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from graphql import GraphQLEnumType, GraphQLInterfaceType, GraphQLNonNull

from gql_jobs import errors as domain
from gql_jobs.errors import ErrorCode
from gql_jobs.graphql import errors
from gql_jobs.graphql.schema import build_schema
from tests.auth_helpers import Caller, api_keys_setting
from tests.conftest import make_settings
from tests.graphql_helpers import client_with, data

pytestmark = pytest.mark.integration

#: One of each failure the service raises on purpose (a new one must be added here: see below).
SAMPLES: list[domain.GqlJobsError] = [
    domain.UnknownTaskError("no_such_task"),
    domain.InvalidPayloadError([domain.FieldError(("count",), "not an int", "int_parsing")]),
    domain.PayloadTooLargeError(limit_bytes=10, actual_bytes=20),
    domain.InvalidRequestError("queue", "bad name"),
    domain.RqFeatureUnavailableError("concurrency", "RQ >= 3.0", "2.12"),
    domain.BatchTooLargeError(limit=1, actual=2),
    domain.JobNotFoundError("JOB-x"),
    domain.JobDeletedError("JOB-x"),
    domain.InvalidJobStateError("JOB-x", "finished", "cancel"),
    domain.InvalidCursorError("nope"),
    domain.ServiceUnavailableError(),
    domain.SubmissionOutcomeUnknownError("JOB-x"),
    domain.IdempotencyConflictError("digest"),
    domain.RateLimitedError(1.5),
    domain.TooManySubscriptionsError(1),
    domain.TooManyConcurrentReadsError(1),
    domain.UnauthenticatedError(),
    domain.ForbiddenError("admin"),
]


def _subclasses(cls: type[domain.GqlJobsError]) -> set[type[domain.GqlJobsError]]:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *_subclasses(direct)}}


def _members() -> dict[type[domain.GqlJobsError], errors.Error]:
    """Each sample's union member, for the failures that have one (the others are re-raised)."""
    members = {}
    for exc in SAMPLES:
        try:
            member = errors.error_member(exc, idempotency_key="key-1")
        except domain.GqlJobsError as raised:
            if raised is not exc:
                raise
            continue
        members[type(exc)] = member
    return members


def test_the_samples_cover_every_domain_error() -> None:
    assert {type(exc) for exc in SAMPLES} == _subclasses(domain.GqlJobsError)


def test_every_domain_error_has_its_own_code() -> None:
    assert set(errors.CODES) == _subclasses(domain.GqlJobsError)


def test_the_error_interface_requires_a_code_of_the_error_code_enum() -> None:
    schema = build_schema(make_settings())._schema
    interface = schema.get_type("Error")
    assert isinstance(interface, GraphQLInterfaceType)
    code_type = interface.fields["code"].type
    assert isinstance(code_type, GraphQLNonNull) and isinstance(code_type.of_type, GraphQLEnumType)
    assert code_type.of_type.name == "ErrorCode"
    assert set(code_type.of_type.values) == {code.name for code in ErrorCode}


def test_every_error_member_of_the_schema_is_made_with_its_failures_code() -> None:
    schema = build_schema(make_settings())._schema
    interface = schema.get_type("Error")
    assert isinstance(interface, GraphQLInterfaceType)
    implementations = {t.name for t in schema.get_implementations(interface).objects}
    members = _members()

    # Every member type is made by `error_member` from some failure (none is built some other way)...
    assert {type(member).__name__ for member in members.values()} == implementations
    # ...and answers the code the same failure carries as a top-level error.
    for failure, member in members.items():
        exc = next(e for e in SAMPLES if type(e) is failure)
        top_level = errors.query_error(exc).extensions
        assert top_level is not None
        assert (failure.__name__, member.code) == (failure.__name__, ErrorCode(top_level["code"]))


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (domain.UnauthenticatedError, ErrorCode.UNAUTHENTICATED),
        (domain.ForbiddenError, ErrorCode.FORBIDDEN),
        (domain.ServiceUnavailableError, ErrorCode.SERVICE_UNAVAILABLE),
        (domain.SubmissionOutcomeUnknownError, ErrorCode.SUBMISSION_OUTCOME_UNKNOWN),
        (domain.JobNotFoundError, ErrorCode.NOT_FOUND),
        (domain.UnknownTaskError, ErrorCode.BAD_USER_INPUT),
        (domain.RateLimitedError, ErrorCode.RATE_LIMITED),
    ],
)
def test_one_member_type_may_answer_the_code_of_which_failure_it_is(
    failure: type[domain.GqlJobsError], code: ErrorCode
) -> None:
    assert _members()[failure].code is code


SUBMIT_CODE = """
mutation Submit($input: SubmitJobInput!) {
  submitJob(input: $input) { __typename ... on Error { code message } }
}
"""


def test_a_member_answers_its_code_over_http(client: TestClient) -> None:
    result = data(client, SUBMIT_CODE, input={"task": "no_such_task"})["submitJob"]

    assert (result["__typename"], result["code"]) == ("UnknownTaskError", "BAD_USER_INPUT")


def _submit_code(caller: Caller) -> dict[str, Any]:
    body = caller.gql(SUBMIT_CODE, input={"task": "echo"})
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["submitJob"]
    return result


def test_unauthorized_answers_unauthenticated_or_forbidden_over_http() -> None:
    with client_with(api_keys=api_keys_setting()) as test_client:
        nobody = _submit_code(Caller(test_client, None))
        reader = _submit_code(Caller(test_client, "key-alice-reader"))

    assert (nobody["__typename"], nobody["code"]) == ("UnauthorizedError", "UNAUTHENTICATED")
    assert (reader["__typename"], reader["code"]) == ("UnauthorizedError", "FORBIDDEN")
