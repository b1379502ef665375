"""ASGI guards on request bodies: their size (refused before it is buffered) and the time they take."""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLargeError(Exception):
    pass


class BodySizeLimit:
    """Answer 413 when a request declares, or streams, more than `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse(send)
            else:  # the server delivers no more than a declared length: nothing to count
                await self.app(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await _send_json(send, 413, f"Request body is larger than {self.max_bytes} bytes")


async def _send_json(send: Send, status: int, detail: str, *, close: bool = False) -> None:
    """A `{"detail": ...}` answer (the REST routes' shape); `close` ends the connection after it."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyReadTimeoutError(Exception):
    pass


class BodyReadTimeout:
    """Answer 408 (and close the connection) when a request's body is not all in `seconds` after
    the request began: a client trickling its body cannot hold a connection and a task for ever.

    Only reads of the body are timed: a request whose app never reads one, and the wait for a
    disconnect once the body is in (streaming responses), are not. Whatever the app does with the
    error raised from `receive` (FastAPI turns it into a 400, Strawberry into a 500), the client
    gets the 408.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # asyncio's own timeout, not anyio's `fail_after`: the server runs on asyncio, and its
        # cancel scope cost 10 us per read here, against 4 (every POST reads its body once).
        deadline = asyncio.get_running_loop().time() + self.seconds
        body_in = timed_out = started = False

        async def timed_receive() -> Message:
            nonlocal body_in, timed_out
            if body_in:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                timed_out = True
                raise BodyReadTimeoutError from None
            body_in = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return  # the answer is ours: 408
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not timed_out:
                raise
        if timed_out and not started:
            await _send_json(send, 408, "Request body not received in time", close=True)
