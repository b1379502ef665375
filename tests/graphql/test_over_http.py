"""GraphQL over HTTP as the spec and real clients have it (`graphql.negotiation`, `graphql.router`):
the spec's media type and status codes, SSE only when preferred, a clear refusal of subscriptions
sent as plain requests, and `extensions.code` on every error."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from gql_jobs.app import create_app
from gql_jobs.graphql.negotiation import prefers_event_stream, response_media_type
from tests.conftest import make_settings
from tests.server_helpers import running_server

SPEC = "application/graphql-response+json"
#: What urql sends on every request.
URQL = (
    "application/graphql-response+json, application/graphql+json, application/json, "
    "text/event-stream, multipart/mixed"
)
SUBSCRIPTION = 'subscription { jobUpdates(id: "JOB-x") { id } }'


@pytest.mark.parametrize(
    ("accept", "media_type", "stream"),
    [
        (None, "application/json", False),
        ("*/*", "application/json", False),
        ("application/json", "application/json", False),
        (SPEC, SPEC, False),
        (f"{SPEC}, application/json;q=0.9", SPEC, False),  # what the spec tells clients to send
        (URQL, SPEC, False),
        (f"{SPEC};q=0.5, application/json", "application/json", False),
        ("text/event-stream", "application/json", True),  # graphql-sse's client
        ("text/event-stream, application/json", "application/json", True),
        ("application/json;q=0.5, text/event-stream", "application/json", True),
        ("application/json, text/event-stream;q=1", "application/json", False),
        ("text/event-stream;q=0, application/json", "application/json", False),
        ("text/*, */*", "application/json", False),  # wildcards never start a stream
        ("text/html", "application/json", False),
        ("multipart/mixed;subscriptionSpec=1.0, application/json", "application/json", False),
    ],
)
def test_negotiation_follows_the_clients_preferences(
    accept: str | None, media_type: str, stream: bool
) -> None:
    assert response_media_type(accept) == media_type
    assert prefers_event_stream(accept) is stream


def test_a_huge_accept_header_is_read_up_to_a_bound() -> None:
    accept = ", ".join(["text/plain"] * 5000 + ["text/event-stream"])
    assert prefers_event_stream(accept) is False  # past the 32 ranges read
    assert response_media_type(accept) == "application/json"


def post(client: TestClient, accept: str | None, **body: Any) -> Any:
    headers = {"accept": accept} if accept else {}
    return client.post("/graphql", json=body, headers=headers)


def test_urql_gets_json_not_an_event_stream(client: TestClient) -> None:
    response = post(client, URQL, query="{ __typename }")
    assert response.status_code == 200
    assert response.headers["content-type"] == SPEC
    assert response.json() == {"data": {"__typename": "Query"}}


def test_an_event_stream_client_still_gets_one(client: TestClient) -> None:
    response = post(client, "text/event-stream", query="{ __typename }")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert 'data: {"data":{"__typename":"Query"}}' in response.text


#: A request error of each kind, and the code it carries.
REQUEST_ERRORS: dict[str, tuple[dict[str, Any], str]] = {
    "parse": ({"query": "{ job("}, "GRAPHQL_PARSE_FAILED"),
    "validation": ({"query": "{ jobz }"}, "GRAPHQL_VALIDATION_FAILED"),
    "variables": (
        {"query": "query ($id: ID!) { job(id: $id) { id } }", "variables": {"id": {"a": 1}}},
        "BAD_USER_INPUT",
    ),
    "depth": (
        {"query": "{ job(id: 1) " + "{ dependsOn " * 11 + "{ id }" + " }" * 11 + " }"},
        "QUERY_TOO_DEEP",
    ),
    "aliases": (
        {"query": "{ " + " ".join(f"a{i}: __typename" for i in range(31)) + " }"},
        "TOO_MANY_ALIASES",
    ),
    "tokens": ({"query": "{ " + "__typename " * 2001 + "}"}, "GRAPHQL_PARSE_FAILED"),
    "cost": (
        {"query": "{ jobs(first: 100) { edges { node { " + "id " * 120 + "} } } }"},
        "QUERY_TOO_COMPLEX",
    ),
    "size": ({"query": "{ __typename }" + " " * 40_000}, "DOCUMENT_TOO_LARGE"),
}


@pytest.mark.parametrize(("body", "code"), REQUEST_ERRORS.values(), ids=REQUEST_ERRORS.keys())
def test_request_errors_are_400_without_data_under_the_spec_media_type(
    client: TestClient, body: dict[str, Any], code: str
) -> None:
    response = post(client, SPEC, **body)
    assert response.status_code == 400
    assert response.headers["content-type"] == SPEC
    answer = response.json()
    assert "data" not in answer
    assert [e["extensions"]["code"] for e in answer["errors"]] == [code]


@pytest.mark.parametrize(("body", "code"), REQUEST_ERRORS.values(), ids=REQUEST_ERRORS.keys())
def test_request_errors_stay_200_with_null_data_for_legacy_json_clients(
    client: TestClient, body: dict[str, Any], code: str
) -> None:
    response = post(client, "application/json", **body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["data"] is None
    assert [e["extensions"]["code"] for e in response.json()["errors"]] == [code]


def test_an_unexpected_failure_is_masked_with_a_code(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> object:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(client.app.state.service, "get", broken)  # type: ignore[attr-defined]
    response = post(client, SPEC, query='{ job(id: "JOB-x") { id } }')
    assert response.status_code == 200  # a field error: the operation ran, `data` is there
    answer = response.json()
    assert answer["data"] == {"job": None}
    assert answer["errors"][0]["message"] == "Unexpected error."
    assert answer["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "secret" not in response.text


@pytest.mark.parametrize("accept", [URQL, "application/json", None])
def test_a_subscription_sent_as_a_plain_request_is_a_clear_400(
    client: TestClient, accept: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response = post(client, accept, query=SUBSCRIPTION)
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "STREAMING_REQUIRED"
    assert "text/event-stream" in error["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no traceback logged


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("{ __typename }", None),
        ('mutation { cancelJob(id: "JOB-x") { __typename } }', None),
        ("{ nope }", "GRAPHQL_VALIDATION_FAILED"),
        ("{", "GRAPHQL_PARSE_FAILED"),
    ],
)
def test_a_query_sent_with_apollos_subscription_accept_is_answered_as_json(
    client: TestClient, query: str, code: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """The multipart transport serves subscriptions only; the client also accepts JSON, so any other
    operation (or a document that fails to parse or validate) is answered as JSON, never as a
    masked error inside a multipart stream."""
    with caplog.at_level(logging.ERROR):
        response = post(client, APOLLO_SUBSCRIPTION_ACCEPT, query=query)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    if code is None:
        assert response.status_code == 200
        assert "errors" not in body, body
    else:
        assert body["errors"][0]["extensions"]["code"] == code
    assert not [r for r in caplog.records if r.exc_info]  # no server traceback


@pytest.mark.parametrize("accept", [SPEC, "application/json"])
def test_refusals_before_graphql_runs_are_graphql_json_of_the_negotiated_type(
    client: TestClient, accept: str
) -> None:
    response = client.post(
        "/graphql", content=b"{", headers={"accept": accept, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == accept
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_a_field_error_under_the_spec_media_type_is_200_with_data(client: TestClient) -> None:
    response = post(client, SPEC, query='{ jobs(after: "bogus") { edges { cursor } } }')
    assert response.status_code == 200
    assert "data" in response.json()
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


#: What Apollo Client's HttpLink sends for a subscription.
APOLLO_SUBSCRIPTION_ACCEPT = 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json'
JOB_UPDATES = "subscription ($id: ID!) { jobUpdates(id: $id) { id status result } }"
SUBMIT_ECHO = """mutation {
  submitJob(input: {task: "echo", payload: {n: 2}}) { ... on SubmitJobSuccess { job { id } } }
}"""


def multipart_parts(text: str) -> list[Any]:
    """The JSON bodies of a `multipart/mixed; boundary=graphql` stream's parts, in order."""
    parts = []
    for segment in text.split("--graphql"):
        head, separator, body = segment.partition("\r\n\r\n")
        if separator and "content-type: application/json" in head.lower():
            parts.append(json.loads(body))
    return parts


