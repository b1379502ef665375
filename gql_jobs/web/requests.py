"""Request ids and REST request metrics: an ASGI middleware around the whole app.

Every HTTP request gets an id (the client's `X-Request-ID` if it sent a sane one, else 128 random
bits in hex), echoed in the response and attached to every log record written while it is handled
(`gql_jobs.observability.REQUEST_ID`).
"""

from __future__ import annotations

import os
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql_jobs.metrics import Stopwatch, observe_request
from gql_jobs.observability import REQUEST_ID

_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestContext:
    """ASGI middleware: request id in, request id out, and REST request metrics.

    GraphQL operations are measured by `graphql.schema.OperationMetrics`, which knows the operation.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _offered_id(scope) or os.urandom(16).hex()
        token = REQUEST_ID.set(request_id)
        watch = Stopwatch()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)
            route = scope.get("route")
            path = getattr(route, "path", None)
            if path is not None and not path.startswith("/graphql"):
                observe_request("rest", path, _outcome(status), watch.elapsed)


def _offered_id(scope: Scope) -> str | None:
    """The client's `X-Request-ID`, if it sent a sane one."""
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            offered = value.decode("latin-1")
            return offered if _SANE_ID.fullmatch(offered) else None
    return None


def _outcome(status: int) -> str:
    if status < 400:
        return "ok"
    return "client_error" if status < 500 else "server_error"
