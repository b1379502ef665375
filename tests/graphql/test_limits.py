"""Abusive GraphQL documents and bodies (issue #13), each sent for real, each refused with a code.

No test here measures time: where the danger is CPU, the tests count the work instead (selections
visited by the measuring pass, graphql-core's comparison budget spent, calls of `parse`), so
they mean the same on a busy machine. Exponential documents that would never finish with
Strawberry's old rules run under pytest-timeout's bound.
"""

from __future__ import annotations

import gc
import json
import re
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from graphql import OperationDefinitionNode, parse, validate
from graphql.validation.rules import overlapping_fields_can_be_merged
from starlette.routing import Route
from starlette.websockets import WebSocketDisconnect
from websockets.sync.client import connect

from gql_jobs.app import create_app
from gql_jobs.constants import SCAN_BUDGET
from gql_jobs.graphql import documents
from gql_jobs.graphql.documents import VALIDATION_BUDGET, DocumentChecker
from gql_jobs.graphql.measure import Pricing, measure
from gql_jobs.graphql.router import MAX_JSON_DEPTH, JobsGraphQL
from gql_jobs.graphql.schema import GuardedSchema, build_schema
from gql_jobs.settings import Settings
from tests.auth_helpers import api_keys_setting, bearer
from tests.conftest import make_settings, wait_for
from tests.graphql_helpers import client_with, data, gql

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = Settings.model_fields
BULK_ACTION_COST = DEFAULTS["max_bulk_jobs"].default + SCAN_BUDGET
PRICING = Pricing(
    max_page_size=DEFAULTS["max_page_size"].default, scan_budget=SCAN_BUDGET, bulk_action=BULK_ACTION_COST
)


def fan_out(levels: int, leaf: str = "__typename") -> str:
    """`F0` spreads `F1` twice, `F1` spreads `F2` twice, ...: 2^levels paths, a kilobyte of text."""
    fragments = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)]
    return "\n".join(["query { ...F0 }", *fragments, f"fragment F{levels} on Query {{ {leaf} }}"])


def codes(body: dict[str, Any]) -> list[str]:
    """The `extensions.code` of each top-level error (every one must have a code)."""
    assert body.get("errors"), body
    return [error["extensions"]["code"] for error in body["errors"]]


def checker_of(app: object) -> DocumentChecker:
    """The document pipeline of an app (to look into its cache)."""
    assert isinstance(app, FastAPI)
    route = next(r for r in app.routes if isinstance(r, Route) and r.path == "/graphql")
    assert isinstance(route.app, JobsGraphQL) and isinstance(route.app.schema, GuardedSchema)
    return route.app.schema.documents


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every document the pipeline hands to graphql-core's parser."""
    seen: list[str] = []
    real = documents.parse  # type: ignore[attr-defined]

    def counting(source: str, **options: Any) -> Any:
        seen.append(source)
        return real(source, **options)

    monkeypatch.setattr(documents, "parse", counting)
    return seen


# -- 1. exponential validation -------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_fragment_fan_out_is_measured_in_linear_work() -> None:
    visits = {n: measure(parse(fan_out(n)), PRICING).visits for n in (10, 20, 40)}

    # 2n + 1 selections in all; each is looked at twice (spreads, then measures): 4n + 3.
    assert visits == {10: 43, 20: 83, 40: 163}


@pytest.mark.timeout(60)
def test_a_forty_level_fan_out_is_refused_with_or_without_a_key(redis_client: Any) -> None:
    with client_with(api_keys=api_keys_setting()) as keyed:
        anonymous = keyed.post("/graphql", json={"query": fan_out(40)})
        with_key = keyed.post("/graphql", json={"query": fan_out(40)}, headers=bearer("key-alice"))

    for response in (anonymous, with_key):
        assert response.status_code == 200
        assert codes(response.json()) == ["QUERY_TOO_COMPLEX"]
        assert f"Query cost {2**40} exceeds the limit of 10000" in response.json()["errors"][0]["message"]


def test_aliases_are_counted_through_fragments_once_per_spread(client: TestClient) -> None:
    body = gql(client, fan_out(40, leaf="a: __typename"))

    assert "TOO_MANY_ALIASES" in codes(body)
    assert f"{2**40} aliases found. Allowed: 30" in [e["message"] for e in body["errors"]]


