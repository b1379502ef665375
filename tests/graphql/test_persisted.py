"""Documents sent by hash (`graphql.persisted`): automatic persisted queries kept in Redis, and
trusted documents from a manifest, with the mode that runs nothing else."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from starlette.routing import Route

from gql_jobs.app import create_app
from gql_jobs.auth import ANONYMOUS
from gql_jobs.constants import PERSISTED_QUERY_PREFIX
from gql_jobs.errors import ServiceUnavailableError
from gql_jobs.graphql.documents import DocumentCache
from gql_jobs.graphql.persisted import PersistedDocuments
from gql_jobs.graphql.router import JobsGraphQL
from gql_jobs.service.persisted import PersistedQueries
from gql_jobs.settings import SettingsError, load_settings
from tests.auth_helpers import api_keys_setting, bearer
from tests.conftest import make_settings

SPEC = "application/graphql-response+json"
#: What Apollo Client 4 sends.
APOLLO_ACCEPT = f"{SPEC},application/json;q=0.9"
QUERY = "query Hello { __typename }"
OTHER = "query Other { tasks { name } }"
SUBSCRIPTION = 'subscription Follow { jobUpdates(id: "JOB-none") { id } }'


def sha(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def apq(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def post(client: TestClient, accept: str = "application/json", **body: Any) -> httpx.Response:
    response: httpx.Response = client.post("/graphql", json=body, headers={"Accept": accept})
    return response


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def persisted_keys(redis_client: redis.Redis) -> list[bytes]:
    return sorted(redis_client.scan_iter(match=PERSISTED_QUERY_PREFIX + "*"))


def document_cache(client: TestClient) -> DocumentCache:
    """The cache of the app's document checker, whose misses count documents handed to parsing."""
    (view,) = [
        route.endpoint
        for route in client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, Route) and isinstance(route.endpoint, JobsGraphQL)
    ]
    return view.schema.documents.cache  # type: ignore[attr-defined, no-any-return]


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "persisted-query-manifest.json"
    operations = [
        {"id": sha(document), "body": document, "name": name, "type": kind}
        for document, name, kind in [(QUERY, "Hello", "query"), (SUBSCRIPTION, "Follow", "subscription")]
    ]
    path.write_text(
        json.dumps({"format": "apollo-persisted-query-manifest", "version": 1, "operations": operations})
    )
    return path


@pytest.fixture
def trusted(redis_client: redis.Redis, manifest: Path) -> Iterator[TestClient]:
    """Only the manifest's documents run; keys are configured (alice, and the admin `key-root`)."""
    settings = make_settings(
        persisted_documents=manifest, only_persisted_documents=True, api_keys=api_keys_setting()
    )
    with TestClient(create_app(settings)) as client:
        yield client


