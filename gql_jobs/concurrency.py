"""The one way async code calls the (synchronous, RQ-based) job service, and the bounds around it.

Blocking calls run on worker threads drawn from pools of our own, never from anyio's default pool
(which Starlette uses for its own work), and never from each other's:

* the *request* pool (`run_sync`): every RQ call made for a request; its size is the
  `request_threads` setting (`size_request_pool`, called by the app at start-up);
* the *operator* pool (`run_sync_operator`): metrics scrapes, and the readiness check of a service
  without an async client. Request work can fill the request pool without starving them.

`/healthz` needs no thread at all, and `/readyz` pings Redis on the event loop.

On top of the pool, `ReadSlots` bounds the expensive reads (listings, counts, queue and worker
inventories) each principal may run at once: one tenant's 30-alias query waits for its own slots
instead of taking every thread of the process.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from gql_jobs.errors import TooManyConcurrentReadsError

P = ParamSpec("P")
T = TypeVar("T")

#: Threads of the request pool until the app sizes it from its settings.
DEFAULT_REQUEST_THREADS = 32
#: Threads for operators' endpoints: a scrape or two at a time is all they ever need.
OPERATOR_THREADS = 2

# Pools are per event loop (anyio's limiters belong to the loop that made them), like anyio's own.
_REQUEST_POOL: RunVar[anyio.CapacityLimiter] = RunVar("gql_jobs_request_pool")
_OPERATOR_POOL: RunVar[anyio.CapacityLimiter] = RunVar("gql_jobs_operator_pool")


def _pool(var: RunVar[anyio.CapacityLimiter], size: int) -> anyio.CapacityLimiter:
    limiter = var.get(None)
    if limiter is None:
        limiter = anyio.CapacityLimiter(size)
        var.set(limiter)
    return limiter


def request_pool() -> anyio.CapacityLimiter:
    """The request pool of the running event loop."""
    return _pool(_REQUEST_POOL, DEFAULT_REQUEST_THREADS)


def size_request_pool(threads: int) -> None:
    """Set the request pool's size on the running event loop (the app's start-up calls it)."""
    request_pool().total_tokens = threads


async def run_sync(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking service call on a request-pool thread: the event loop never waits on Redis."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs), limiter=request_pool())


async def run_sync_operator(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`run_sync` on the operator pool, which request work cannot fill."""
    limiter = _pool(_OPERATOR_POOL, OPERATOR_THREADS)
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs), limiter=limiter)


class ReadSlots:
    """At most `per_principal` expensive reads of one principal at once.

    A read over the bound waits for a slot of its own principal, up to `wait` seconds, then fails
    with `TooManyConcurrentReadsError` (`CONCURRENCY_LIMITED`): other principals never wait for it.
    One semaphore per principal name; names come from the configured keys, so the map is bounded.
    """

    def __init__(self, per_principal: int, wait: float) -> None:
        self.per_principal = per_principal
        self.wait = wait
        self._semaphores: dict[str, anyio.Semaphore] = {}

    def _semaphore(self, principal: str) -> anyio.Semaphore:
        semaphore = self._semaphores.get(principal)
        if semaphore is None:
            semaphore = self._semaphores[principal] = anyio.Semaphore(self.per_principal)
        return semaphore

    @asynccontextmanager
    async def slot(self, principal: str) -> AsyncIterator[None]:
        semaphore = self._semaphore(principal)
        try:
            with anyio.fail_after(self.wait):
                await semaphore.acquire()
        except TimeoutError:
            raise TooManyConcurrentReadsError(self.per_principal) from None
        try:
            yield
        finally:
            semaphore.release()

    def waiting(self, principal: str) -> int:
        """Reads of `principal` waiting for a slot now (for tests and debugging)."""
        semaphore = self._semaphores.get(principal)
        return semaphore.statistics().tasks_waiting if semaphore is not None else 0
