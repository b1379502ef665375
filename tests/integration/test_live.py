"""Live updates end to end: real WebSockets (and SSE) against the app, real worker processes."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from redis.client import PubSub
from starlette.testclient import WebSocketTestSession

from gql_jobs.app import create_app
from gql_jobs.constants import EVENTS_CHANNEL
from gql_jobs.store import events
from gql_jobs.store.connections import API_CLIENT_NAME, EVENTS_CLIENT_NAME
from tests.conftest import ROOT, make_settings, redis_test_url, subprocess_env, wait_for

pytestmark = pytest.mark.integration

StartWorker = Callable[..., subprocess.Popen[bytes]]
ID_FRAGMENT = " fragment Id on SubmitJobResult { ... on SubmitJobSuccess { job { id } } }"
JOB_UPDATES = """subscription ($id: ID!) {
  jobUpdates(id: $id) { id status progress { current total fraction message } error { type message } }
}"""


@pytest.fixture
def live_client(redis_client: redis.Redis) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(poll_interval=0.2))) as client:
        yield client


def submit(client: TestClient, task: str, payload: dict[str, Any], **options: Any) -> str:
    variables = {"input": {"task": task, "payload": payload, **options}}
    query = "mutation ($input: SubmitJobInput!) { submitJob(input: $input) { ...Id } }" + ID_FRAGMENT
    data = client.post("/graphql", json={"query": query, "variables": variables}).json()
    return str(data["data"]["submitJob"]["job"]["id"])


class TransportWs:
    """A minimal graphql-transport-ws client over the test WebSocket."""

    def __init__(self, ws: WebSocketTestSession) -> None:
        self.ws = ws
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json()["type"] == "connection_ack"

    def subscribe(self, query: str, op_id: str = "1", **variables: Any) -> None:
        self.ws.send_json(
            {"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables}}
        )

    def next(self) -> dict[str, Any]:
        """The payload of the next message, which must be a `next`."""
        message = self.ws.receive_json()
        assert message["type"] == "next", message
        return dict(message["payload"])

    def collect(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Payloads of `next` messages until `complete` or `error` (returned last)."""
        payloads = []
        while True:
            message = self.ws.receive_json()
            if message["type"] == "next":
                payloads.append(message["payload"])
            elif message["type"] in ("complete", "error"):
                return payloads, message