# -- automatic persisted queries -------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "status"), [("application/json", 200), (APOLLO_ACCEPT, 400)])
def test_an_unknown_hash_is_persisted_query_not_found_as_apollo_reads_it(
    client: TestClient, accept: str, status: int
) -> None:
    response = post(client, accept, extensions=apq(sha(QUERY)))

    assert response.status_code == status
    body = response.json()
    # Apollo's link retries on the message or the code, in a 200 or (parsed from) a 4xx body.
    assert body["errors"] == [
        {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    ]
    assert ("data" in body) is (status == 200)


def test_a_document_sent_with_its_hash_runs_and_is_then_found_by_hash(
    client: TestClient, redis_client: redis.Redis
) -> None:
    digest = sha(QUERY)
    assert post(client, extensions=apq(digest)).json()["errors"][0]["message"] == "PersistedQueryNotFound"

    registered = post(client, query=QUERY, extensions=apq(digest))
    by_hash = post(client, extensions=apq(digest))
    # Apollo's useGETForHashedQueries (Apollo Client 3 sends `Accept: */*`: not GraphiQL's page).
    by_get = client.get("/graphql", params={"extensions": json.dumps(apq(digest))}, headers={"Accept": "*/*"})

    assert registered.json() == {"data": {"__typename": "Query"}}
    assert by_hash.json() == {"data": {"__typename": "Query"}}
    assert by_get.status_code == 200
    assert by_get.json() == {"data": {"__typename": "Query"}}
    key = PERSISTED_QUERY_PREFIX + digest
    assert persisted_keys(redis_client) == [key.encode()]
    assert redis_client.get(key) == QUERY.encode()
    assert 0 < redis_client.ttl(key) <= 86400


def test_each_use_renews_the_ttl(redis_client: redis.Redis, client: TestClient) -> None:
    digest = sha(QUERY)
    post(client, query=QUERY, extensions=apq(digest))
    redis_client.expire(PERSISTED_QUERY_PREFIX + digest, 5)

    assert post(client, extensions=apq(digest)).json() == {"data": {"__typename": "Query"}}
    assert redis_client.ttl(PERSISTED_QUERY_PREFIX + digest) > 5


def test_a_document_registered_through_one_process_is_found_by_another(redis_client: redis.Redis) -> None:
    digest = sha(QUERY)
    with TestClient(create_app(make_settings())) as first, TestClient(create_app(make_settings())) as second:
        post(first, query=QUERY, extensions=apq(digest))

        assert post(second, extensions=apq(digest)).json() == {"data": {"__typename": "Query"}}


def test_a_hash_that_is_not_the_documents_is_refused_and_nothing_is_kept(
    client: TestClient, redis_client: redis.Redis
) -> None:
    response = post(client, APOLLO_ACCEPT, query=QUERY, extensions=apq(sha(OTHER)))

    assert response.status_code == 400
    assert codes(response.json()) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    assert persisted_keys(redis_client) == []


@pytest.mark.parametrize(
    "persisted",
    [
        {"version": 2, "sha256Hash": "a" * 64},
        {"version": 1, "sha256Hash": "a" * 63},
        {"version": 1, "sha256Hash": "g" * 64},
        {"version": 1},
        "a" * 64,
    ],
)
def test_a_malformed_persisted_query_extension_is_a_bad_request(
    client: TestClient, redis_client: redis.Redis, persisted: object
) -> None:
    body = post(client, query=QUERY, extensions={"persistedQuery": persisted}).json()

    assert codes(body) == ["BAD_REQUEST"]
    assert persisted_keys(redis_client) == []


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("{ noSuchField }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ __typename", "GRAPHQL_PARSE_FAILED"),
        ("{ __typename }" + " " * 40_000, "DOCUMENT_TOO_LARGE"),
    ],
)
def test_a_document_that_does_not_run_is_not_kept(
    client: TestClient, redis_client: redis.Redis, document: str, code: str
) -> None:
    body = post(client, query=document, extensions=apq(sha(document))).json()

    assert codes(body) == [code]
    assert persisted_keys(redis_client) == []


def test_only_callers_with_a_key_register_documents(redis_client: redis.Redis) -> None:
    digest = sha(QUERY)
    with TestClient(create_app(make_settings(api_keys=api_keys_setting()))) as client:
        anonymous = client.post("/graphql", json={"query": QUERY, "extensions": apq(digest)})
        assert anonymous.json() == {"data": {"__typename": "Query"}}
        assert persisted_keys(redis_client) == []

        client.post("/graphql", json={"query": QUERY, "extensions": apq(digest)}, headers=bearer("key-alice"))
        assert persisted_keys(redis_client) == [(PERSISTED_QUERY_PREFIX + digest).encode()]


def test_batched_operations_are_found_by_hash_each(redis_client: redis.Redis) -> None:
    digest = sha(QUERY)
    with TestClient(create_app(make_settings(max_batch_operations=5))) as client:
        post(client, query=QUERY, extensions=apq(digest))
        response = client.post(
            "/graphql", json=[{"extensions": apq(digest)}, {"extensions": apq(sha(OTHER))}]
        )

    assert response.json()[0] == {"data": {"__typename": "Query"}}
    assert codes(response.json()[1]) == ["PERSISTED_QUERY_NOT_FOUND"]


