"""A plain POST run by graphql-core directly (`gql_jobs/graphql/direct.py`) is answered exactly as
Strawberry's view answers it: each request here is sent both ways on one app, and the two answers
(status, headers, body, what is logged, what is counted) must be equal byte for byte.

Each case also says which way it must go: `direct` for what the short path serves, `declined` for
what it must leave to Strawberry (a batch, a hash, a stream, `@defer`, a refused document). A
Strawberry release that changes an answer of its view fails here, and the short path is adapted
to it (or its case declined), not the other way round.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest.mock import patch

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from starlette.routing import Route
from strawberry.extensions import SchemaExtension

from gql_jobs import jsoncodec, tracing
from gql_jobs.app import create_app
from gql_jobs.graphql.direct import PlainRequest
from gql_jobs.graphql.documents import DocumentCache
from gql_jobs.graphql.queries import Query
from gql_jobs.graphql.router import PATH, JobsGraphQL
from gql_jobs.graphql.schema import OWN_EXTENSIONS, GuardedSchema, build_schema
from gql_jobs.service.jobs import JobService
from gql_jobs.settings import Settings
from gql_jobs.web.cors import OriginPolicy
from tests.auth_helpers import api_keys_setting, bearer
from tests.conftest import make_settings
from tests.graphql_helpers import asgi_call, client_with, submit

SPEC = "application/graphql-response+json"
URQL = (
    "application/graphql-response+json, application/graphql+json, application/json, "
    "text/event-stream, multipart/mixed"
)
APOLLO_4 = "multipart/mixed;deferSpec=20220824,application/graphql-response+json,application/json;q=0.9"
ACCEPTS = [None, "application/json", SPEC, "*/*", URQL, APOLLO_4]

JOB = "query Job($id: ID!) { job(id: $id) { id status task payload tags submittedAt error { message } } }"
TWO = 'query A { __typename } query B { job(id: "JOB-none") { id } }'


def graphql_view(app: FastAPI) -> JobsGraphQL:
    (view,) = (r.endpoint for r in app.router.routes if isinstance(r, Route) and r.path == PATH)
    assert isinstance(view, JobsGraphQL)
    return view


@dataclass(frozen=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    logged: tuple[tuple[str, int, str], ...]


class BothWays:
    """Sends a request with the short path on, then off, and compares the answers."""

    def __init__(self, client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
        self.client = client
        self.caplog = caplog
        self.view = graphql_view(client.app)  # type: ignore[arg-type]
        self.sent = 0

    def send(self, body: bytes, headers: dict[str, str], *, direct: bool) -> tuple[Answer, bool]:
        self.sent += 1
        taken: list[bool] = []
        execute = self.view.direct.execute

        async def spy(request: PlainRequest, context: Any) -> Any:
            result = await execute(request, context)
            taken.append(result is not None)
            return result

        self.caplog.clear()
        direct_path = self.view.direct
        with patch.object(direct_path, "enabled", direct), patch.object(direct_path, "execute", spy):
            response = self.client.post(
                PATH, content=body, headers={"x-request-id": f"req-{self.sent}", **headers}
            )
        logged = tuple(
            (r.name, r.levelno, r.getMessage().replace(f"req-{self.sent}", "req"))
            for r in self.caplog.records
        )
        answer = Answer(
            response.status_code,
            tuple((k, v.replace(f"req-{self.sent}", "req")) for k, v in response.headers.items()),
            response.content,
            logged,
        )
        return answer, any(taken)

    def compare(
        self,
        body: object,
        accept: str | None = None,
        content_type: str = "application/json",
        *,
        headers: dict[str, str] | None = None,
    ) -> tuple[Answer, bool]:
        """The answer (the same both ways) and whether the short path served it."""
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"content-type": content_type, **({"accept": accept} if accept else {}), **(headers or {})}
        with self.caplog.at_level(logging.INFO):
            direct, served = self.send(raw, sent, direct=True)
            strawberry, unused = self.send(raw, sent, direct=False)
        assert not unused
        assert direct == strawberry
        return direct, served


@pytest.fixture
def both(client: TestClient, caplog: pytest.LogCaptureFixture) -> BothWays:
    return BothWays(client, caplog)


@pytest.fixture
def stored_job(client: TestClient, drain: Callable[..., None]) -> str:
    job_id: str = submit(client, "echo", payload={"x": 1}, tags=["a"])["id"]
    drain()
    return job_id


# -- what the short path serves --------------------------------------------------------------------


@pytest.mark.parametrize("accept", ACCEPTS)
def test_a_read_with_variables(both: BothWays, stored_job: str, accept: str | None) -> None:
    answer, served = both.compare({"query": JOB, "variables": {"id": stored_job}}, accept)
    assert served
    assert answer.status == 200
    assert json.loads(answer.body)["data"]["job"]["status"] == "FINISHED"


@pytest.mark.parametrize(
    "body",
    [
        {"query": "{ __typename }"},
        {"query": "{ __typename }", "variables": None, "operationName": None, "extensions": None},
        {"query": "{ __typename }", "extensions": {}},
        {"query": "{ __typename }", "extensions": {"clientLibrary": {"name": "@apollo/client"}}},
        {"query": '{ job(id: "JOB-nothing-here") { id } }'},
        {"query": TWO, "operationName": "B"},
        {"query": "{ tasks { name } queues { name } }"},
        {"query": "{ __schema { types { name } } }"},  # introspection on: a plain query
    ],
    ids=["bare", "nulls", "empty-extensions", "client-extensions", "missing", "named", "lists", "schema"],
)
@pytest.mark.parametrize("accept", [None, SPEC, URQL])
def test_plain_queries(both: BothWays, body: dict[str, Any], accept: str | None) -> None:
    answer, served = both.compare(body, accept)
    assert served
    assert answer.status == 200


def test_a_read_with_values_inline_and_a_charset(both: BothWays, stored_job: str) -> None:
    query = f'{{ job(id: "{stored_job}") {{ id status }} }}'
    answer, served = both.compare({"query": query}, SPEC, "application/json; charset=utf-8")
    assert served
    assert json.loads(answer.body)["data"]["job"] == {"id": stored_job, "status": "FINISHED"}


@pytest.mark.parametrize(("accept", "status"), [(SPEC, 400), ("application/json", 200), (URQL, 400)])
def test_variables_that_do_not_coerce_are_a_request_error(both: BothWays, accept: str, status: int) -> None:
    answer, served = both.compare({"query": JOB, "variables": {"id": None}}, accept)
    assert served
    assert answer.status == status
    assert json.loads(answer.body)["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("accept", [SPEC, "application/json"])
def test_an_unexpected_failure_is_masked_and_logged_alike(
    both: BothWays, client: TestClient, monkeypatch: pytest.MonkeyPatch, accept: str
) -> None:
    async def broken(*args: object) -> object:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(client.app.state.service, "get", broken)  # type: ignore[attr-defined]
    answer, served = both.compare({"query": JOB, "variables": {"id": "JOB-x"}}, accept)
    assert served
    body = json.loads(answer.body)
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert b"secret" not in answer.body
    assert any("secret detail" in message for _, _, message in answer.logged)  # the original, logged


# -- documents derived from their shape's (templates.py): answered as parsed ones -----------------

TWO_READS = '{ a: job(id: "%s") { id status } b: job(id: "%s") { id status } }'


def test_an_inline_document_of_a_known_shape_is_derived_and_answered_as_parsed(
    both: BothWays, stored_job: str
) -> None:
    documents = both.view.schema.documents  # type: ignore[attr-defined]
    both.compare({"query": TWO_READS % ("JOB-a", "JOB-b")}, SPEC)  # parsed: its shape's template
    derived = documents.cache.derived
    query = "# a client's comment\n" + (TWO_READS % (stored_job, "JOB-" + "x" * 40)).replace(" ", "\n  ")
    answer, served = both.compare({"query": query}, SPEC)
    assert served
    assert documents.cache.derived == derived + 1
    assert json.loads(answer.body)["data"] == {"a": {"id": stored_job, "status": "FINISHED"}, "b": None}


@pytest.mark.parametrize("accept", [SPEC, "application/json"])
def test_errors_of_a_derived_document_are_located_in_its_own_text(
    both: BothWays, client: TestClient, monkeypatch: pytest.MonkeyPatch, accept: str
) -> None:
    """The second field's error is after a literal of another length, on another line: its
    location (and what is logged of it) is the one graphql-core gives the text it parses."""
    documents = both.view.schema.documents  # type: ignore[attr-defined]
    both.compare({"query": TWO_READS % ("JOB-a", "JOB-b")}, accept)

    async def broken(*args: object) -> object:
        raise RuntimeError("secret detail")

    monkeypatch.setattr(client.app.state.service, "get", broken)  # type: ignore[attr-defined]
    derived = documents.cache.derived
    query = (TWO_READS % ("JOB-" + "y" * 30, "JOB-z")).replace("} b:", "}\r\n\t\tb:")
    answer, served = both.compare({"query": query}, accept)
    assert served
    assert documents.cache.derived == derived + 1
    errors = json.loads(answer.body)["errors"]
    assert [e["locations"] for e in errors] == [[{"line": 1, "column": 3}], [{"line": 2, "column": 3}]]
    assert all(e["extensions"] == {"code": "INTERNAL_SERVER_ERROR"} for e in errors)


def test_a_known_shape_padded_with_comments_past_the_token_limit_is_refused_both_ways(
    both: BothWays, client: TestClient
) -> None:
    documents = both.view.schema.documents  # type: ignore[attr-defined]
    both.compare({"query": '{ job(id: "a") { id } }'}, SPEC)
    padded = '{ job(id: "b") { id } }' + "#\n" * documents.limits.max_tokens
    answer, served = both.compare({"query": padded}, SPEC)
    assert not served and documents.cache.derived == 0
    assert answer.status == 400
    assert json.loads(answer.body)["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


def test_a_derived_submission_is_submitted_with_its_own_values(both: BothWays, client: TestClient) -> None:
    mutation = (
        'mutation { submitJob(input: {task: "echo", payload: {n: %s, text: "%s"}, tags: ["%s"]}) '
        "{ ... on SubmitJobSuccess { job { id payload tags } } } }"
    )
    documents = both.view.schema.documents  # type: ignore[attr-defined]
    client.post(PATH, json={"query": mutation % (1, "first", "t1")})  # parsed: its shape's template
    derived = documents.cache.derived
    response = client.post(PATH, json={"query": mutation % (12345, "second, longer", "t2")})
    assert documents.cache.derived == derived + 1
    job = response.json()["data"]["submitJob"]["job"]
    assert (job["payload"], job["tags"]) == ({"n": 12345, "text": "second, longer"}, ["t2"])


def test_a_refused_submission_is_a_union_member(both: BothWays) -> None:
    mutation = 'mutation { submitJob(input: {task: "no-such-task"}) { __typename ... on Error { message } } }'
    answer, served = both.compare({"query": mutation}, SPEC)
    assert served
    assert json.loads(answer.body)["data"]["submitJob"]["__typename"] != "SubmitJobSuccess"


def test_a_mutation_runs_once_on_the_short_path(both: BothWays, redis_client: redis.Redis) -> None:
    body = json.dumps({"query": 'mutation { submitJob(input: {task: "echo"}) { __typename } }'})
    before = _jobs_stored(redis_client)
    answer, served = both.send(body.encode(), {"content-type": "application/json"}, direct=True)
    assert served
    assert json.loads(answer.body) == {"data": {"submitJob": {"__typename": "SubmitJobSuccess"}}}
    assert _jobs_stored(redis_client) == before + 1


def test_operations_are_counted_alike(both: BothWays, stored_job: str) -> None:
    def count(outcome: str) -> float:
        labels = {"transport": "graphql", "operation": "query.job", "outcome": outcome}
        return REGISTRY.get_sample_value("gql_jobs_requests_total", labels) or 0.0

    ok, error = count("ok"), count("error")
    assert both.compare({"query": JOB, "variables": {"id": stored_job}})[1]
    assert both.compare({"query": JOB, "variables": {"id": None}})[1]
    assert (count("ok") - ok, count("error") - error) == (2, 2)


@pytest.mark.parametrize("accept", [SPEC, "application/json"])
def test_an_exception_escaping_the_executor_is_masked_and_counted_alike(
    both: BothWays, monkeypatch: pytest.MonkeyPatch, accept: str
) -> None:
    """graphql-core catches what resolvers raise; what escapes it (here, from building the
    executor) passes through Strawberry's extension hooks unmasked: `GuardedSchema.execute` masks
    it, `OperationMetrics` counts it, as the short path does."""

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("secret detail")

    def errors() -> float:
        labels = {"transport": "graphql", "operation": "query.__typename", "outcome": "error"}
        return REGISTRY.get_sample_value("gql_jobs_requests_total", labels) or 0.0

    monkeypatch.setattr(both.view.direct.schema.execution_context_class, "build", classmethod(broken))
    before = errors()
    answer, served = both.compare({"query": "{ __typename }"}, accept)
    assert served
    assert answer.status == (500 if accept == SPEC else 200)
    assert json.loads(answer.body)["errors"] == [
        {"message": "Unexpected error.", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
    ]
    assert errors() - before == 2


# -- what it leaves to Strawberry's view -----------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"query": "{ nope }"},  # invalid: its verdict is cached, its errors are the view's
        {"query": "{ __typename "},  # does not parse
        {"query": TWO},  # two operations, none chosen
        {"query": TWO, "operationName": "C"},
        {"query": 'subscription { jobUpdates(id: "JOB-x") { id } }'},
        {"query": "{ ... @defer { __typename } }"},
        {"query": "{ __typename }", "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
        {"documentId": "sha256:" + "0" * 64},
        {"query": "{ __typename }", "variables": []},
        {"query": 5},
        {"variables": {}},
        [{"query": "{ __typename }"}],
        {"query": "{ __typename }", "unknown": 1},
    ],
    ids=[
        "invalid",
        "unparsed",
        "ambiguous",
        "unknown-name",
        "subscription",
        "defer",
        "apq",
        "document-id",
        "bad-variables",
        "bad-query",
        "no-query",
        "batch",
        "unknown-member",
    ],
)
@pytest.mark.parametrize("accept", [SPEC, "application/json", URQL])
def test_what_is_not_plain_goes_the_long_way(both: BothWays, body: object, accept: str) -> None:
    answer, served = both.compare(body, accept)
    assert not served
    assert answer.status in {200, 400}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[" * 200 + b"]" * 200, "application/json"),
        (b'{"query": "{ __typename }"}', "text/plain"),
        (b'{"query": "{ __typename }"}', "application/graphql"),
        (b'{"query": "{ __typename }"}', "Application/JSON"),  # Strawberry reads the type case-sensitively
        (b'{"query": "{ __typename }"}', "APPLICATION/JSON; charset=utf-8"),
        (b"1", "application/json"),
        (b"null", "application/json"),
        (b'"{ __typename }"', "application/json"),
        (b'{"query": "{ __typename }\xff"}', "application/json"),  # not UTF-8
    ],
    ids=[
        *("not-json", "too-deep", "text", "graphql", "capitals", "capitals-charset"),
        *("number", "null", "string", "not-utf-8"),
    ],
)
def test_bodies_it_does_not_read_are_refused_alike(both: BothWays, body: bytes, content_type: str) -> None:
    answer, served = both.compare(body, SPEC, content_type)
    assert not served
    assert answer.status == 400


def test_a_client_preferring_server_sent_events_gets_its_stream(both: BothWays) -> None:
    answer, served = both.compare({"query": "{ __typename }"}, "text/event-stream")
    assert not served
    assert dict(answer.headers)["content-type"].startswith("text/event-stream")


def test_a_tenant_over_its_cost_budget_is_refused_alike(caplog: pytest.LogCaptureFixture) -> None:
    one = 'jobs(first: 100, filter: {queue: "default"}) { edges { node { id } } }'
    query = "{ " + " ".join(f"a{i}: {one}" for i in range(5)) + " }"  # admin 2,000; tenant 12,000
    with client_with(api_keys=api_keys_setting()) as keyed:
        ways = BothWays(keyed, caplog)
        admin, admin_served = ways.compare({"query": query}, SPEC, headers=bearer("key-root"))
        tenant, tenant_served = ways.compare({"query": query}, SPEC, headers=bearer("key-alice"))
    assert (admin_served, tenant_served) == (True, False)
    assert "errors" not in json.loads(admin.body)
    assert json.loads(tenant.body)["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


class _Traced(SchemaExtension):
    """Stands for the tracing extension (`tracing.graphql_extensions` when OTEL_* turn it on)."""


def test_with_tracing_on_every_request_goes_the_long_way(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert build_schema(make_settings()).direct_execution is True
    monkeypatch.setattr(tracing, "graphql_extensions", lambda: [_Traced])
    assert build_schema(make_settings()).direct_execution is False
    with client_with() as traced:
        view = graphql_view(traced.app)  # type: ignore[arg-type]
        assert view.direct.enabled is False
        response = traced.post(PATH, json={"query": "{ __typename }"})
    assert response.json() == {"data": {"__typename": "Query"}}


def test_any_other_extension_or_view_hook_turns_the_short_path_off() -> None:
    settings = make_settings()
    schema = build_schema(settings)
    made = GuardedSchema(
        query=Query,
        extensions=[*OWN_EXTENSIONS, _Traced],
        limits=schema.documents.limits,
        cache=DocumentCache(1 << 20, 1 << 16),
        persisted=schema.persisted,
    )
    assert made.direct_execution is False

    class RootedView(JobsGraphQL):
        async def get_root_value(self, request: Any) -> None:
            return None

    rooted = RootedView(build_schema(settings), origins=OriginPolicy.of(settings))
    assert rooted.direct.enabled is False

    class EncodingView(JobsGraphQL):  # the short path encodes answers itself: it must not skip this
        def encode_json(self, data: object) -> str:
            return json.dumps(data)

    assert EncodingView(build_schema(settings), origins=OriginPolicy.of(settings)).direct.enabled is False
    assert JobsGraphQL(build_schema(settings), origins=OriginPolicy.of(settings)).direct.enabled is True


def _jobs_stored(redis_client: redis.Redis) -> int:
    return sum(1 for _ in redis_client.scan_iter("rq:job:*", count=1000))


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [{"query": "{ __typename }"}, [{"query": "{ __typename }"}], {"query": "{ nope }"}],
    ids=["served", "declined-batch", "declined-invalid"],
)
async def test_a_body_in_several_messages_is_read_whole_both_ways(
    settings: Settings, service: JobService, body: object
) -> None:
    """The short path reads the body from ASGI messages itself and, when it declines, gives the
    view the same bytes again: the answers to a body in one message and in three are the same."""
    app = create_app(settings, service)
    view = graphql_view(app)
    raw = json.dumps(body).encode()
    answers = []
    for direct in (True, False):
        view.direct.enabled = direct
        for chunks in ([raw], [raw[:5], raw[5:9], raw[9:]]):
            headers = ((b"content-type", b"application/json"), (b"x-request-id", b"req"))
            answers.append(await asgi_call(app, "POST", PATH, chunks, headers))
    assert all(answer == answers[0] for answer in answers), answers
    assert answers[0].status in {200, 400}


def test_a_declined_body_is_decoded_once(both: BothWays) -> None:
    """What the short path decoded before declining is not decoded again by the view."""
    decoded: list[object] = []
    loads = jsoncodec.loads

    def counting(data: str | bytes) -> object:
        decoded.append(data)
        return loads(data)

    with patch.object(jsoncodec, "loads", counting):
        both.send(
            json.dumps([{"query": "{ __typename }"}]).encode(),
            {"content-type": "application/json"},
            direct=True,
        )
    assert len(decoded) == 1
