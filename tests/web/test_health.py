"""Health checks and metrics under load and behind keys; the per-principal bound on expensive reads.

"Slow" reads are made deterministic: `listing.count_jobs` (a `totalCount`, read on a store thread;
pages themselves are read on the event loop) is wrapped to wait on an event the test sets, so a
request stays inside its thread exactly as long as the test wants, whatever the machine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import httpx
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from gql_jobs.app import create_app
from gql_jobs.settings import Settings
from gql_jobs.store import listing
from gql_jobs.store.threads import request_pool
from tests.auth_helpers import api_keys_setting, bearer
from tests.conftest import make_settings, wait_for
from tests.server_helpers import running_server

pytestmark = pytest.mark.integration

JOBS = "{ jobs(first: 1) { totalCount } }"
#: A bound for the test itself (a request that hangs fails it), never a speed assertion.
HTTP_TIMEOUT = 30.0


@dataclass
class Gate:
    """Holds every `listing.count_jobs` call until `release` is set; counts them."""

    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    entered: int = 0
    inside: int = 0
    peak: int = 0

    def enter(self) -> None:
        with self.lock:
            self.entered += 1
            self.inside += 1
            self.peak = max(self.peak, self.inside)

    def leave(self) -> None:
        with self.lock:
            self.inside -= 1


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    gate = Gate()
    original = listing.count_jobs

    def held(*args: Any, **kwargs: Any) -> Any:
        gate.enter()
        try:
            assert gate.release.wait(HTTP_TIMEOUT), "the test never released the listing"
            return original(*args, **kwargs)
        finally:
            gate.leave()

    monkeypatch.setattr(listing, "count_jobs", held)
    yield gate
    gate.release.set()  # never leave server threads waiting, whatever the test did


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=16) as executor:
        yield executor


def post_graphql(base: str, query: str, key: str | None = None) -> dict[str, Any]:
    response = httpx.post(f"{base}/graphql", json={"query": query}, headers=bearer(key), timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def app_with_probes(settings: Settings, gate: Gate) -> FastAPI:
    """The app, plus test-only routes that show (and fill) the thread pools of the server's loop."""
    app = create_app(settings)

    async def shrink_default_pool() -> dict[str, int]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 1
        return {}

    def hold_a_default_thread() -> dict[str, int]:  # a sync route: Starlette runs it on the default pool
        gate.enter()
        try:
            assert gate.release.wait(HTTP_TIMEOUT)
        finally:
            gate.leave()
        return {}

    async def pools() -> dict[str, float]:
        default = anyio.to_thread.current_default_thread_limiter().statistics()
        requests = request_pool().statistics()
        return {
            "default_borrowed": default.borrowed_tokens,
            "default_total": default.total_tokens,
            "request_borrowed": requests.borrowed_tokens,
            "request_total": requests.total_tokens,
            "request_waiting": requests.tasks_waiting,
        }

    app.add_api_route("/test/shrink-default-pool", shrink_default_pool, methods=["POST"])
    app.add_api_route("/test/hold-default-thread", hold_a_default_thread)
    app.add_api_route("/test/pools", pools)
    return app


def pools_of(base: str) -> dict[str, float]:
    body: dict[str, float] = httpx.get(f"{base}/test/pools", timeout=HTTP_TIMEOUT).json()
    return body