def follow(client: TestClient, job_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        session = TransportWs(ws)
        session.subscribe(JOB_UPDATES, id=job_id)
        return session.collect()


def states(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p["data"]["jobUpdates"] for p in payloads]


def test_a_job_is_followed_from_queued_through_its_steps_to_finished(
    live_client: TestClient, worker_process: StartWorker, tmp_path: Path
) -> None:
    """Each step is released only once the subscriber saw the one before (`gated_steps`), so the
    steps it sees do not depend on how fast the machine runs the worker or the test."""
    job_id = submit(live_client, "gated_steps", {"gate": str(tmp_path), "steps": 5, "timeout": 300})
    with live_client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        session = TransportWs(ws)
        session.subscribe(JOB_UPDATES, id=job_id)
        payloads = [session.next()]
        worker_process()
        for step in range(1, 6):
            (tmp_path / str(step)).touch()
            while (states(payloads)[-1]["progress"] or {}).get("current") != step:
                payloads.append(session.next())
        rest, end = session.collect()
    seen = states(payloads + rest)
    assert end["type"] == "complete"
    statuses = [s["status"] for s in seen]
    assert statuses[0] in ("QUEUED", "STARTED")
    assert statuses[-1] == "FINISHED"
    assert "STARTED" in statuses
    progress = [s["progress"]["current"] for s in seen if s["progress"] and s["status"] == "STARTED"]
    assert len(progress) >= 3
    assert progress == sorted(progress)
    assert seen[-1]["progress"] == {"current": 5.0, "total": 5.0, "fraction": 1.0, "message": "step 5 of 5"}


def test_failing_job_ends_failed_with_its_error(live_client: TestClient, worker_process: StartWorker) -> None:
    job_id = submit(live_client, "fail", {"message": "nope"})
    worker_process()
    payloads, end = follow(live_client, job_id)
    last = states(payloads)[-1]
    assert end["type"] == "complete"
    assert last["status"] == "FAILED"
    assert last["error"] == {"type": "gql_jobs.builtin_tasks.TaskFailedError", "message": "nope"}


def test_canceled_job_ends_canceled(live_client: TestClient) -> None:
    job_id = submit(live_client, "echo", {})
    with live_client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        session = TransportWs(ws)
        session.subscribe(JOB_UPDATES, id=job_id)
        assert ws.receive_json()["payload"]["data"]["jobUpdates"]["status"] == "QUEUED"
        cancel = "mutation ($id: ID!) { cancelJob(id: $id) { __typename } }"
        live_client.post("/graphql", json={"query": cancel, "variables": {"id": job_id}})
        payloads, end = session.collect()
    assert [s["status"] for s in states(payloads)] == ["CANCELED"]
    assert end["type"] == "complete"


def test_a_job_already_final_is_sent_once_then_completes(
    live_client: TestClient, drain: Callable[..., None]
) -> None:
    job_id = submit(live_client, "echo", {"x": 1})
    drain()
    payloads, end = follow(live_client, job_id)
    assert [s["status"] for s in states(payloads)] == ["FINISHED"]
    assert end["type"] == "complete"


def test_unknown_job_ends_with_a_clear_error(live_client: TestClient) -> None:
    payloads, end = follow(live_client, "JOB-nope")
    assert payloads == [] or payloads[0].get("errors")
    errors = end["payload"] if end["type"] == "error" else payloads[0]["errors"]
    assert "Job not found: JOB-nope" in json.dumps(errors)


def test_legacy_graphql_ws_protocol(live_client: TestClient, drain: Callable[..., None]) -> None:
    job_id = submit(live_client, "echo", {})
    drain()
    with live_client.websocket_connect("/graphql", subprotocols=["graphql-ws"]) as ws:
        ws.send_json({"type": "connection_init"})
        assert ws.receive_json()["type"] == "connection_ack"
        ws.send_json(
            {"id": "1", "type": "start", "payload": {"query": JOB_UPDATES, "variables": {"id": job_id}}}
        )
        messages = []
        while (message := ws.receive_json())["type"] != "complete":
            if message["type"] == "data":
                messages.append(message["payload"]["data"]["jobUpdates"]["status"])
    assert messages == ["FINISHED"]


def test_polling_fallback_follows_a_job_run_by_a_plain_rq_worker(live_client: TestClient) -> None:
    job_id = submit(live_client, "sleep", {"seconds": 0.6, "steps": 3})
    rq_cli = shutil.which("rq", path=str(Path(sys.executable).parent))
    assert rq_cli is not None
    result: dict[str, Any] = {}
    follower = threading.Thread(
        target=lambda: result.update(zip(("payloads", "end"), follow(live_client, job_id), strict=True))
    )
    follower.start()
    subprocess.run(
        [rq_cli, "worker", "-S", "json", "-u", redis_test_url(), "--burst", "default"],
        env=subprocess_env(),
        cwd=ROOT,
        check=True,
        timeout=60,
        capture_output=True,
    )
    follower.join(timeout=30)
    assert not follower.is_alive()
    assert states(result["payloads"])[-1]["status"] == "FINISHED"
    assert result["end"]["type"] == "complete"


def test_server_sent_events_transport(live_client: TestClient, worker_process: StartWorker) -> None:
    job_id = submit(live_client, "sleep", {"seconds": 0.4, "steps": 2})
    worker_process()
    events: list[tuple[str, str]] = []
    body = {"query": JOB_UPDATES, "variables": {"id": job_id}}
    with live_client.stream(
        "POST", "/graphql", json=body, headers={"accept": "text/event-stream"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name:
                events.append((name, line.split(":", 1)[1].strip()))
                if name == "complete":
                    break
    statuses = [json.loads(data)["data"]["jobUpdates"]["status"] for name, data in events if name == "next"]
    assert statuses[-1] == "FINISHED"
    assert events[-1][0] == "complete"


def test_job_events_stream_only_matching_jobs(live_client: TestClient, drain: Callable[..., None]) -> None:
    query = 'subscription { jobEvents(filter: {tag: "blue"}) { type jobId status job { tags } } }'
    with live_client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        session = TransportWs(ws)
        session.subscribe(query)
        wait_for(lambda: live_client.app.state.live.watcher_count == 1)  # type: ignore[attr-defined]
        red = submit(live_client, "echo", {}, tags=["red"])
        blue = submit(live_client, "echo", {}, tags=["blue"])
        drain()
        received: list[dict[str, Any]] = []
        while len(received) < 3:
            received.append(ws.receive_json()["payload"]["data"]["jobEvents"])
    assert {event["jobId"] for event in received} == {blue}
    assert red not in json.dumps(received)
    assert [event["status"] for event in received] == ["QUEUED", "STARTED", "FINISHED"]
    assert all(event["job"]["tags"] == ["blue"] for event in received)


#: A channel the probe below listens to beside the events', for the marker that ends its reading.
MARKER = "test:marker"


def published_before_a_marker(redis_client: redis.Redis, probe: PubSub) -> list[dict[str, Any]]:
    """The events channel's messages published so far: the marker published now reaches the probe
    after all of them (Redis delivers a subscriber's messages in the order their PUBLISHes ran), so
    "no further message" is known without listening for a while."""
    redis_client.publish(MARKER, b"end")
    messages: list[dict[str, Any]] = []

    def marker_arrived() -> bool:
        message = probe.get_message(timeout=0.1)  # (a subscribe confirmation also reads as None)
        if message is not None and message["channel"] == MARKER.encode():
            return True
        if message is not None:
            messages.append(message)
        return False

    wait_for(marker_arrived)
    return messages


def test_a_batch_is_one_message_but_an_event_per_job(
    live_client: TestClient, redis_client: redis.Redis
) -> None:
    query = 'subscription { jobEvents(filter: {tag: "blue"}) { type jobId status } }'
    batch = "mutation ($inputs: [SubmitJobInput!]!) { submitJobs(inputs: $inputs) { ...Id } }" + ID_FRAGMENT
    inputs = [{"task": "echo", "payload": {"n": n}, "tags": ["blue" if n % 2 else "red"]} for n in range(6)]
    probe = redis_client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    probe.subscribe(EVENTS_CHANNEL, MARKER)
    wait_for(lambda: redis_client.pubsub_numsub(MARKER) == [(MARKER.encode(), 1)])  # both, at once
    with live_client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        session = TransportWs(ws)
        session.subscribe(query)
        wait_for(lambda: live_client.app.state.live.watcher_count == 1)  # type: ignore[attr-defined]
        reply = live_client.post("/graphql", json={"query": batch, "variables": {"inputs": inputs}}).json()
        ids = [item["job"]["id"] for item in reply["data"]["submitJobs"]]
        received = [ws.receive_json()["payload"]["data"]["jobEvents"] for _ in range(3)]
    assert [event["jobId"] for event in received] == ids[1::2]
    assert {event["status"] for event in received} == {"QUEUED"}
    messages = published_before_a_marker(redis_client, probe)
    probe.close()
    assert len(messages) == 1  # one PUBLISH for the whole batch
    assert [event.job_id for event in events.decode(messages[0]["data"])] == ids


def test_subscriptions_per_connection_are_capped(redis_client: redis.Redis) -> None:
    with TestClient(create_app(make_settings(ws_max_subscriptions=1))) as client:
        job_id = submit(client, "echo", {})
        with client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            session = TransportWs(ws)
            session.subscribe(JOB_UPDATES, "1", id=job_id)
            ws.receive_json()
            session.subscribe(JOB_UPDATES, "2", id=job_id)
            message = ws.receive_json()
    assert message["type"] == "error"
    assert message["id"] == "2"


def test_cross_origin_websockets_are_refused_unless_allowed(redis_client: redis.Redis) -> None:
    from starlette.websockets import WebSocketDisconnect

    settings = make_settings(cors_origins="https://app.example")
    with TestClient(create_app(settings)) as client:
        with pytest.raises(WebSocketDisconnect):
            refuse_origin(client, "https://evil.example")
        with client.websocket_connect(
            "/graphql", subprotocols=["graphql-transport-ws"], headers={"origin": "https://app.example"}
        ) as ws:
            TransportWs(ws)


def test_a_thousand_subscribe_disconnect_cycles_leak_nothing(
    live_client: TestClient, redis_client: redis.Redis
) -> None:
    job_id = submit(live_client, "echo", {})  # stays QUEUED: every subscription stays open until we leave

    def cycle() -> None:
        with live_client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            TransportWs(ws).subscribe(JOB_UPDATES, id=job_id)
            assert ws.receive_json()["type"] == "next"

    async def task_count() -> int:
        return len(asyncio.all_tasks())

    portal = live_client.portal
    assert portal is not None
    for _ in range(50):  # warm-up: the one event subscription, the poller, the pool at its working size
        cycle()
    live = live_client.app.state.live  # type: ignore[attr-defined]
    wait_for(lambda: live.watcher_count == 0)
    clients_before = clients_by_name(redis_client)
    tasks_before = portal.call(task_count)

    for _ in range(1000):
        cycle()

    wait_for(lambda: live.watcher_count == 0)
    wait_for(lambda: portal.call(task_count) <= tasks_before)
    clients_after = clients_by_name(redis_client)
    assert clients_after[EVENTS_CLIENT_NAME] == clients_before[EVENTS_CLIENT_NAME] == 1
    # The API's request pool may have grown by a connection or two under concurrency; it is bounded
    # by the pool size, not by subscriptions. Nothing else may appear.
    assert clients_after[API_CLIENT_NAME] <= 4
    assert {k: v for k, v in clients_after.items() if k != API_CLIENT_NAME} == {
        k: v for k, v in clients_before.items() if k != API_CLIENT_NAME
    }


def clients_by_name(client: redis.Redis) -> Counter[str]:
    return Counter(str(entry.get("name", "")) for entry in client.client_list())


def refuse_origin(client: TestClient, origin: str) -> None:
    with client.websocket_connect(
        "/graphql", subprotocols=["graphql-transport-ws"], headers={"origin": origin}
    ) as ws:
        ws.send_json({"type": "connection_init"})
        ws.receive_json()
