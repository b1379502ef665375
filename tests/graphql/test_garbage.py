"""A request leaves no garbage cycle behind: what it made is freed when it ends, by reference
counting, not later by the cyclic garbage collector (issue #20).

graphql-core 3.3 made every executor a cycle (`executor.PlainLeavesExecutor.async_helpers`): about
50 objects per GraphQL request that only a collection could free, whose collections were 8-10% of
a `job(id)`'s CPU under load. This sends each kind of request the API serves most, both ways
through GraphQL (the short path and Strawberry's view), and counts what the collector finds.
"""

from __future__ import annotations

import gc
import json
from collections import Counter
from typing import Any

import pytest
from fastapi import FastAPI

from gql_jobs.app import create_app
from gql_jobs.service.jobs import JobService
from gql_jobs.settings import Settings
from tests.graphql.test_direct import graphql_view
from tests.graphql_helpers import asgi_call

JOB = "query ($id: ID!) { job(id: $id) { id status task result error { message } } }"
SUBMIT = (
    "mutation ($input: SubmitJobInput!) { submitJob(input: $input) { "
    "... on SubmitJobSuccess { job { id status } } ... on Error { message } } }"
)
PAGE = "{ jobs(first: 5) { edges { cursor node { id status task submittedAt } } } }"

Request = tuple[str, str, bytes]


async def call(app: FastAPI, request: Request) -> tuple[int, bytes]:
    method, target, body = request
    answered = await asgi_call(app, method, target, [body] if body else [])
    return answered.status, answered.body


def gql(query: str, variables: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"query": query, "variables": variables or {}}).encode()


def requests(job_id: str, n: int) -> list[Request]:
    """One request of each kind; the inline documents differ with `n` (new ones are derived)."""
    inline_submit = f'mutation {{ submitJob(input: {{task: "echo", payload: {{n: {n}}}}}) {{ __typename }} }}'
    return [
        ("POST", "/graphql", gql(JOB, {"id": job_id})),
        ("POST", "/graphql", gql(f'{{ job(id: "{job_id}") {{ id status }} # {n}\n}}')),
        ("POST", "/graphql", gql(SUBMIT, {"input": {"task": "echo", "payload": {"n": n}}})),
        ("POST", "/graphql", gql(inline_submit)),
        ("POST", "/graphql", gql(PAGE)),
        ("POST", "/graphql", gql("{ job(id: 1) { nope } }")),  # refused: errors answered
        ("GET", f"/graphql?query={{job(id:%22{job_id}%22){{id}}}}", b""),
        ("GET", f"/job-status/{job_id}", b""),
        ("POST", "/submit-job", json.dumps({"task": "echo", "payload": {"n": n}}).encode()),
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("direct", [True, False], ids=["short path", "strawberry-view"])
async def test_requests_leave_no_garbage_cycle(settings: Settings, service: JobService, direct: bool) -> None:
    app = create_app(settings, service)
    graphql_view(app).direct.enabled = direct
    status, body = await call(app, ("POST", "/submit-job", json.dumps({"task": "echo"}).encode()))
    assert status == 200
    job_id = json.loads(body)["job_id"]
    statuses = [(await call(app, request))[0] for request in requests(job_id, 0)]  # caches filled
    assert statuses == [200, 200, 200, 200, 200, 200, 200, 200, 200]

    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what collections find is kept in `gc.garbage`, to be counted
    try:
        for n in range(1, 4):
            for request in requests(job_id, n):
                await call(app, request)
        gc.collect()
        garbage = Counter(type(found).__qualname__ for found in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not garbage, f"objects freed only by the cyclic collector: {garbage.most_common(12)}"