def all_answered(futures: list[Future[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [future.result(timeout=HTTP_TIMEOUT) for future in futures]


def test_health_checks_and_metrics_answer_while_every_thread_pool_is_full(
    redis_client: redis.Redis, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    settings = make_settings(request_threads=3, max_concurrent_reads_per_principal=10)
    with running_server(app_with_probes(settings, gate)) as base:
        # anyio's default pool (Starlette's): one thread, held.
        assert httpx.post(f"{base}/test/shrink-default-pool").status_code == 200
        holder = pool.submit(httpx.get, f"{base}/test/hold-default-thread", timeout=HTTP_TIMEOUT)
        wait_for(lambda: pools_of(base)["default_borrowed"] == 1)
        # The request pool: 3 threads held by slow listings, 2 more listings waiting for a thread.
        slow = [pool.submit(post_graphql, base, JOBS) for _ in range(5)]
        wait_for(lambda: pools_of(base)["request_waiting"] == 2)
        state = pools_of(base)
        assert state["request_borrowed"] == state["request_total"] == 3
        assert state["default_borrowed"] == state["default_total"] == 1

        assert httpx.get(f"{base}/healthz", timeout=HTTP_TIMEOUT).json() == {"status": "ok"}
        assert httpx.get(f"{base}/readyz", timeout=HTTP_TIMEOUT).json() == {"status": "ready"}
        assert httpx.get(f"{base}/metrics", timeout=HTTP_TIMEOUT).status_code == 200

        gate.release.set()
        assert all("errors" not in body for body in all_answered(slow))
        assert holder.result(timeout=HTTP_TIMEOUT).status_code == 200


def test_one_principals_slow_reads_wait_for_its_own_slots_not_anothers(
    redis_client: redis.Redis, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    app = create_app(
        make_settings(api_keys=api_keys_setting(), max_concurrent_reads_per_principal=2, request_threads=8)
    )
    slots = app.state.service.read_slots
    with running_server(app) as base:
        alices = [pool.submit(post_graphql, base, JOBS, "key-alice") for _ in range(4)]
        wait_for(lambda: gate.entered == 2 and slots.waiting("alice") == 2)
        bobs = pool.submit(post_graphql, base, JOBS, "key-bob")
        wait_for(lambda: gate.entered == 3)  # bob got in while two of alice's reads still wait
        assert slots.waiting("alice") == 2
        assert gate.inside == 3
        gate.release.set()
        answers = all_answered([*alices, bobs])
    assert all(body["data"]["jobs"] == {"totalCount": 0} for body in answers)
    assert gate.peak == 3


def test_a_read_that_waits_too_long_for_a_slot_fails_with_a_code(
    redis_client: redis.Redis, gate: Gate, pool: ThreadPoolExecutor
) -> None:
    app = create_app(
        make_settings(api_keys=api_keys_setting(), max_concurrent_reads_per_principal=1, read_slot_wait=0.2)
    )
    with running_server(app) as base:
        first = pool.submit(post_graphql, base, JOBS, "key-alice")
        wait_for(lambda: gate.entered == 1)
        refused = post_graphql(base, JOBS, "key-alice")  # its one slot is held until released
        gate.release.set()
        assert "errors" not in first.result(timeout=HTTP_TIMEOUT)
    assert refused["data"] is None
    [error] = refused["errors"]
    assert error["extensions"]["code"] == "CONCURRENCY_LIMITED"
    assert "at most 1" in error["message"]


def test_aliases_of_one_query_share_their_principals_slots(redis_client: redis.Redis, gate: Gate) -> None:
    gate.release.set()  # nothing waits here: the test watches how many listings ever ran at once
    # Eight scans cost more than the default budget (`max_query_cost`): raise it, the slots are tested.
    settings = make_settings(max_concurrent_reads_per_principal=2, max_query_cost=100_000)
    aliases = " ".join(f"a{i}: jobs(first: 1, filter: {{status: FAILED}}) {{ totalCount }}" for i in range(8))
    with TestClient(create_app(settings)) as client:
        body = client.post("/graphql", json={"query": "{ " + aliases + " }"}).json()
    assert "errors" not in body, body
    assert len(body["data"]) == 8
    assert gate.entered == 8
    assert gate.peak <= 2


def test_a_caller_without_a_key_takes_no_slot_and_no_thread(redis_client: redis.Redis, gate: Gate) -> None:
    gate.release.set()
    app = create_app(make_settings(api_keys=api_keys_setting()))
    with TestClient(app) as client:
        body = client.post("/graphql", json={"query": JOBS}).json()
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert gate.entered == 0


# -- /metrics behind keys --------------------------------------------------------------------------


@pytest.fixture
def keyed_client(redis_client: redis.Redis, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    overrides: dict[str, Any] = getattr(request, "param", {})
    settings = make_settings(api_keys=api_keys_setting(), **overrides)
    with TestClient(create_app(settings)) as client:
        yield client


def scrape(client: TestClient, key: str | None) -> int:
    return int(client.get("/metrics", headers=bearer(key)).status_code)


def test_metrics_need_a_metrics_or_admin_key_when_keys_are_configured(keyed_client: TestClient) -> None:
    assert scrape(keyed_client, None) == 401
    assert scrape(keyed_client, "not-a-key") == 401
    assert scrape(keyed_client, "key-alice") == 403
    assert scrape(keyed_client, "key-root") == 200
    assert scrape(keyed_client, "key-scraper") == 200
    refused = keyed_client.get("/metrics")
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "gql_jobs_" not in refused.text


@pytest.mark.parametrize("keyed_client", [{"metrics_access": "open"}], indirect=True)
def test_metrics_can_be_left_open_on_purpose(keyed_client: TestClient) -> None:
    assert scrape(keyed_client, None) == 200


def test_metrics_of_an_open_api_are_open(client: TestClient) -> None:
    assert scrape(client, None) == 200


@pytest.mark.parametrize("access", ["key", "auto"])
def test_metrics_access_forced_to_key_still_follows_the_open_api(
    redis_client: redis.Redis, access: str
) -> None:
    with TestClient(create_app(make_settings(metrics_access=access))) as client:
        assert scrape(client, None) == 200  # no keys: every caller is the anonymous admin


def test_a_bad_metrics_access_setting_is_refused() -> None:
    from gql_jobs.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="GQL_JOBS_METRICS_ACCESS"):
        load_settings(metrics_access="public")