def test_depth_is_measured_through_fragments_and_points_at_the_deepest_field(client: TestClient) -> None:
    deep = 'job(id: "x") { ' + "dependsOn { " * 10 + "id" + " }" * 10 + " }"  # depth 11
    query = f"query Deep {{ ...A }} fragment A on Query {{ ...B }} fragment B on Query {{ {deep} }}"

    body = gql(client, query)

    assert codes(body) == ["QUERY_TOO_DEEP"]
    error = body["errors"][0]
    assert error["message"] == "'Deep' exceeds maximum operation depth of 10"
    assert error["locations"] == [{"line": 1, "column": query.index("id }") + 1}]


def test_fragment_cycles_are_reported_not_followed(client: TestClient) -> None:
    query = "query { ...A } fragment A on Query { ...B __typename } fragment B on Query { ...A }"

    body = gql(client, query)

    assert set(codes(body)) == {"GRAPHQL_VALIDATION_FAILED"}
    assert "Cannot spread fragment 'A' within itself" in body["errors"][0]["message"]


def test_a_fragment_chain_longer_than_the_recursion_limit_is_measured() -> None:
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} }}" for i in range(3000))
    document = parse(f"query {{ ...F0 }} {chain} fragment F3000 on Query {{ job(id: 1) {{ id }} }}")

    measured = measure(document, PRICING)

    [operation] = measured.operations.values()
    assert (operation.depth, operation.cost) == (1, 2)


