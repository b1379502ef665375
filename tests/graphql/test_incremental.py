"""`@defer` and `@stream` (`graphql.incremental`): answers in parts over real HTTP (multipart/mixed,
SSE) whose parts are read here as a client reads them, page caps and limits that still hold, errors
masked in every part, and a clear `STREAMING_REQUIRED` before anything runs for a client that
cannot read parts (plain JSON, a batch, a WebSocket)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from graphql import parse

from gql_jobs.app import create_app
from gql_jobs.graphql.incremental import uses_incremental_delivery
from gql_jobs.graphql.negotiation import accepts_parts
from tests.conftest import ROOT, make_settings
from tests.graphql.test_persisted import apq, sha
from tests.server_helpers import running_server

#: What Apollo Client 4's `GraphQL17Alpha9Handler` sends for an operation with `@defer`/`@stream`.
APOLLO_INCREMENTAL = (
    "multipart/mixed;incrementalSpec=v0.2,application/graphql-response+json,application/json;q=0.9"
)
DEFERRED = 'query { tasks { name } ... @defer(label: "queues") { queues { name } } }'
STREAMED = "query { tasks @stream(initialCount: 1) { name } }"
SUBMIT = """mutation ($n: Int!) {
  submitJob(input: {task: "echo", payload: {n: $n}}) { ... on SubmitJobSuccess { job { id } } }
}"""
DEFERRED_SUBMIT = """mutation {
  submitJob(input: {task: "echo", payload: {n: 9}}) {
    ... on SubmitJobSuccess { ... @defer { job { id } } }
  }
}"""
PART = re.compile(rb"\r\n---\r\n(?P<head>(?:[^\r\n]+\r\n)+)\r\n")


def parts(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON parts of a `multipart/mixed; boundary="-"` answer, each read by its Content-Length,
    checking the framing a multipart reader relies on (the closing delimiter last)."""
    assert response.headers["content-type"] == 'multipart/mixed; boundary="-"'
    body = b"\r\n" + response.content
    found: list[dict[str, Any]] = []
    position = 0
    while (match := PART.match(body, position)) is not None:
        headers = dict(line.split(": ", 1) for line in match["head"].decode().splitlines())
        assert headers["Content-Type"] == "application/json; charset=utf-8"
        length = int(headers["Content-Length"])
        found.append(json.loads(body[match.end() : match.end() + length]))
        position = match.end() + length
    assert body[position:] == b"\r\n-----\r\n"
    return found


@pytest.fixture
def base(redis_client: redis.Redis) -> Iterator[str]:
    with running_server(create_app(make_settings(max_batch_operations=5))) as url:
        yield url


def post(base: str, query: str, accept: str | None = APOLLO_INCREMENTAL, **body: Any) -> httpx.Response:
    headers = {"accept": accept} if accept else {}
    return httpx.post(f"{base}/graphql", json={"query": query, **body}, headers=headers, timeout=30)


def test_only_a_client_that_names_multipart_or_prefers_sse_reads_parts() -> None:
    assert accepts_parts(APOLLO_INCREMENTAL)
    assert accepts_parts("multipart/mixed")
    assert accepts_parts("text/event-stream")
    assert not accepts_parts(None)
    assert not accepts_parts("*/*")
    assert not accepts_parts("multipart/*, application/json")
    assert not accepts_parts("application/json, multipart/mixed;q=0")


def test_the_directives_are_found_in_the_document_not_in_its_text() -> None:
    assert uses_incremental_delivery(DEFERRED, parse(DEFERRED))
    assert uses_incremental_delivery(STREAMED, parse(STREAMED))
    spaced = "{ tasks @ stream { name } }"  # `@` and the name are two tokens
    assert uses_incremental_delivery(spaced, parse(spaced))
    named = '{ job(id: "defer-stream") { id } }'
    assert not uses_incremental_delivery(named, parse(named))


@pytest.mark.integration
def test_a_deferred_fragment_arrives_in_a_later_part(base: str) -> None:
    response = post(base, DEFERRED)

    assert response.status_code == 200
    first, *rest = parts(response)
    assert "queues" not in first["data"]
    assert {"name": "echo"} in first["data"]["tasks"]
    assert first["hasNext"] is True
    assert first["pending"] == [{"id": "0", "path": [], "label": "queues"}]
    assert rest[-1]["hasNext"] is False
    delivered = [item for part in rest for item in part.get("incremental", ())]
    assert [item["id"] for item in delivered] == ["0"]
    assert isinstance(delivered[0]["data"]["queues"], list)
    assert [done for part in rest for done in part.get("completed", ())] == [{"id": "0"}]


