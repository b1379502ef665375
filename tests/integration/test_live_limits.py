"""Live updates under abuse (issue #13): the poller's cost, the fan-out's cost, per-principal limits.

Real WebSockets and SSE against the app (Starlette's TestClient, or a real uvicorn on loopback for
clients that vanish), real Redis; the poller is driven one cycle at a time (`poll_once`) with its
own loop an hour apart, so nothing waits on time. Costs are counted, not timed: jobs the poller
read, HGETALLs Redis ran, event watchers an event looked at.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import uvicorn
import websockets
from fastapi import FastAPI
from fastapi.testclient import TestClient
from rq.job import Job as RQJob
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect
from websockets.typing import Subprotocol

from gql_jobs.app import create_app
from gql_jobs.auth import ANONYMOUS
from gql_jobs.dev import free_port
from gql_jobs.domain import SubmitRequest, Submitted
from gql_jobs.service.live import LiveUpdates
from gql_jobs.settings import SettingsError, load_settings
from gql_jobs.store.rq_format import SERIALIZER
from tests.auth_helpers import Caller, api_keys_setting, bearer
from tests.conftest import make_settings, on_app, wait_for

pytestmark = pytest.mark.integration

IDLE_JOBS = 2000
BUDGET = 50
EVENTS = "subscription ($filter: JobFilter) { jobEvents(filter: $filter) { jobId status } }"
TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"


def quiet_settings(**overrides: Any) -> dict[str, Any]:
    """The poller's own loop an hour apart: tests run its cycles themselves."""
    return {"poll_interval": 3600, "poll_max_jobs": BUDGET, **overrides}


def live_of(client: TestClient) -> LiveUpdates:
    live: LiveUpdates = client.app.state.live  # type: ignore[attr-defined]
    return live


def connect(ws: WebSocketTestSession, key: str | None = None, protocol: str = TRANSPORT_WS) -> dict[str, Any]:
    """Send `connection_init` (with the key in its payload) and return the server's answer."""
    ws.send_json({"type": "connection_init", "payload": {"X-API-Key": key} if key else {}})
    return receive(ws)


def receive(ws: WebSocketTestSession) -> dict[str, Any]:
    """The next message, past keep-alives."""
    while (message := ws.receive_json())["type"] in ("ka", "ping"):
        pass
    result: dict[str, Any] = message
    return result


def subscribe(ws: WebSocketTestSession, op_id: str, query: str = EVENTS, **variables: Any) -> None:
    ws.send_json({"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables}})


def error_codes(message: dict[str, Any]) -> list[str]:
    payload = message["payload"]
    errors = payload if isinstance(payload, list) else payload.get("errors") or [payload]
    return [error.get("extensions", {}).get("code") for error in errors]


@pytest.mark.parametrize(
    "variable",
    [
        "GQL_JOBS_POLL_MAX_JOBS",
        "GQL_JOBS_WS_MAX_CONNECTIONS_PER_PRINCIPAL",
        "GQL_JOBS_MAX_SUBSCRIPTIONS_PER_PRINCIPAL",
    ],
)
def test_a_limit_of_zero_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv(variable, "0")
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert str(error.value).startswith(f"invalid settings: {variable}: ")
    assert "\n" not in str(error.value)


# -- the polling fallback (item 4) -----------------------------------------------------------------


@pytest.fixture
def quiet_client(redis_client: redis.Redis) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(**quiet_settings()))) as client:
        yield client


def submit_idle_jobs(client: TestClient, count: int) -> list[str]:
    """`count` jobs on a queue no worker serves, through the service in batches."""
    service = client.app.state.service  # type: ignore[attr-defined]
    ids: list[str] = []
    for start in range(0, count, 500):
        batch = [SubmitRequest(task="echo", queue="idle")] * min(500, count - start)
        outcomes = on_app(client, service.submit_many, ANONYMOUS, batch)
        assert all(isinstance(outcome, Submitted) for outcome in outcomes)
        ids += [outcome.record.id for outcome in outcomes]
    return ids


