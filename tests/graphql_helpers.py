"""Small helpers shared by the GraphQL test modules: post a document, submit jobs, read them back."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from bench.inprocess import http_scope
from gql_jobs.app import create_app
from tests.conftest import make_settings

SUBMIT = """
mutation Submit($input: SubmitJobInput!) {
  submitJob(input: $input) {
    __typename
    ... on SubmitJobSuccess { job { id status task queue payload tags description submittedAt retriesLeft } }
    ... on Error { message }
  }
}
"""

JOB = """
query Job($id: ID!) {
  job(id: $id) {
    id status task queue payload tags result
    error { type message traceback }
    dependsOn { id }
  }
}
"""


def gql(client: TestClient, query: str, **variables: Any) -> dict[str, Any]:
    """POST a GraphQL document to /graphql; assert HTTP 200 and return the decoded JSON body."""
    response = client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def data(client: TestClient, query: str, **variables: Any) -> dict[str, Any]:
    """Like `gql`, but also assert there were no top-level errors and return `data`."""
    body = gql(client, query, **variables)
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"]
    return result


def submit(client: TestClient, task: str = "echo", **fields: Any) -> dict[str, Any]:
    """Submit one job through `submitJob`, assert it was accepted, and return the job."""
    result = data(client, SUBMIT, input={"task": task, **fields})["submitJob"]
    assert result["__typename"] == "SubmitJobSuccess", result
    job: dict[str, Any] = result["job"]
    return job


def job(client: TestClient, job_id: str) -> dict[str, Any] | None:
    """Read one job through the `job` query."""
    found: dict[str, Any] | None = data(client, JOB, id=job_id)["job"]
    return found


def top_level_error(body: dict[str, Any]) -> dict[str, Any]:
    """The single top-level error of a response."""
    assert body.get("errors"), body
    assert len(body["errors"]) == 1, body["errors"]
    error: dict[str, Any] = body["errors"][0]
    return error


@contextmanager
def client_with(**overrides: object) -> Iterator[TestClient]:
    """A client on a freshly built app whose settings differ from the test defaults."""
    with TestClient(create_app(make_settings(**overrides))) as test_client:
        yield test_client


@dataclass(frozen=True)
class Answered:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


async def asgi_call(
    app: FastAPI,
    method: str,
    target: str,
    chunks: Sequence[bytes] = (),
    headers: Sequence[tuple[bytes, bytes]] = ((b"content-type", b"application/json"),),
) -> Answered:
    """One request on the app in-process, no server or client between (nothing of theirs runs):
    the body in `chunks`, each its own `http.request` message, as a server streams a large one."""
    scope = http_scope(method, target, [(b"host", b"test"), *headers])
    pieces = list(chunks) or [b""]
    messages = iter(
        [{"type": "http.request", "body": c, "more_body": i < len(pieces) - 1} for i, c in enumerate(pieces)]
    )
    started: dict[str, Any] = {}
    body = b""

    async def receive() -> dict[str, Any]:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal body
        if message["type"] == "http.response.start":
            started.update(message)
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")

    await app(scope, receive, send)
    return Answered(started["status"], list(started.get("headers", [])), body)