@pytest.mark.integration
def test_a_streamed_list_sends_its_first_items_then_the_rest(base: str) -> None:
    everything = post(base, "{ tasks { name } }", accept="application/json").json()["data"]["tasks"]

    first, *rest = parts(post(base, STREAMED))

    assert first["data"]["tasks"] == everything[:1]
    assert first["pending"] == [{"id": "0", "path": ["tasks"]}]
    streamed = [item for part in rest for entry in part.get("incremental", ()) for item in entry["items"]]
    assert everything[:1] + streamed == everything
    assert rest[-1]["hasNext"] is False


@pytest.mark.integration
def test_a_streamed_page_of_jobs_holds_no_more_than_first(base: str) -> None:
    for n in range(3):
        post(base, SUBMIT, accept="application/json", variables={"n": n})
    page = "{ jobs(first: 2) { edges @stream(initialCount: 0) { node { id } } } }"

    first, *rest = parts(post(base, page))

    assert first["data"]["jobs"]["edges"] == []
    streamed = [item for part in rest for entry in part.get("incremental", ()) for item in entry["items"]]
    assert len(streamed) == 2


@pytest.mark.integration
@pytest.mark.parametrize(
    ("query", "code"),
    [
        (
            "{ jobs(first: 100) { edges @stream(initialCount: 0) { node { " + "id " * 120 + "} } } }",
            "QUERY_TOO_COMPLEX",
        ),
        (
            "{ ... @defer { jobs(first: 100) { edges { node { " + "id " * 120 + "} } } } }",
            "QUERY_TOO_COMPLEX",
        ),
        (
            "{ ... @defer { job(id: 1) " + "{ dependsOn " * 11 + "{ id }" + " }" * 11 + " } }",
            "QUERY_TOO_DEEP",
        ),
        ("{ ... @defer { " + " ".join(f"a{i}: __typename" for i in range(31)) + " } }", "TOO_MANY_ALIASES"),
    ],
    ids=["stream-cost", "defer-cost", "defer-depth", "defer-aliases"],
)
def test_limits_count_deferred_and_streamed_selections(base: str, query: str, code: str) -> None:
    response = post(base, query)

    assert response.status_code == 400  # refused as one JSON answer, before anything ran
    assert response.headers["content-type"] == "application/graphql-response+json"
    assert [error["extensions"]["code"] for error in response.json()["errors"]] == [code]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("accept", "status"),
    [(None, 200), ("application/json", 200), ("*/*", 200), ("application/graphql-response+json", 400)],
)
def test_a_client_that_cannot_read_parts_is_refused_before_anything_runs(
    base: str, accept: str | None, status: int
) -> None:
    before = post(base, "{ jobs { totalCount } }", accept="application/json").json()

    for query in (DEFERRED, STREAMED, DEFERRED_SUBMIT):
        response = post(base, query, accept=accept)
        assert response.status_code == status
        assert not response.headers["content-type"].startswith("multipart/")
        (error,) = response.json()["errors"]
        assert error["extensions"] == {"code": "STREAMING_REQUIRED"}
        assert "multipart/mixed" in error["message"]

    assert (
        post(base, "{ jobs { totalCount } }", accept="application/json").json() == before
    )  # nothing submitted


@pytest.mark.integration
def test_a_deferred_operation_in_a_batch_is_refused_and_the_others_run(base: str) -> None:
    batch = [{"query": DEFERRED}, {"query": "{ __typename }"}]
    response = httpx.post(f"{base}/graphql", json=batch, headers={"accept": APOLLO_INCREMENTAL}, timeout=30)

    assert response.status_code == 200
    deferred, plain = response.json()
    assert [error["extensions"]["code"] for error in deferred["errors"]] == ["STREAMING_REQUIRED"]
    assert plain == {"data": {"__typename": "Query"}}


@pytest.mark.integration
def test_a_deferred_mutation_runs_once_and_sends_its_job_later(base: str) -> None:
    first, *rest = parts(post(base, DEFERRED_SUBMIT))

    assert first["data"] == {"submitJob": {}}
    (item,) = [item for part in rest for item in part.get("incremental", ())]
    job_id = item["data"]["job"]["id"]
    found = post(base, f'{{ job(id: "{job_id}") {{ id }} }}', accept="application/json").json()
    assert found == {"data": {"job": {"id": job_id}}}


