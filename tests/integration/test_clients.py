"""Real GraphQL clients against a real server: the GraphQL-over-HTTP spec's audit (`graphql-http`),
urql with its default exchanges, Apollo Client's persisted-queries link, Apollo Client with the
README's cache set-up (clients/apollo.mjs), and the `graphql-ws` and `graphql-sse` clients following
a job that a real burst worker finishes.

The clients are Node packages pinned in `clients/package-lock.json`, installed as
tests/node_helpers.py says (skipped only where Node is missing).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from gql_jobs.app import create_app
from gql_jobs.constants import PERSISTED_QUERY_PREFIX
from gql_jobs.graphql.schema import possible_types
from tests.conftest import make_settings
from tests.node_helpers import CLIENTS, installed_clients
from tests.server_helpers import running_server

pytestmark = pytest.mark.integration

#: Seconds a client script may take at most (each also stops itself after 60 s).
SCRIPT_TIMEOUT = 90


@pytest.fixture(scope="session")
def node() -> str:
    return installed_clients()


@pytest.fixture
def graphql_url(redis_client: redis.Redis) -> Iterator[str]:
    """A real uvicorn serving the app on loopback (open API, the test Redis)."""
    with running_server(create_app(make_settings(poll_interval=0.2))) as base:
        yield f"{base}/graphql"


def run_client(
    node: str, script: str, *args: str, on_waiting: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Run `clients/<script>`, calling `on_waiting` when it announces it follows a job; return
    its last line (`done`), failing with everything it printed otherwise."""
    process = subprocess.Popen(
        [node, script, *args], cwd=CLIENTS, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    lines = []
    try:
        for line in process.stdout:  # the script's own deadline bounds this loop
            lines.append(line)
            message = json.loads(line)
            if message.get("event") == "waiting" and on_waiting is not None:
                on_waiting(message)
        _, errors = process.communicate(timeout=SCRIPT_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, f"{script} exited {process.returncode}:\n{''.join(lines)}\n{errors}"
    last: dict[str, Any] = json.loads(lines[-1])
    return last


def test_the_graphql_over_http_audit_passes_without_a_warning(node: str, graphql_url: str) -> None:
    audits = run_client(node, "audit.mjs", graphql_url)["audits"]
    assert len(audits) > 50
    failed = [a for a in audits if a["status"] != "ok"]
    assert failed == []


SUBMIT_ECHO = """mutation {
  submitJob(input: {task: "echo", payload: {n: 1}}) { ... on SubmitJobSuccess { job { id } } }
}"""


def submit_echo(graphql_url: str) -> str:
    response = httpx.post(graphql_url, json={"query": SUBMIT_ECHO})
    job_id: str = response.json()["data"]["submitJob"]["job"]["id"]
    return job_id


@pytest.mark.parametrize("script", ["graphql-ws.mjs", "graphql-sse.mjs"])
def test_a_subscription_client_follows_a_job_a_worker_finishes(
    node: str, graphql_url: str, drain: Callable[..., None], script: str
) -> None:
    job_id = submit_echo(graphql_url)
    done = run_client(node, script, graphql_url, job_id, on_waiting=lambda _: drain())
    assert done["statuses"][0] == "QUEUED"
    assert done["statuses"][-1] == "FINISHED"
    assert done["result"] == {"n": 1}


def test_urql_with_its_default_exchanges(node: str, graphql_url: str, drain: Callable[..., None]) -> None:
    done = run_client(node, "urql.mjs", graphql_url, on_waiting=lambda _: drain())
    assert done["query"]["error"] is None
    assert {"name": "echo", "__typename": "TaskInfo"} in done["query"]["data"]["tasks"]
    success = done["submitted"]["data"]["submitJob"]
    assert success["__typename"] == "SubmitJobSuccess"  # the document cache asks for __typename
    assert success["job"]["status"] == "QUEUED"
    unknown = done["unknown"]["data"]["submitJob"]
    assert unknown == {
        "__typename": "UnknownTaskError",
        "task": "no-such-task",
        "code": "BAD_USER_INPUT",
        "message": unknown["message"],
    }
    assert done["statuses"][0] == "QUEUED"
    assert done["statuses"][-1] == "FINISHED"
    assert done["result"] == {"hello": "urql"}


@pytest.mark.parametrize("mode", ["post", "get", "json"])
def test_apollos_persisted_queries_link_falls_back_once_then_sends_the_hash_alone(
    node: str, graphql_url: str, redis_client: redis.Redis, mode: str
) -> None:
    done = run_client(node, "apollo-persisted.mjs", graphql_url, mode)

    assert [run["error"] for run in done["runs"]] == [None, None]
    assert all("echo" in run["names"] for run in done["runs"])
    hashed = "GET" if mode == "get" else "POST"
    # Not found (a 400 under the spec's media type, a 200 under application/json), the document
    # sent with its hash (always POSTed), then the hash alone.
    not_found = 200 if mode == "json" else 400
    requests = [(r["method"], r["query"], r["status"]) for r in done["requests"]]
    assert requests == [(hashed, False, not_found), ("POST", True, 200), (hashed, False, 200)]
    (digest,) = {r["hash"] for r in done["requests"]}
    assert redis_client.exists(PERSISTED_QUERY_PREFIX + digest) == 1


LIST_TAG = "query ($tag: String!) { jobs(filter: {tag: $tag}, first: 10) { edges { node { id } } } }"


@pytest.mark.parametrize("mode", ["ws", "multipart", "batch"])
def test_apollo_client_with_the_readmes_cache_set_up(
    node: str, redis_client: redis.Redis, drain: Callable[..., None], mode: str
) -> None:
    """clients/apollo.mjs with InMemoryCache as the README sets it up (possibleTypes from the
    schema, `jobs` with relayStylePagination), subscriptions over graphql-ws, over multipart HTTP,
    or queries and mutations batched by BatchHttpLink (batching on for that server only)."""
    settings = make_settings(poll_interval=0.2, max_batch_operations=10 if mode == "batch" else 0)
    with running_server(create_app(settings)) as base:
        types = json.dumps(possible_types())
        done = run_client(node, "apollo.mjs", f"{base}/graphql", types, mode, on_waiting=lambda _: drain())
        listed = httpx.post(
            f"{base}/graphql",
            json={"query": LIST_TAG, "variables": {"tag": done["pages"]["tag"]}},
        ).json()["data"]["jobs"]["edges"]

    union = done["union"]
    assert union["errors"] == [None, None]
    assert union["success"]["job"]["status"] == "QUEUED"
    # `... on Error { code message }` on an error member of the union: kept thanks to possibleTypes.
    assert union["unknown"]["code"] == "BAD_USER_INPUT"
    assert union["unknown"]["message"]
    assert "no-such-task" in union["unknown"]["message"]
    # The README's warning, for real: through a cache without possibleTypes, `code` and `message` are gone.
    assert union["withoutPossibleTypes"] == {"__typename": "UnknownTaskError"}

    pages = done["pages"]
    assert pages["fetched"] == [2, 2, 1]
    # The pages merged into one list: the server's one-page listing, each job once.
    assert pages["merged"] == [edge["node"]["id"] for edge in listed]
    assert sorted(pages["merged"]) == sorted(pages["submitted"])
    assert pages["hasNextPage"] is False

    followed = done["followed"]
    assert followed["before"] == "QUEUED"
    assert followed["statuses"][0] == "QUEUED"
    assert followed["statuses"][-1] == "FINISHED"
    assert followed["result"] == {"hello": "apollo"}
    # The subscription's Job results went to the same cache entry the `job(id:)` query made.
    assert followed["cachedFragment"] == followed["cachedQuery"] == "FINISHED"

    operations = [r["operations"] for r in done["requests"]]
    if mode == "batch":
        assert 5 in operations  # the five submissions in one request
    else:
        assert set(operations) == {1}
    # Only the subscription over HTTP is answered in parts.
    assert sum(r["multipart"] for r in done["requests"]) == (1 if mode == "multipart" else 0)


def test_apollo_client_reads_deferred_and_streamed_answers(node: str, graphql_url: str) -> None:
    """clients/apollo-defer.mjs: HttpLink with `GraphQL17Alpha9Handler` asks for multipart/mixed,
    shows the first part while still loading, then the rest merged (and cached)."""
    done = run_client(node, "apollo-defer.mjs", graphql_url)

    total = done["total"]
    # Each watch starts with the loading state (`empty`), then what the parts brought.
    deferred, streamed = ([e for e in done[k] if e["dataState"] != "empty"] for k in ("deferred", "streamed"))
    assert deferred == [
        {"dataState": "streaming", "loading": True, "tasks": total, "queues": False},  # no `queues` yet
        {"dataState": "complete", "loading": False, "tasks": total, "queues": True},
    ]
    assert streamed == [
        {"dataState": "complete", "loading": True, "tasks": 1, "queues": False},  # initialCount: 1
        {"dataState": "complete", "loading": False, "tasks": total, "queues": False},
    ]
    assert done["cachedQueues"] is True
    plain, *incremental = done["requests"]
    assert plain["contentType"].startswith("application/graphql-response+json")
    assert len(incremental) == 2
    for request in incremental:
        assert request["accept"].startswith("multipart/mixed;incrementalSpec=v0.2")
        assert request["contentType"] == 'multipart/mixed; boundary="-"'
        assert request["status"] == 200
