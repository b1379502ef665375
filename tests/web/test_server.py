"""Slow clients against a real uvicorn on loopback: raw sockets that stall their headers or body.

The deadlines (2 s) are short enough that the tests end soon, and long enough that the requests
which must be served (headers in two packets, a body in two writes) never reach them, even on a
loaded CI machine; the clients cut off stall for good. The tests assert that the server closes the
connection (or answers 408), never how fast. Socket timeouts are only bounds on the test itself.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from websockets.sync.client import connect as ws_connect

from gql_jobs import cli
from gql_jobs.app import create_app
from gql_jobs.web.server import MAX_HEADER_BYTES, GuardedH11Protocol, GuardedHttpToolsProtocol
from tests.conftest import make_settings
from tests.server_helpers import running_server

pytestmark = pytest.mark.integration

DEADLINE = 2.0
#: How long the test waits for the server at most (a bound that only a broken server reaches).
TEST_BOUND = 30.0


@pytest.fixture(params=[GuardedHttpToolsProtocol, GuardedH11Protocol], ids=["httptools", "h11"])
def server(request: pytest.FixtureRequest, redis_client: redis.Redis) -> Iterator[tuple[str, int]]:
    settings = make_settings(header_timeout=DEADLINE, body_timeout=DEADLINE)
    with running_server(create_app(settings), http=request.param) as base:
        address = urlsplit(base)
        assert address.hostname is not None and address.port is not None
        yield address.hostname, address.port


def connect(server: tuple[str, int]) -> socket.socket:
    sock = socket.create_connection(server, timeout=TEST_BOUND)
    sock.settimeout(TEST_BOUND)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the test fails past the bound)."""
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def test_a_connection_that_sends_nothing_is_closed(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        assert read_until_closed(sock) == b""


def test_headers_that_never_end_are_cut_off(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        assert read_until_closed(sock) == b""


def test_headers_trickled_a_byte_at_a_time_are_cut_off(server: tuple[str, int]) -> None:
    """Each byte arrives well within any per-read timeout: only a deadline on the whole stops it."""
    trickle = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 3000
    sent = 0
    with connect(server) as sock:
        try:
            for sent, byte in enumerate(trickle):  # noqa: B007 (read after the loop)
                sock.sendall(bytes([byte]))
                time.sleep(0.01)  # the attack's pace, not a synchronisation
        except (BrokenPipeError, ConnectionResetError):
            pass
        else:
            pytest.fail("the server never closed the connection")
    assert sent < len(trickle)


def test_the_next_request_on_a_kept_alive_connection_has_a_deadline_too(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        first = b""
        while not first.endswith(b'{"status":"ok"}'):  # the whole first response
            chunk = sock.recv(65536)
            assert chunk, "closed before answering"
            first += chunk
        assert first.startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: te")
        assert read_until_closed(sock) == b""


def test_headers_in_several_packets_are_served(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        sock.sendall(b"Host: test\r\nConnection: close\r\n\r\n")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(b'{"status":"ok"}')


def test_oversized_headers_are_refused(server: tuple[str, int]) -> None:
    with connect(server) as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * (MAX_HEADER_BYTES + 4096))
        except (BrokenPipeError, ConnectionResetError):
            return  # closed even before it could answer
        answer = read_until_closed(sock)
    assert answer.split(b" ")[1] in {b"400", b"431"}  # h11 refuses by itself (400), httptools by us


@pytest.mark.parametrize(
    ("path", "content_type"), [("/graphql", "application/json"), ("/submit-job", "application/json")]
)
def test_a_body_that_stalls_gets_408_and_the_connection_closes(
    server: tuple[str, int], path: str, content_type: str
) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\nContent-Length: 100\r\n\r\n"
    )
    with connect(server) as sock:
        sock.sendall(head.encode() + b'{"query": ')
        answer = read_until_closed(sock)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout"
    assert b"connection: close" in rest.lower()
    assert json.loads(rest.partition(b"\r\n\r\n")[2]) == {"detail": "Request body not received in time"}


def test_a_body_that_arrives_in_time_is_served(server: tuple[str, int]) -> None:
    body = json.dumps({"query": "{ __typename }"}).encode()
    head = f"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    with connect(server) as sock:
        sock.sendall(head.encode() + b"Content-Type: application/json\r\n\r\n" + body[:5])
        sock.sendall(body[5:])
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(b'{"data":{"__typename":"Query"}}')


def test_a_websocket_outlives_the_header_deadline(server: tuple[str, int]) -> None:
    """The upgrade hands the connection to the WebSocket protocol: the HTTP deadline must not follow."""
    host, port = server
    with ws_connect(f"ws://{host}:{port}/graphql", subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        assert json.loads(ws.recv(timeout=TEST_BOUND))["type"] == "connection_ack"
        opened = time.monotonic()
        while time.monotonic() - opened < 3 * DEADLINE:  # the deadline passes several times over
            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(timeout=TEST_BOUND))["type"] == "pong"
            time.sleep(0.05)  # pacing, not a synchronisation


def test_serve_runs_the_guarded_protocol(monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    monkeypatch.setenv("GQL_JOBS_GRAPHIQL", "false")
    monkeypatch.setenv("GQL_JOBS_INTROSPECTION", "false")
    args = cli._parser().parse_args(["serve"])
    assert cli._serve(make_settings(), args) == 0
    assert seen["http"] is GuardedHttpToolsProtocol


def test_the_app_publishes_the_header_deadline_to_the_protocol(redis_client: redis.Redis) -> None:
    from gql_jobs.web.server import HEADER_TIMEOUT_STATE

    app = create_app(make_settings(header_timeout=7.5))

    async def lifespan_state() -> dict[str, Any]:
        async with app.router.lifespan_context(app) as state:
            return dict(state or {})

    assert asyncio.run(lifespan_state())[HEADER_TIMEOUT_STATE] == 7.5