def hgetalls(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return int(stats.get("cmdstat_hgetall", {}).get("calls", 0))


def run_cycle(client: TestClient, redis_client: redis.Redis) -> tuple[int, int]:
    """One poll cycle: the jobs the poller read, and the HGETALLs Redis ran meanwhile."""
    live = live_of(client)
    before = hgetalls(redis_client)
    assert client.portal is not None
    client.portal.call(live.poll_once)
    return live.stats.last_jobs_read, hgetalls(redis_client) - before


@contextlib.contextmanager
def idle_jobs_with_a_subscriber(client: TestClient) -> Iterator[tuple[WebSocketTestSession, list[str]]]:
    """IDLE_JOBS queued jobs, all tracked for one `jobEvents` subscriber who has seen them queued."""
    with client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        assert connect(ws)["type"] == "connection_ack"
        subscribe(ws, "1", filter={"queue": "idle"})
        wait_for(lambda: live_of(client).watcher_count == 1)
        ids = submit_idle_jobs(client, IDLE_JOBS)
        seen = {receive(ws)["payload"]["data"]["jobEvents"]["jobId"] for _ in range(IDLE_JOBS)}
        assert seen == set(ids)
        assert live_of(client).plan.tracked_count == IDLE_JOBS
        yield ws, ids


def cycles_until_quiet(client: TestClient, redis_client: redis.Redis) -> int:
    """Run cycles until one reads nothing; each must stay within the budget."""
    limit = math.ceil(IDLE_JOBS / BUDGET) + 2
    for cycle in range(1, limit + 1):
        jobs, commands = run_cycle(client, redis_client)
        assert jobs <= BUDGET
        assert commands <= BUDGET
        if jobs == 0:
            return cycle
    raise AssertionError(f"the poller still reads jobs after {limit} cycles")


def test_idle_tracked_jobs_cost_a_bounded_number_of_reads_then_none(
    quiet_client: TestClient, redis_client: redis.Redis
) -> None:
    with idle_jobs_with_a_subscriber(quiet_client):
        cycles_until_quiet(quiet_client, redis_client)
        for _ in range(3):
            assert run_cycle(quiet_client, redis_client) == (0, 0)
        live = live_of(quiet_client)
        assert live.stats.most_jobs_read <= BUDGET
        assert live.plan.tracked_count == IDLE_JOBS  # still followed: a change would be seen


def test_a_change_no_event_announces_reaches_the_subscriber_within_the_budget(
    quiet_client: TestClient, redis_client: redis.Redis
) -> None:
    with idle_jobs_with_a_subscriber(quiet_client) as (ws, ids):
        cycles_until_quiet(quiet_client, redis_client)
        victim = ids[IDLE_JOBS // 2]
        RQJob.fetch(victim, connection=redis_client, serializer=SERIALIZER).cancel()  # RQ: no event
        plan = live_of(quiet_client).plan
        for _ in range(math.ceil(IDLE_JOBS / BUDGET) + 1):
            jobs, commands = run_cycle(quiet_client, redis_client)
            assert jobs <= BUDGET
            assert commands <= BUDGET
            if victim not in plan:  # read, found final, no longer followed
                break
        assert victim not in plan
        event = receive(ws)["payload"]["data"]["jobEvents"]
    assert event == {"jobId": victim, "status": "CANCELED"}


# -- the fan-out (item 5) ----------------------------------------------------------------------------


@pytest.fixture
def keyed_client(redis_client: redis.Redis) -> Iterator[TestClient]:
    settings = make_settings(
        api_keys=api_keys_setting(),
        **quiet_settings(ws_max_connections_per_principal=2, max_subscriptions_per_principal=3),
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_an_event_examines_only_the_watchers_that_may_match_it(redis_client: redis.Redis, drain: Any) -> None:
    settings = make_settings(api_keys=api_keys_setting(), **quiet_settings())
    with (
        TestClient(create_app(settings)) as client,
        client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as alice_ws,
        client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as bob_ws,
    ):
        live = live_of(client)
        connect(alice_ws, "key-alice")
        connect(bob_ws, "key-bob")
        for n in range(3):
            subscribe(alice_ws, f"all-{n}")
        for n in range(2):
            subscribe(alice_ws, f"x-{n}", filter={"tag": "x"})
        subscribe(bob_ws, "all")
        wait_for(lambda: live.watcher_count == 6)

        start = live.watchers_examined
        bobs = Caller(client, "key-bob").submit()
        assert receive(bob_ws)["payload"]["data"]["jobEvents"]["jobId"] == bobs
        assert live.watchers_examined - start == 1  # bob's one watcher; none of alice's five

        start = live.watchers_examined
        alices = Caller(client, "key-alice").submit(tags=["y"])
        alice_seen = [receive(alice_ws) for _ in range(3)]
        assert live.watchers_examined - start == 3  # alice's unfiltered three; not the two on tag x

        start = live.watchers_examined
        drain()  # our worker's events name no owner: each costs a read, then only the owner's shelf
        bob_seen = [receive(bob_ws) for _ in range(2)]
        alice_seen += [receive(alice_ws) for _ in range(6)]
        assert live.watchers_examined - start == 2 * 1 + 2 * 3
    assert {m["payload"]["data"]["jobEvents"]["jobId"] for m in alice_seen} == {alices}
    assert {m["payload"]["data"]["jobEvents"]["jobId"] for m in bob_seen} == {bobs}
    assert {m["id"] for m in alice_seen} == {"all-0", "all-1", "all-2"}


def refused(
    ws: WebSocketTestSession, key: str, protocol: str
) -> tuple[WebSocketDisconnect, dict[str, Any] | None]:
    """Send `connection_init` expecting a refusal: the close, and graphql-ws's message before it."""
    error = None
    try:
        answer = connect(ws, key, protocol)
        if protocol == LEGACY_WS:
            error = answer
        receive(ws)
    except WebSocketDisconnect as closed:
        return closed, error
    raise AssertionError("the connection was not closed")


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
def test_websocket_connections_are_limited_per_principal(keyed_client: TestClient, protocol: str) -> None:
    live = live_of(keyed_client)
    with contextlib.ExitStack() as stack:
        first, second = (
            stack.enter_context(keyed_client.websocket_connect("/graphql", subprotocols=[protocol]))
            for _ in range(2)
        )
        assert connect(first, "key-alice")["type"] == "connection_ack"
        assert connect(second, "key-alice")["type"] == "connection_ack"
        with keyed_client.websocket_connect("/graphql", subprotocols=[protocol]) as third:
            closed, error = refused(third, "key-alice", protocol)
        if protocol == LEGACY_WS:  # graphql-ws says why in a message; graphql-transport-ws in the close
            assert error is not None
            assert error["type"] == "connection_error"
            assert error["payload"]["extensions"]["code"] == "TOO_MANY_CONNECTIONS"
        assert closed.code == 4403
        assert "may hold 2 at once" in closed.reason
        with keyed_client.websocket_connect("/graphql", subprotocols=[protocol]) as bobs:
            assert connect(bobs, "key-bob")["type"] == "connection_ack"  # another principal's own
        assert live.connections.held("alice") == 2
        second.close()
        wait_for(lambda: live.connections.held("alice") == 1)
        with keyed_client.websocket_connect("/graphql", subprotocols=[protocol]) as again:
            assert connect(again, "key-alice")["type"] == "connection_ack"
    wait_for(lambda: live.connections.total() == 0)


def sse_subscribe(client: TestClient, key: str) -> str:
    """A `jobEvents` subscription over Server-Sent Events, read to its end (refused ones end)."""
    body = {"query": EVENTS, "variables": {}}
    headers = {"accept": "text/event-stream", **bearer(key)}
    with client.stream("POST", "/graphql", json=body, headers=headers) as response:
        assert response.status_code == 200
        return "".join(response.iter_text())


def test_subscriptions_are_limited_per_principal_across_connections_and_sse(
    keyed_client: TestClient,
) -> None:
    live = live_of(keyed_client)
    with (
        keyed_client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as first,
        keyed_client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as second,
    ):
        connect(first, "key-alice")
        connect(second, "key-alice")
        subscribe(first, "1")
        subscribe(first, "2")
        subscribe(second, "1")
        wait_for(lambda: live.subscriptions.held("alice") == 3)

        subscribe(second, "2")
        refused = receive(second)
        assert refused["id"] == "2"
        assert error_codes(refused) == ["TOO_MANY_SUBSCRIPTIONS"]
        stream = sse_subscribe(keyed_client, "key-alice")
        assert "TOO_MANY_SUBSCRIPTIONS" in stream
        assert live.subscriptions.held("alice") == 3

        with keyed_client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as bobs:
            connect(bobs, "key-bob")
            subscribe(bobs, "1")
            wait_for(lambda: live.subscriptions.held("bob") == 1)  # another principal's own

        first.close()
        wait_for(lambda: live.subscriptions.held("alice") == 1)
        subscribe(second, "3")
        wait_for(lambda: live.subscriptions.held("alice") == 2)
    wait_for(lambda: live.subscriptions.total() == 0 and live.watcher_count == 0)


@contextlib.contextmanager
def served(app: FastAPI) -> Iterator[int]:
    """The app on a real uvicorn on loopback (in a thread), for clients that drop their sockets."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn")
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive())
        assert thread.is_alive()
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)


async def open_and_subscribe(port: int) -> tuple[Any, asyncio.StreamWriter]:
    """Alice's WebSocket with two subscriptions, and her SSE subscription on a raw socket."""
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=[Subprotocol(TRANSPORT_WS)])
    await ws.send(json.dumps({"type": "connection_init", "payload": {"X-API-Key": "key-alice"}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    for op_id in ("1", "2"):
        await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": EVENTS}}))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"query": EVENTS}).encode()
    writer.write(
        b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        b"Content-Type: application/json\r\nX-API-Key: key-alice\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    assert (await reader.readline()).startswith(b"HTTP/1.1 200")
    return ws, writer


async def vanish(ws: Any, writer: asyncio.StreamWriter) -> None:
    """Reset both sockets: no close frame, no end of stream; the client is simply gone."""
    ws.transport.abort()
    writer.transport.abort()


def test_counts_are_released_when_clients_vanish(redis_client: redis.Redis) -> None:
    app = create_app(make_settings(api_keys=api_keys_setting(), **quiet_settings()))
    live: LiveUpdates = app.state.live
    with served(app) as port, asyncio.Runner() as runner:
        ws, writer = runner.run(asyncio.wait_for(open_and_subscribe(port), timeout=30))
        wait_for(lambda: live.connections.held("alice") == 1 and live.subscriptions.held("alice") == 3)
        runner.run(vanish(ws, writer))
        wait_for(lambda: live.connections.total() == 0)
        wait_for(lambda: live.subscriptions.total() == 0 and live.watcher_count == 0)


# -- connection_init (item 10, second half) --------------------------------------------------------


def test_a_second_connection_init_is_refused_on_legacy_graphql_ws(keyed_client: TestClient) -> None:
    live = live_of(keyed_client)
    with keyed_client.websocket_connect("/graphql", subprotocols=[LEGACY_WS]) as ws:
        assert connect(ws, "key-alice", LEGACY_WS)["type"] == "connection_ack"
        ws.send_json({"type": "connection_init", "payload": {"X-API-Key": "key-bob"}})
        refusal = receive(ws)
        assert refusal["type"] == "connection_error"
        assert refusal["payload"]["extensions"]["code"] == "ALREADY_INITIALISED"
        with pytest.raises(WebSocketDisconnect) as closed:
            receive(ws)
    assert closed.value.code == 4429
    assert live.connections.held("bob") == 0  # the principal never switched
    wait_for(lambda: live.connections.total() == 0)


def test_a_second_connection_init_closes_graphql_transport_ws_with_4429(keyed_client: TestClient) -> None:
    with keyed_client.websocket_connect("/graphql", subprotocols=[TRANSPORT_WS]) as ws:
        assert connect(ws, "key-alice")["type"] == "connection_ack"
        with pytest.raises(WebSocketDisconnect) as closed:
            connect(ws, "key-bob")
    assert closed.value.code == 4429
    wait_for(lambda: live_of(keyed_client).connections.total() == 0)