def test_repeated_fields_spend_a_small_comparison_budget_then_are_refused(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    spent = [0]
    real = overlapping_fields_can_be_merged.spend_complexity_budget

    def counting(context: Any, cost: int) -> None:
        spent[0] += cost
        real(context, cost)

    monkeypatch.setattr(overlapping_fields_can_be_merged, "spend_complexity_budget", counting)
    query = "{ " + "tasks { name } " * 495 + "}"  # 1,982 tokens: 500,000 units (1 s) by default

    body = gql(client, query)

    assert codes(body) == ["QUERY_TOO_COMPLEX"]
    assert VALIDATION_BUDGET < spent[0] <= VALIDATION_BUDGET + 2


# -- 2. huge documents -----------------------------------------------------------------------------


HUGE = {
    "comment": "{ __typename }\n#" + "x" * 4_500_000,
    "string": '{ job(id: "' + "x" * 4_500_000 + '") { id } }',
}


@pytest.mark.parametrize("query", HUGE.values(), ids=HUGE.keys())
def test_a_huge_document_is_refused_before_parsing(client: TestClient, parses: list[str], query: str) -> None:
    body = gql(client, query)

    assert codes(body) == ["DOCUMENT_TOO_LARGE"]
    assert body["errors"][0]["extensions"]["limitBytes"] == 32768
    assert parses == []
    assert len(checker_of(client.app).cache) == 0


def test_the_size_limit_counts_utf8_bytes_and_admits_a_document_at_the_limit(
    client: TestClient, parses: list[str]
) -> None:
    euros = '{ job(id: "' + "€" * 11_000 + '") { id } }'  # 11,022 characters, 33,022 bytes
    at_limit = "{ __typename }#" + "x" * (32768 - 15)

    assert codes(gql(client, euros)) == ["DOCUMENT_TOO_LARGE"]
    assert data(client, at_limit) == {"__typename": "Query"}
    assert parses == [at_limit]


def test_the_size_limit_applies_to_get(client: TestClient, parses: list[str]) -> None:
    response = client.get("/graphql", params={"query": "{ __typename }#" + "x" * 40_000})

    assert response.status_code == 200
    assert codes(response.json()) == ["DOCUMENT_TOO_LARGE"]
    assert parses == []


@contextmanager
def serving(app: FastAPI) -> Iterator[int]:
    """The app on a real uvicorn on loopback; yields its port."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def test_the_size_limit_applies_to_websocket_subscribe_messages(redis_client: Any) -> None:
    huge = "subscription { jobEvents { type } }#" + "x" * 40_000
    with (
        serving(create_app(make_settings())) as port,
        connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"]) as ws,  # type: ignore[list-item]
    ):
        ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(ws.recv(timeout=60))["type"] == "connection_ack"
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": huge}}))
        message = json.loads(ws.recv(timeout=60))

    assert message["type"] == "error" and message["id"] == "1"
    assert [e["extensions"]["code"] for e in message["payload"]] == ["DOCUMENT_TOO_LARGE"]


def test_the_cache_stays_within_its_byte_budget(redis_client: Any) -> None:
    budget = 200_000
    queries = [f"query Q{i} {{ __typename }} #{'x' * 8000}" for i in range(30)]  # 8 kB each, allowed
    larger = "{ __typename } #" + "y" * 8200
    with client_with(document_cache_bytes=budget, document_cache_entry_bytes=8192) as client:
        cache = checker_of(client.app).cache
        for query in queries:
            assert data(client, query) == {"__typename": "Query"}
            assert cache.total_bytes <= budget
        assert data(client, larger) == {"__typename": "Query"}

    assert 0 < len(cache) < 30
    assert queries[-1] in cache and queries[0] not in cache  # the least recently used went first
    assert larger not in cache


def test_a_cache_entry_weighs_at_least_the_memory_it_holds() -> None:
    """The budget is in estimated bytes: the estimate must not be below what tracemalloc sees
    (a document's entry, and its shape's with the template, when it has literals)."""
    checker = checker_of(create_app(make_settings()))
    fields = "id status task queue payload tags description submittedAt createdAt enqueuedAt result"
    checker.check("{ tasks { name } }")  # warm graphql-core's per-schema caches first
    for query in (
        "{ " + " ".join(f'j{i}: job(id: "{i}") {{ {fields} }}' for i in range(30)) + " }",
        "{ __typename }#" + "x" * 30_000,
        "query(" + " ".join(f"$v{i}: Int" for i in range(300)) + ") { __typename }",
    ):
        gc.collect()
        before = checker.cache.total_bytes
        tracemalloc.start()
        checked = checker.check(query)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        added = checker.cache.total_bytes - before  # the shape's entry too (a document too large is in none)
        estimated = checked.weight + added - (checked.weight if query in checker.cache else 0)
        assert estimated >= held, (query[:40], estimated, held)


# -- cost budget per operation --------------------------------------------------------------------


def test_thirty_scanning_pages_are_refused_with_their_cost_and_the_limit(client: TestClient) -> None:
    one = "jobs(filter: {status: FAILED}) { edges { node { id } } }"
    query = "{ " + " ".join(f"a{i}: {one}" for i in range(30)) + " }"

    body = gql(client, query)

    assert codes(body) == ["QUERY_TOO_COMPLEX"]
    error = body["errors"][0]
    cost = 30 * (100 + SCAN_BUDGET + 100 * 3)
    assert f"Query cost {cost} exceeds the limit of 10000" in error["message"]
    assert (error["extensions"]["cost"], error["extensions"]["limit"]) == (cost, 10000)
    assert data(client, "{ " + one + " }") == {"jobs": {"edges": []}}


def test_bulk_actions_cost_their_bound_so_aliases_cannot_multiply_them(redis_client: Any) -> None:
    """Thirty aliases of one bulk action on a thousand ids were ~30 small fields: ~3.5 s of the
    API's CPU for one request. Each now costs the bulk limit plus a scan; one always fits."""
    one = "cancelJobs(filter: {ids: $ids}) { ... on BulkActionResult { acted } }"
    several = "mutation($ids: [ID!]!) { " + " ".join(f"a{i}: {one}" for i in range(4)) + " }"
    single = "mutation($ids: [ID!]!) { " + one + " }"
    with client_with(api_keys=api_keys_setting()) as keyed:
        for key in ("key-alice", "key-root"):
            refused = keyed.post(
                "/graphql", json={"query": several, "variables": {"ids": ["JOB-x"]}}, headers=bearer(key)
            ).json()
            assert codes(refused) == ["QUERY_TOO_COMPLEX"]
            assert refused["errors"][0]["extensions"]["cost"] == 4 * (BULK_ACTION_COST + 1)
            answered = keyed.post(
                "/graphql", json={"query": single, "variables": {"ids": ["JOB-x"]}}, headers=bearer(key)
            ).json()
            assert answered == {"data": {"cancelJobs": {"acted": 0}}}
    with client_with(max_bulk_jobs=100_000) as big:  # a bulk limit over the cost budget: still one
        assert data(big, single, ids=["JOB-x"]) == {"cancelJobs": {"acted": 0}}


def test_a_page_size_given_by_a_variable_counts_as_the_maximum() -> None:
    literal = measure(parse("{ jobs(first: 5) { totalCount } }"), PRICING).cost
    variable = measure(parse("query($n: Int) { jobs(first: $n) { totalCount } }"), PRICING).cost
    too_big = measure(parse("{ jobs(last: 100000) { totalCount } }"), PRICING).cost

    assert (literal, variable, too_big) == (5 + 5, 100 + 100, 100 + 100)


def test_a_filter_that_the_tenant_index_cannot_serve_costs_a_tenant_a_scan(redis_client: Any) -> None:
    one = 'jobs(first: 100, filter: {queue: "default"}) { edges { node { id } } }'
    query = "{ " + " ".join(f"a{i}: {one}" for i in range(5)) + " }"  # admin 2,000; tenant 12,000
    with client_with(api_keys=api_keys_setting()) as keyed:
        admin = keyed.post("/graphql", json={"query": query}, headers=bearer("key-root")).json()
        tenant = keyed.post("/graphql", json={"query": query}, headers=bearer("key-alice")).json()

    assert "errors" not in admin
    assert codes(tenant) == ["QUERY_TOO_COMPLEX"]
    assert tenant["errors"][0]["extensions"]["cost"] == 5 * (100 + SCAN_BUDGET + 100 * 3)


def console_documents() -> dict[str, str]:
    """The documents the console's modules (static/console/*.js) send, their `${...}` filled in."""
    constants: dict[str, str] = {}
    for module in sorted((ROOT / "gql_jobs/web/static/console").glob("*.js")):
        script = module.read_text(encoding="utf-8")
        found = re.findall(
            r"^(?:export )?const ([A-Z]+) = (?:\(\w+\) => )?[`\"](.*?)[`\"];$",
            script,
            re.MULTILINE | re.DOTALL,
        )
        constants.update(found)
    features = (ROOT / "gql_jobs/web/static/console/features.js").read_text(encoding="utf-8")
    attempts = re.search(r'attempts: "(attempts \{.*?\})",', features)
    fill = {
        "JOB": constants["JOB"],
        "fields": constants["JOB"],
        "field": "requeueJobs",
        "extra": attempts.group(1) if attempts else "",
    }
    documents = {}
    for name in ("META", "LIST", "COUNTS", "EVENTS", "SUBMIT", "QUEUES", "WORKERS", "EMPTY", "STATS", "BULK"):
        documents[name] = re.sub(r"\$\{(\w+)\}", lambda m: fill[m.group(1)], constants[name])
    detail = re.sub(r"\$\{(\w+)\}", lambda m: fill[m.group(1)], constants["DETAIL"])
    documents["DETAIL"] = f"query Job($id: ID!) {{ job(id: $id) {{ {detail} }} }}"
    return documents


def shipped_documents() -> Iterator[tuple[str, str]]:
    """The documents the console sends (static/console/) and the README shows."""
    for name, document in console_documents().items():
        yield f"console {name}", document
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for i, block in enumerate(re.findall(r"```graphql\n(.*?)```", readme, re.DOTALL)):
        yield f"README block {i}", block


@pytest.mark.parametrize(("where", "query"), list(shipped_documents()))
def test_what_the_console_and_the_readme_send_fits_the_default_budget(where: str, query: str) -> None:
    measured = measure(parse(query), PRICING)

    assert measured.tenant_cost <= DEFAULTS["max_query_cost"].default, where


def test_the_console_listing_with_the_costliest_filter_is_answered(client: TestClient) -> None:
    query = dict(shipped_documents())["console LIST"]

    jobs = data(client, query, filter={"status": "FAILED", "queue": "q"}, first=50)["jobs"]

    assert (jobs["totalCount"], jobs["edges"], jobs["pageInfo"]["hasNextPage"]) == (None, [], False)


# -- suggestions ----------------------------------------------------------------------------------

MISSPELLED = [
    ("{ jobs(filter: {statu: FAILED}) { totalCount } }", {}),  # an input field
    ("{ jobs(filter: {status: FAILD}) { totalCount } }", {}),  # an enum value
    ("{ jobs(firs: 1) { totalCount } }", {}),  # an argument
    ("query($f: JobFiltr) { jobs(filter: $f) { totalCount } }", {}),  # a type
    ('{ job(id: "x") { ... on Jb { id } } }', {}),  # a type condition
    ("{ jobz }", {}),  # a field
    ("query($f: JobFilter) { jobs(filter: $f) { totalCount } }", {"f": {"statu": "FAILED"}}),
    ("query($f: JobFilter) { jobs(filter: $f) { totalCount } }", {"f": {"status": "FAILD"}}),
]


@pytest.mark.parametrize(("query", "variables"), MISSPELLED)
def test_without_introspection_no_error_suggests_a_name(
    redis_client: Any, query: str, variables: dict[str, Any]
) -> None:
    with client_with(introspection=False) as locked, client_with() as open_:
        hidden = gql(locked, query, **variables)
        shown = gql(open_, query, **variables)

    assert "Did you mean" not in json.dumps(hidden)
    assert len(codes(hidden)) == len(codes(shown))
    assert "Did you mean" in json.dumps(shown)


def test_without_introspection_subscriptions_suggest_nothing_either(redis_client: Any) -> None:
    query = "subscription($f: JobFilter) { jobEvents(filter: $f) { type } }"
    with (
        client_with(introspection=False) as locked,
        locked.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws,
    ):
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json()["type"] == "connection_ack"
        payload = {"query": query, "variables": {"f": {"status": "FAILD"}}}
        ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
        message = ws.receive_json()

    assert message["type"] == "error"
    assert [e["extensions"]["code"] for e in message["payload"]] == ["BAD_USER_INPUT"]
    assert "Did you mean" not in json.dumps(message)


# -- deep JSON and deep literals ------------------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def post_raw(client: TestClient, body: str) -> Any:
    return client.post("/graphql", content=body, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("depth", [1000, MAX_JSON_DEPTH - 1])
def test_json_nested_too_deeply_is_a_400_graphql_error(
    client: TestClient, caplog: pytest.LogCaptureFixture, depth: int
) -> None:
    # The body itself and `variables` are two levels: `depth - 1` more make it just over the limit.
    response = post_raw(client, '{"query": "{ __typename }", "variables": {"v": ' + nested(depth) + "}}")

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert codes(response.json()) == ["JSON_TOO_DEEP"]
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_json_at_the_depth_limit_is_accepted(client: TestClient) -> None:
    body = '{"query": "{ __typename }", "variables": {"v": ' + nested(MAX_JSON_DEPTH - 2) + "}}"
    response = post_raw(client, body)

    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}


def test_deep_json_in_get_variables_is_a_400_graphql_error(client: TestClient) -> None:
    response = client.get("/graphql", params={"query": "{ __typename }", "variables": nested(1000)})

    assert response.status_code == 400
    assert codes(response.json()) == ["JSON_TOO_DEEP"]


def test_deep_json_over_a_websocket_closes_it_as_an_invalid_message(client: TestClient) -> None:
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_text(nested(1000))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()

    assert closed.value.code == 4400


def test_a_deeply_nested_literal_in_the_document_is_a_parse_error(client: TestClient) -> None:
    literal = "{a:" * 300 + "1" + "}" * 300  # 2 kB, 1,201 tokens
    body = gql(client, f"{{ jobs(filter: {literal}) {{ totalCount }} }}")

    assert codes(body) == ["GRAPHQL_PARSE_FAILED"]
    assert "nested too deeply" in body["errors"][0]["message"]


# -- refusals are GraphQL JSON with a code ---------------------------------------------------------

MUTATION = 'mutation { deleteJob(id: "x") { __typename } }'
REFUSALS: dict[str, Callable[[TestClient], Any]] = {
    "not JSON": lambda c: post_raw(c, "{"),
    "no query": lambda c: c.post("/graphql", json={}),
    "unknown operation": lambda c: c.post("/graphql", json={"query": "{ __typename }", "operationName": "x"}),
    "mutation over GET": lambda c: c.get("/graphql", params={"query": MUTATION}),
}


@pytest.mark.parametrize("send", REFUSALS.values(), ids=REFUSALS.keys())
def test_refusals_are_graphql_json_with_a_code(client: TestClient, send: Callable[[TestClient], Any]) -> None:
    response = send(client)

    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert codes(response.json()) == ["BAD_REQUEST"]


@pytest.mark.parametrize(
    "query",
    ["{ job(", "{ jobz }", "{ " + "tasks { name } " * 495 + "}", "{ " + "__typename " * 2001 + "}"],
    ids=["syntax", "validation", "aborted validation", "tokens"],
)
def test_every_document_error_carries_a_code(client: TestClient, query: str) -> None:
    assert all(codes(gql(client, query)))


@pytest.mark.parametrize(("where", "query"), list(shipped_documents()))
def test_what_the_console_and_the_readme_send_is_valid_and_named(where: str, query: str) -> None:
    """Named, because graphql-codegen and Relay's compiler refuse anonymous operations verbatim."""
    document = parse(query)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]

    assert validate(build_schema(make_settings())._schema, document) == [], where
    assert operations, where
    assert all(o.name is not None for o in operations), where
