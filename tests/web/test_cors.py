"""CORS (`gql_jobs.web.cors`): other origins' pages may call REST and /graphql, and open WebSockets,
exactly when `GQL_JOBS_CORS_ORIGINS` (or `cors_localhost`, as under `gql-jobs dev`) allows them."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from gql_jobs.dev import free_port
from gql_jobs.settings import SettingsError, load_settings
from tests.conftest import start_dev, wait_for
from tests.graphql_helpers import client_with

APP = "https://app.example"
EVIL = "https://evil.example"
ROUTES = [("POST", "/graphql"), ("POST", "/jobs"), ("GET", "/jobs/JOB-x")]
PREFLIGHT_HEADERS = "authorization, x-api-key, idempotency-key, content-type"


@pytest.fixture
def cors_client(redis_client: redis.Redis) -> Iterator[TestClient]:
    with client_with(cors_origins=APP) as client:
        yield client


def preflight(client: TestClient, path: str, origin: str, method: str = "POST") -> dict[str, str]:
    response = client.options(
        path,
        headers={
            "origin": origin,
            "access-control-request-method": method,
            "access-control-request-headers": PREFLIGHT_HEADERS,
        },
    )
    return {"status": str(response.status_code), **response.headers}


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_preflight_from_an_allowed_origin_is_answered(
    cors_client: TestClient, method: str, path: str
) -> None:
    headers = preflight(cors_client, path, APP, method)
    assert headers["status"] == "200"
    assert headers["access-control-allow-origin"] == APP
    allowed = {h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "x-api-key", "idempotency-key", "content-type"} <= allowed
    assert method in headers["access-control-allow-methods"]
    assert headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in headers


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_preflight_from_another_origin_gets_no_cors_headers(
    cors_client: TestClient, method: str, path: str
) -> None:
    headers = preflight(cors_client, path, EVIL, method)
    assert headers["status"] == "400"
    assert "access-control-allow-origin" not in headers


def test_an_actual_request_from_an_allowed_origin_exposes_the_request_id(cors_client: TestClient) -> None:
    response = cors_client.post("/graphql", json={"query": "{ __typename }"}, headers={"origin": APP})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert exposed == {"x-request-id", "retry-after"}
    assert response.headers["x-request-id"]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_an_actual_request_from_another_origin_gets_no_cors_headers(
    cors_client: TestClient, method: str, path: str
) -> None:
    response = cors_client.request(method, path, json={"query": "{ __typename }"}, headers={"origin": EVIL})
    assert "access-control-allow-origin" not in response.headers


def test_cors_is_off_by_default(client: TestClient) -> None:
    """Same origin only: no preflight is answered (as before), no header is added."""
    headers = preflight(client, "/graphql", APP)
    assert headers["status"] == "405"
    assert "access-control-allow-origin" not in headers
    response = client.post("/graphql", json={"query": "{ __typename }"}, headers={"origin": APP})
    assert "access-control-allow-origin" not in response.headers


def test_a_refusal_of_the_body_guards_carries_cors_headers(redis_client: redis.Redis) -> None:
    """A page must be able to read why its request was refused (413 here)."""
    with client_with(cors_origins=APP, max_payload_bytes=10, max_batch_size=1) as client:
        response = client.post(
            "/graphql", content=b"x" * (2 << 20), headers={"origin": APP, "content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.headers["access-control-allow-origin"] == APP


def test_localhost_origins_are_allowed_on_any_port_when_asked(redis_client: redis.Redis) -> None:
    with client_with(cors_localhost=True) as client:
        for origin in ("http://localhost:3000", "http://127.0.0.1:5173", "http://localhost"):
            assert preflight(client, "/graphql", origin)["access-control-allow-origin"] == origin
        for origin in ("http://localhost.evil.example", "https://localhost:3000", "http://127.0.0.1.evil:80"):
            assert "access-control-allow-origin" not in preflight(client, "/graphql", origin)


def test_star_allows_every_origin_without_credentials(redis_client: redis.Redis) -> None:
    with client_with(cors_origins="*") as client:
        headers = preflight(client, "/graphql", EVIL)
    assert headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in headers


def _connect(client: TestClient, origin: str) -> str:
    with client.websocket_connect(
        "/graphql", subprotocols=["graphql-transport-ws"], headers={"origin": origin}
    ) as ws:
        ws.send_json({"type": "connection_init"})
        message_type: str = ws.receive_json()["type"]
        return message_type


def test_websockets_from_another_origin_are_accepted_only_when_listed(cors_client: TestClient) -> None:
    assert _connect(cors_client, APP) == "connection_ack"
    with pytest.raises(WebSocketDisconnect):
        _connect(cors_client, EVIL)


def test_websockets_follow_the_localhost_rule_too(redis_client: redis.Redis) -> None:
    with client_with(cors_localhost=True) as client:
        assert _connect(client, "http://localhost:3000") == "connection_ack"
        with pytest.raises(WebSocketDisconnect):
            _connect(client, EVIL)


def test_the_deprecated_variable_still_works_and_says_so(
    monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GQL_JOBS_ALLOWED_ORIGINS", APP)
    monkeypatch.delenv("GQL_JOBS_CORS_ORIGINS", raising=False)
    assert load_settings().cors_origins == [APP]
    with caplog.at_level(logging.WARNING), client_with() as client:
        assert _connect(client, APP) == "connection_ack"
    assert any("GQL_JOBS_ALLOWED_ORIGINS is deprecated" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("*,https://app.example", "give it alone"),
        ("https://app.example/path", "is not an origin"),
        ("app.example", "is not an origin"),
    ],
)
def test_a_bad_origin_list_stops_start_up_in_one_line(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv("GQL_JOBS_CORS_ORIGINS", value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "\n" not in str(raised.value)
    assert "GQL_JOBS_CORS_ORIGINS" in str(raised.value)
    assert says in str(raised.value)


def test_default_ports_are_left_out_as_browsers_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GQL_JOBS_CORS_ORIGINS", "https://app.example:443, http://b.example:80, http://c:8080")
    assert load_settings().cors_origins == ["https://app.example", "http://b.example", "http://c:8080"]


@pytest.mark.integration
@pytest.mark.timeout(300)  # `gql-jobs dev` starts three processes: slow on a loaded machine
def test_gql_jobs_dev_allows_localhost_origins_and_says_so() -> None:
    port = free_port()
    process = start_dev(port)
    base = f"http://127.0.0.1:{port}"
    try:

        def answered() -> httpx.Response | None:
            try:
                return httpx.options(
                    f"{base}/graphql",
                    headers={"origin": "http://localhost:3000", "access-control-request-method": "POST"},
                    timeout=1,
                )
            except httpx.HTTPError:
                return None

        wait_for(answered, timeout=120)
        response = answered()
        assert response is not None
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert b"CORS allows any http://localhost:<port>" in output