@pytest.mark.integration
def test_apollos_multipart_subscription_follows_a_job_a_worker_finishes(
    redis_client: redis.Redis, drain: Callable[..., None]
) -> None:
    with running_server(create_app(make_settings(poll_interval=0.2))) as base:
        submitted = httpx.post(f"{base}/graphql", json={"query": SUBMIT_ECHO})
        job_id = submitted.json()["data"]["submitJob"]["job"]["id"]
        received = ""
        body = {"query": JOB_UPDATES, "variables": {"id": job_id}}
        headers = {"accept": APOLLO_SUBSCRIPTION_ACCEPT}
        with httpx.stream("POST", f"{base}/graphql", json=body, headers=headers, timeout=30) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("multipart/mixed;boundary=graphql")
            drained = False
            for chunk in response.iter_text():
                received += chunk
                if not drained and any("payload" in p for p in multipart_parts(received)):
                    drain()  # the first update (QUEUED) arrived: now let a worker finish the job
                    drained = True
    assert received.rstrip().endswith("--graphql--")
    updates = [p["payload"]["data"]["jobUpdates"] for p in multipart_parts(received) if "payload" in p]
    assert updates[0]["status"] == "QUEUED"
    assert updates[-1] == {"id": job_id, "status": "FINISHED", "result": {"n": 2}}
    assert all(p == {} for p in multipart_parts(received) if "payload" not in p)  # heartbeats only
