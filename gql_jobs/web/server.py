"""uvicorn's HTTP protocols with a deadline on request headers, for `gql-jobs serve` and `dev`.

uvicorn times out idle keep-alive connections but not a request in progress: a client that opens a
connection and sends nothing, or its headers a byte at a time (slowloris), holds the connection
and its memory for ever. These protocols give each request's headers `header_timeout` seconds,
counted from the connection's start or the end of the previous response, then close the
connection. They also bound the headers' size for httptools (h11 has `h11_max_incomplete_event_size`;
httptools keeps whatever it is sent). A slow *body* is the ASGI app's concern
(`limits.BodyReadTimeout`, which answers 408).

The timeout comes from the app's settings through the lifespan state (`HEADER_TIMEOUT_STATE`), so
the classes stay plain module attributes that uvicorn can hand to its worker processes. `serve`
and `dev` run the httptools one (uvicorn[standard] brings httptools; it is uvicorn's own default).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.h11_impl import RequestResponseCycle as H11Cycle
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle as HttpToolsCycle

#: The lifespan-state key under which the app publishes `Settings.header_timeout`.
HEADER_TIMEOUT_STATE = "gql_jobs.header_timeout"
#: Most bytes of headers a request may send (h11's own default bound, applied to httptools too).
MAX_HEADER_BYTES = 16 * 1024
_TOO_LARGE = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class HeaderDeadline:
    """The deadline on one connection's request headers (shared by both protocols below)."""

    def __init__(self, protocol: Any, timeout: float | None) -> None:
        self.protocol = protocol
        self.timeout = timeout
        self.timer: asyncio.TimerHandle | None = None
        self.received = 0  # bytes of the headers being waited for

    def arm(self) -> None:
        """Start waiting for a request's headers (unless they are in, or nothing is configured)."""
        if self.timeout is None or self.timer is not None or self.headers_in():
            return
        self.received = 0
        self.timer = self.protocol.loop.call_later(self.timeout, self.expire)

    def disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def headers_in(self) -> bool:
        """A request is being handled: its headers all arrived."""
        cycle: H11Cycle | HttpToolsCycle | None = self.protocol.cycle
        return cycle is not None and not cycle.response_complete

    def before_data(self, data: bytes) -> None:
        if self.timer is not None:
            self.received += len(data)

    def after_data(self) -> None:
        """Disarm once the headers are in; refuse headers that grow past `MAX_HEADER_BYTES`."""
        if self.timer is None:
            return
        if self.headers_in():
            self.disarm()
        elif self.received > MAX_HEADER_BYTES and not self.protocol.transport.is_closing():
            self.disarm()
            self.protocol.transport.write(_TOO_LARGE)
            self.protocol.transport.close()

    def expire(self) -> None:
        self.timer = None
        if not self.headers_in() and not self.protocol.transport.is_closing():
            self.protocol.transport.close()


def _deadline_for(app_state: dict[str, Any]) -> float | None:
    timeout = app_state.get(HEADER_TIMEOUT_STATE)
    return float(timeout) if timeout is not None else None


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with `HeaderDeadline`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_deadline = HeaderDeadline(self, _deadline_for(self.app_state))

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.header_deadline.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.header_deadline.disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.header_deadline.before_data(data)
        super().data_received(data)
        self.header_deadline.after_data()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may start a pipelined request, whose headers are in
        if not self.transport.is_closing():
            self.header_deadline.arm()

    def handle_websocket_upgrade(self, event: Any) -> None:
        self.header_deadline.disarm()  # the connection now belongs to the WebSocket protocol
        super().handle_websocket_upgrade(event)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with `HeaderDeadline` (the one `serve` and `dev` run)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_deadline = HeaderDeadline(self, _deadline_for(self.app_state))

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.header_deadline.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.header_deadline.disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.header_deadline.before_data(data)
        super().data_received(data)
        self.header_deadline.after_data()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self.header_deadline.arm()

    def handle_websocket_upgrade(self) -> None:
        self.header_deadline.disarm()
        super().handle_websocket_upgrade()
