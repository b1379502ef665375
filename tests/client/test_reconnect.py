"""`follow` and `events` over a WebSocket that drops: a proxy between the client and the real
server relays HTTP and the graphql-transport-ws WebSocket, and closes the client's WebSocket (code
1012, "service restart", as a redeploying load balancer does) after it relayed the first answer."""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect

from gql_jobs.client import AsyncGqlJobsClient, GqlJobsClient, JobStatus, ServerUnreachableError
from tests.client.conftest import Server
from tests.server_helpers import running_server

pytestmark = pytest.mark.integration
PROTOCOL = "graphql-transport-ws"


class DropsTheWebSocket:
    """Relays to `upstream`; the first `drops` WebSockets are closed after one answer went through.
    `before_reconnect`, if given, is awaited before a later WebSocket is relayed (to let the job
    end while the client is away)."""

    def __init__(self, upstream: str, drops: int = 1, before_reconnect: Any = None) -> None:
        self.upstream = upstream
        self.drops = drops
        self.before_reconnect = before_reconnect
        self.connections = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await self._relay_websocket(WebSocket(scope, receive, send))
        elif scope["type"] == "http":
            await self._relay_http(scope, receive, send)

    async def _relay_http(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        headers = {k: v for k, v in request.headers.items() if k in ("authorization", "content-type")}
        async with httpx.AsyncClient() as upstream:
            answer = await upstream.post(
                f"{self.upstream}{request.url.path}", content=await request.body(), headers=headers
            )
        await Response(answer.content, answer.status_code, media_type="application/json")(
            scope, receive, send
        )

    async def _relay_websocket(self, client: WebSocket) -> None:
        self.connections += 1
        dropping = self.connections <= self.drops
        if self.connections > 1 and self.before_reconnect is not None:
            await self.before_reconnect()
        await client.accept(subprotocol=PROTOCOL)
        ws_upstream = self.upstream.replace("http://", "ws://") + "/graphql"
        async with (
            connect(ws_upstream, subprotocols=[PROTOCOL]) as upstream,  # type: ignore[list-item]
            anyio.create_task_group() as group,
        ):

            async def to_upstream() -> None:  # until the client leaves: then the relay ends
                with contextlib.suppress(WebSocketDisconnect):
                    while True:
                        await upstream.send(await client.receive_text())
                group.cancel_scope.cancel()

            group.start_soon(to_upstream)
            async for message in upstream:
                await client.send_text(str(message))
                if dropping and '"next"' in str(message):
                    await client.close(code=1012)
                    break
            group.cancel_scope.cancel()


def test_follow_reconnects_and_ends_with_the_final_state(server: Server) -> None:
    with GqlJobsClient(server.url, api_key=server.key) as direct:
        job = direct.submit("sleep", {"seconds": 0.5, "steps": 2})

        async def until_final() -> None:  # the job ends while the client is disconnected
            async with AsyncGqlJobsClient(server.url, api_key=server.key) as watcher:
                assert await watcher.wait(job.id, timeout=60) == {"slept": 0.5}

        proxy = DropsTheWebSocket(server.url, before_reconnect=until_final)
        with (
            running_server(proxy) as proxy_url,
            GqlJobsClient(proxy_url, api_key=server.key, retries=3, backoff=0.01) as client,
        ):
            seen = [update.status for update in client.follow(job.id)]
    assert proxy.connections == 2
    assert seen[-1] is JobStatus.FINISHED
    assert len(seen) == len(set(zip(seen, range(len(seen)), strict=True)))


def test_wait_survives_a_dropped_websocket(server: Server) -> None:
    proxy = DropsTheWebSocket(server.url, drops=2)
    with (
        running_server(proxy) as proxy_url,
        GqlJobsClient(proxy_url, api_key=server.key, retries=3, backoff=0.01) as client,
    ):
        job = client.submit("sleep", {"seconds": 0.2, "steps": 2})
        assert client.wait(job.id, timeout=60) == {"slept": 0.2}
    assert proxy.connections >= 2


def test_follow_gives_up_after_the_retries(server: Server) -> None:
    proxy = DropsTheWebSocket(server.url, drops=100)
    with GqlJobsClient(server.url, api_key=server.key) as direct:
        job = direct.submit("echo", {}, queue="parked")
    with (
        running_server(proxy) as proxy_url,
        GqlJobsClient(proxy_url, api_key=server.key, retries=2, backoff=0.01) as client,
    ):
        with pytest.raises(ServerUnreachableError, match="after 2 reconnections"):
            list(client.follow(job.id))
        client.delete(job.id)
    assert proxy.connections == 3


def test_events_resubscribe_after_a_drop(server: Server, tag: str) -> None:
    proxy = DropsTheWebSocket(server.url)

    async def main(url: str) -> list[str]:
        seen: list[str] = []
        async with AsyncGqlJobsClient(url, api_key=server.key, retries=3, backoff=0.01) as client:

            async def listen() -> None:
                async for event in client.events(tag=tag):
                    seen.append(event.job_id)
                    if proxy.connections >= 2 and len(seen) >= 2:
                        return

            async with anyio.create_task_group() as group:
                group.start_soon(listen)
                with anyio.fail_after(60):  # the subscription starts unobserved: submit until seen
                    while not (proxy.connections >= 2 and len(seen) >= 2):
                        await client.submit("echo", {}, queue="parked", tags=[tag])
                        await anyio.sleep(0.1)
            await client.delete_jobs(tag=tag)
        return seen

    with running_server(proxy) as proxy_url:
        seen = anyio.run(main, proxy_url)
    assert proxy.connections == 2 and len(seen) >= 2