def test_with_persisted_queries_off_a_hash_is_not_supported_and_a_document_runs(
    redis_client: redis.Redis,
) -> None:
    with TestClient(create_app(make_settings(persisted_queries=False))) as client:
        by_hash = post(client, extensions=apq(sha(QUERY))).json()
        in_full = post(client, query=QUERY, extensions=apq(sha(QUERY))).json()

    assert by_hash["errors"] == [
        {"message": "PersistedQueryNotSupported", "extensions": {"code": "PERSISTED_QUERY_NOT_SUPPORTED"}}
    ]
    assert in_full == {"data": {"__typename": "Query"}}
    assert persisted_keys(redis_client) == []


def test_a_hash_only_subscription_over_sse_is_looked_up_too(client: TestClient) -> None:
    response = client.post(
        "/graphql", json={"extensions": apq(sha(SUBSCRIPTION))}, headers={"Accept": "text/event-stream"}
    )

    assert codes(response.json()) == ["PERSISTED_QUERY_NOT_FOUND"]


# -- trusted documents -----------------------------------------------------------------------------


def test_the_manifests_documents_run_by_hash_without_redis(manifest: Path, redis_client: redis.Redis) -> None:
    with TestClient(
        create_app(make_settings(persisted_documents=manifest, persisted_queries=False))
    ) as client:
        by_apq = post(client, extensions=apq(sha(QUERY))).json()
        by_document_id = post(client, documentId=f"sha256:{sha(QUERY)}").json()
        by_get = client.get("/graphql", params={"documentId": f"sha256:{sha(QUERY)}"}).json()
        unknown = post(client, documentId=f"sha256:{sha(OTHER)}").json()
        malformed = post(client, documentId="md5:abc").json()

    assert by_apq == by_document_id == by_get == {"data": {"__typename": "Query"}}
    assert codes(unknown) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert codes(malformed) == ["BAD_REQUEST"]
    assert persisted_keys(redis_client) == []


@pytest.mark.parametrize(
    "content",
    [
        {sha(QUERY): QUERY},
        {
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": {sha(QUERY): {"body": QUERY}},
        },
    ],
    ids=["map", "operations by id"],
)
def test_other_manifest_shapes_are_read(tmp_path: Path, redis_client: redis.Redis, content: object) -> None:
    path = tmp_path / "persisted-documents.json"
    path.write_text(json.dumps(content))
    with TestClient(create_app(make_settings(persisted_documents=path))) as client:
        assert post(client, documentId=sha(QUERY)).json() == {"data": {"__typename": "Query"}}


def test_only_trusted_documents_refuses_any_other_before_parsing(trusted: TestClient) -> None:
    cache = document_cache(trusted)
    misses = cache.misses

    response = trusted.post(
        "/graphql", json={"query": OTHER}, headers={"Accept": APOLLO_ACCEPT, **bearer("key-alice")}
    )

    assert response.status_code == 400
    assert codes(response.json()) == ["PERSISTED_DOCUMENT_REQUIRED"]
    assert cache.misses == misses  # the document checker never saw it: nothing parsed it


@pytest.mark.parametrize(
    "body",
    [
        {"extensions": apq(sha(QUERY))},
        {"documentId": f"sha256:{sha(QUERY)}"},
        {"query": QUERY},  # a manifest's document sent in full (Apollo's fallback)
        {"query": QUERY, "extensions": apq(sha(QUERY))},
    ],
)
def test_only_trusted_documents_runs_the_manifests(trusted: TestClient, body: dict[str, Any]) -> None:
    response = trusted.post("/graphql", json=body, headers=bearer("key-alice"))

    assert response.json() == {"data": {"__typename": "Query"}}


def test_only_trusted_documents_registers_nothing(trusted: TestClient, redis_client: redis.Redis) -> None:
    body = {"query": OTHER, "extensions": apq(sha(OTHER))}
    registered = trusted.post("/graphql", json=body, headers=bearer("key-alice")).json()
    by_hash = trusted.post(
        "/graphql", json={"extensions": apq(sha(OTHER))}, headers=bearer("key-alice")
    ).json()

    assert codes(registered) == ["PERSISTED_DOCUMENT_REQUIRED"]
    assert codes(by_hash) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert persisted_keys(redis_client) == []