@pytest.mark.integration
def test_a_deferred_operation_sent_by_hash_runs_and_is_persisted(base: str) -> None:
    query = '{ ... @defer(label: "t") { tasks { name } } }'
    first, *_ = parts(post(base, query, extensions=apq(sha(query))))
    assert first["pending"] == [{"id": "0", "path": [], "label": "t"}]

    by_hash = httpx.post(
        f"{base}/graphql",
        json={"extensions": apq(sha(query))},
        headers={"accept": APOLLO_INCREMENTAL},
        timeout=30,
    )
    again, *rest = parts(by_hash)
    assert again["pending"] == first["pending"]
    assert rest[-1]["hasNext"] is False


@pytest.mark.integration
def test_an_event_stream_client_gets_the_parts_as_events(base: str) -> None:
    response = post(base, DEFERRED, accept="text/event-stream")

    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
    assert events[0]["hasNext"] is True
    assert events[-1]["hasNext"] is False
    assert "queues" in events[-1]["incremental"][0]["data"]
    assert "event: complete" in response.text


def test_an_unexpected_failure_in_a_later_part_is_masked(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> object:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(client.app.state.service, "get", broken)  # type: ignore[attr-defined]
    query = '{ __typename ... @defer { job(id: "JOB-x") { id } } }'
    response = client.post("/graphql", json={"query": query}, headers={"accept": APOLLO_INCREMENTAL})

    assert "secret" not in response.text
    first, *rest = parts(response)
    assert first["data"] == {"__typename": "Query"}
    (item,) = [item for part in rest for item in part.get("incremental", ())]
    assert item["data"] == {"job": None}
    assert item["errors"][0]["message"] == "Unexpected error."
    assert item["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}


def test_over_graphql_transport_ws_it_is_refused_before_it_runs(client: TestClient) -> None:
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json({"type": "subscribe", "id": "1", "payload": {"query": DEFERRED}})
        message = ws.receive_json()

    assert message["type"] == "error"
    assert [error["extensions"]["code"] for error in message["payload"]] == ["STREAMING_REQUIRED"]


README_DASHBOARD = """query Dashboard {
    tasks { name }
    ... @defer(label: "queues") { queues { name queued } }
    jobs(first: 50) { edges @stream(initialCount: 10) { node { id status } } }
  }"""


@pytest.mark.integration
def test_the_readmes_example_answers_in_parts(base: str) -> None:
    readme = (ROOT / "README.md").read_text()
    assert README_DASHBOARD in readme  # the document the README shows, verbatim
    for n in range(12):
        post(base, SUBMIT, accept="application/json", variables={"n": n})

    first, *rest = parts(post(base, README_DASHBOARD))

    assert "queues" not in first["data"]
    assert len(first["data"]["jobs"]["edges"]) == 10
    assert {p.get("label") for p in first["pending"]} == {"queues", None}
    delivered = [entry for part in rest for entry in part.get("incremental", ())]
    assert any("queues" in entry.get("data", {}) for entry in delivered)
    streamed = [item for entry in delivered for item in entry.get("items", ())]
    assert len(first["data"]["jobs"]["edges"]) + len(streamed) == 12
    assert rest[-1]["hasNext"] is False


def test_a_trusted_deferred_document_runs_by_id_and_others_stay_refused(
    tmp_path: Path, redis_client: redis.Redis
) -> None:
    manifest = tmp_path / "persisted-query-manifest.json"
    operation = {"id": sha(DEFERRED), "body": DEFERRED, "name": "Deferred", "type": "query"}
    manifest.write_text(
        json.dumps({"format": "apollo-persisted-query-manifest", "version": 1, "operations": [operation]})
    )
    settings = make_settings(persisted_documents=manifest, only_persisted_documents=True)
    headers = {"accept": APOLLO_INCREMENTAL}
    with TestClient(create_app(settings)) as client:
        trusted = client.post("/graphql", json={"documentId": f"sha256:{sha(DEFERRED)}"}, headers=headers)
        untrusted = client.post("/graphql", json={"query": STREAMED}, headers=headers)

    first, *rest = parts(trusted)
    assert first["pending"] == [{"id": "0", "path": [], "label": "queues"}]
    assert rest[-1]["hasNext"] is False
    assert not untrusted.headers["content-type"].startswith("multipart/")
    assert untrusted.json()["errors"][0]["extensions"]["code"] == "PERSISTED_DOCUMENT_REQUIRED"
