"""Redis Sentinel clients that survive a failover: what redis-py's own Sentinel support leaves out.

Used by `gql_jobs.store.connections` for every synchronous client built from Sentinel settings.

* `MasterConnection` asks Sentinel for the master on *every* (re)connection. redis-py's
  `SentinelManagedConnection` does so only in `connect()`, but redis-py 8 reconnects a command's
  connection between retries through `connect_check_health()`, which goes straight back to the
  address cached on the connection: after a failover, to the dead master (connection refused until
  the retries run out) or, once it restarts, to a stale node that still believes it is the master.
* `MasterConnection` also closes itself when a read is interrupted, as redis-py's plain connections
  do (`disconnect_on_error=True`); redis-py's Sentinel connection defaults to False.
* `AsyncMasterConnection` does the same for the API's async client: a health-check PING that
  fails reconnects through `connect_check_health` too (before a submission's write), and would
  otherwise write to the node the connection knew, a stale master after a reboot.
* `FailoverRetry` lets a worker's Redis calls wait out a failover (bounded by a deadline), so the
  job in hand is recorded on the new master instead of being left to the abandoned-job sweep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import redis.asyncio.connection
import redis.asyncio.sentinel
from redis.backoff import ExponentialBackoff
from redis.connection import AbstractConnection
from redis.retry import Retry
from redis.sentinel import SentinelManagedConnection

T = TypeVar("T")


class MasterConnection(SentinelManagedConnection):
    """A connection to the master that Sentinel names at the time of each (re)connection."""

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        """Reconnect through Sentinel (`connect`), never to the address of the last connection.

        redis-py calls this directly (not `connect`) when a command finds its connection closed,
        e.g. on a retry after the master died.
        """
        if not self._sock:
            self.connect()  # type: ignore[no-untyped-call]

    def connect_to(self, address: tuple[str, int]) -> None:
        """Connect to the address Sentinel just gave (redis-py's own, minus the override above)."""
        self.host, self.port = address
        AbstractConnection.connect_check_health(
            self, check_health=self.connection_pool.check_connection, retry_socket_connect=False
        )

    def read_response(
        self, disable_decoding: bool = False, *, disconnect_on_error: bool | None = True, **kwargs: Any
    ) -> Any:
        """Close the connection when the read fails or is interrupted, as a plain connection does.

        Otherwise an exception raised into a blocking read (RQ's SIGTERM handler raises
        `StopRequested` while the worker waits in BLMOVE; a job timeout raises in a work horse)
        returns the connection to the pool with that command's reply still to come: the next
        command on it (RQ's `register_death` pipeline, at shutdown) queues behind the BLMOVE for up
        to the dequeue timeout, then reads the BLMOVE's reply as its own ("Wrong number of response
        items from pipeline execution").
        """
        return super().read_response(disable_decoding, disconnect_on_error=disconnect_on_error, **kwargs)


class AsyncMasterConnection(redis.asyncio.sentinel.SentinelManagedConnection):
    """`MasterConnection` for the async client: every (re)connection goes to the master Sentinel
    names at that moment (redis-py reconnects a failed health check's connection directly)."""

    async def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if not self.is_connected:
            await self.connect()  # type: ignore[no-untyped-call]

    async def connect_to(self, address: tuple[str, int]) -> None:
        self.host, self.port = address
        await redis.asyncio.connection.AbstractConnection.connect_check_health(
            self, check_health=self.connection_pool.check_connection, retry_socket_connect=False
        )


#: The deadline of the outermost `FailoverRetry` call in progress in this thread (module level:
#: redis-py deep-copies a connection's retry object, and a `threading.local` cannot be copied).
_deadline = threading.local()


class FailoverRetry(Retry):
    """Retry for up to `wait` seconds in all, rather than a number of times.

    Sentinel promotes a replica only `down-after-milliseconds` after the master stops answering; in
    between, every attempt fails (connection refused, then "no master found"). A worker that waits
    out that window keeps the job in hand: its work horse records the job on the new master, where
    a worker that gave up would leave it to the abandoned-job sweep (failed, minutes later). redis-py
    nests retries (a command retries, and each reconnection retries too): nested calls share the
    outermost call's deadline, so the wait stays bounded by `wait`. `redis_deadline` shortens it.
    """

    def __init__(self, wait: float) -> None:
        super().__init__(ExponentialBackoff(cap=1.0, base=0.1), -1)
        self.wait = wait

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        outermost = getattr(_deadline, "at", None) is None
        if outermost:
            _deadline.at = time.monotonic() + self.wait
        try:
            failures = 0
            while True:
                try:
                    return do()
                except self._supported_errors as error:
                    if is_retryable and not is_retryable(error):
                        raise
                    failures += 1
                    if with_failure_count:
                        fail(error, failures)
                    else:
                        fail(error)
                    pause = self._backoff.compute(failures)
                    if time.monotonic() + pause >= _deadline.at:
                        raise
                    time.sleep(pause)
        finally:
            if outermost:
                _deadline.at = None


@contextmanager
def redis_deadline(seconds: float) -> Iterator[None]:
    """Within the block, `FailoverRetry` gives up `seconds` from now (sooner if already due)."""
    previous = getattr(_deadline, "at", None)
    at = time.monotonic() + seconds
    _deadline.at = at if previous is None else min(previous, at)
    try:
        yield
    finally:
        _deadline.at = previous
