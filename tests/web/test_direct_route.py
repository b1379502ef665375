"""`DirectRoute` hands the GraphQL route its HTTP requests past FastAPI's own layers, matching
them as the router does, and leaves every other request to FastAPI."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any
from unittest.mock import patch

import pytest
from fastapi.testclient import TestClient
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gql_jobs.graphql.router import PATH, JobsGraphQL
from gql_jobs.web.direct_route import DirectRoute

Seen = list[tuple[str, dict[str, Any]]]


class Recorder:
    """An ASGI app (an instance, as the GraphQL view is) noting what reached it."""

    def __init__(self, name: str, seen: Seen) -> None:
        self.name = name
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.seen.append((self.name, dict(scope)))


async def sent(middleware: DirectRoute, scope: dict[str, Any]) -> None:
    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        pass

    await middleware(scope, receive, send)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("scope", "taken_by"),
    [
        ({"type": "http", "path": "/graphql", "method": "POST"}, "route"),
        ({"type": "http", "path": "/graphql", "method": "GET"}, "route"),
        ({"type": "http", "path": "/api/graphql", "root_path": "/api", "method": "POST"}, "route"),
        ({"type": "http", "path": "/graphql/", "method": "POST"}, "fastapi"),
        ({"type": "http", "path": "/graphqlx", "method": "POST"}, "fastapi"),
        ({"type": "http", "path": "/job-status/JOB-1", "method": "GET"}, "fastapi"),
        ({"type": "websocket", "path": "/graphql"}, "fastapi"),
        ({"type": "lifespan"}, "fastapi"),
    ],
    ids=["post", "get", "under-root-path", "trailing-slash", "longer", "rest", "websocket", "lifespan"],
)
async def test_only_the_routes_http_requests_are_taken_directly(scope: dict[str, Any], taken_by: str) -> None:
    seen: Seen = []
    route = Route("/graphql", Recorder("route", seen))
    await sent(DirectRoute(Recorder("fastapi", seen), route), scope)
    [(name, received)] = seen
    assert name == taken_by
    if name == "route":  # with the child scope the router would give it
        assert received["endpoint"] is route.endpoint
        assert received["path_params"] == {}


def test_graphql_requests_skip_fastapis_router_and_rest_requests_do_not(client: TestClient) -> None:
    scopes: list[Scope] = []
    call = JobsGraphQL.__call__

    async def spy(self: JobsGraphQL, scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await call(self, scope, receive, send)

    with patch.object(JobsGraphQL, "__call__", spy):
        assert client.post(PATH, json={"query": "{ __typename }"}).json() == {"data": {"__typename": "Query"}}
        assert client.get("/job-status/JOB-none").status_code == 404
    [graphql] = scopes
    assert "router" not in graphql  # FastAPI's router sets it on every request it routes