def test_admin_keys_may_send_any_document_for_graphiql_and_the_console(trusted: TestClient) -> None:
    anonymous = trusted.post("/graphql", json={"query": "{ __schema { queryType { name } } }"}).json()
    admin = trusted.post(
        "/graphql", json={"query": "{ __schema { queryType { name } } }"}, headers=bearer("key-root")
    ).json()

    assert codes(anonymous) == ["PERSISTED_DOCUMENT_REQUIRED"]
    assert admin == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


def test_the_open_apis_anonymous_admin_is_not_exempt(manifest: Path, redis_client: redis.Redis) -> None:
    settings = make_settings(persisted_documents=manifest, only_persisted_documents=True)
    with TestClient(create_app(settings)) as client:
        assert codes(post(client, query=OTHER).json()) == ["PERSISTED_DOCUMENT_REQUIRED"]


def test_only_trusted_documents_holds_over_websockets(trusted: TestClient) -> None:
    with trusted.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_json({"type": "connection_init", "payload": bearer("key-alice")})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json(
            {"type": "subscribe", "id": "1", "payload": {"query": "subscription { jobEvents { id } }"}}
        )
        message = ws.receive_json()

    assert message["type"] == "error"
    assert [error["extensions"]["code"] for error in message["payload"]] == ["PERSISTED_DOCUMENT_REQUIRED"]


# -- the manifest is checked at start-up -----------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (json.dumps({"a" * 64: QUERY}), "is not the SHA-256 of its document"),
        (json.dumps({"nope": QUERY}), "is not a SHA-256 hex digest"),
        (json.dumps({sha(QUERY): 1}), "is not a string"),
        (json.dumps({"format": "apollo-persisted-query-manifest", "version": 2}), "version 2"),
        (json.dumps({"format": "other"}), "expected"),
        ("{", "is not JSON"),
    ],
)
def test_a_manifest_that_cannot_serve_stops_start_up_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, problem: str
) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(content)
    monkeypatch.setenv("GQL_JOBS_PERSISTED_DOCUMENTS", str(path))

    with pytest.raises(SettingsError) as refused:
        load_settings()

    assert "GQL_JOBS_PERSISTED_DOCUMENTS" in str(refused.value)
    assert problem in str(refused.value)
    assert "\n" not in str(refused.value)


def test_only_persisted_documents_needs_a_manifest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GQL_JOBS_ONLY_PERSISTED_DOCUMENTS", "true")

    with pytest.raises(
        SettingsError, match=r"GQL_JOBS_ONLY_PERSISTED_DOCUMENTS.*GQL_JOBS_PERSISTED_DOCUMENTS"
    ):
        load_settings()


def test_a_manifest_document_over_the_size_limit_stops_start_up(tmp_path: Path) -> None:
    big = "{ __typename }" + " " * 100
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({sha(big): big}))

    with pytest.raises(SettingsError, match=r"GQL_JOBS_PERSISTED_DOCUMENTS.*larger than"):
        load_settings(persisted_documents=path, max_document_bytes=50)


# -- Redis failing ---------------------------------------------------------------------------------


class FailingStore(PersistedQueries):
    """The service's store of persisted queries, with Redis unreachable."""

    def __init__(self) -> None:
        self.registered = 0

    async def lookup(self, digest: str) -> str | None:
        raise ServiceUnavailableError()

    async def register(self, digest: str, document: str) -> None:
        self.registered += 1
        raise ServiceUnavailableError()


@pytest.mark.anyio
async def test_redis_failing_is_service_unavailable_for_a_hash_and_costs_only_the_shortcut() -> None:
    persisted = PersistedDocuments(make_settings())
    store = FailingStore()

    looked_up = await persisted.resolve(None, apq(sha(QUERY)), None, store)
    await persisted.register(sha(QUERY), QUERY, ANONYMOUS, store)  # does not raise

    assert looked_up.error is not None
    assert looked_up.error.extensions == {"code": "SERVICE_UNAVAILABLE"}
    assert store.registered == 1
