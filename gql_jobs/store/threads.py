"""The one way the store runs synchronous work (RQ's calls, WATCH loops) without blocking the loop.

The service is async; most of its Redis work runs on the event loop with the async client. What
cannot (RQ is synchronous, and so are the paths that rely on the synchronous client's behaviour
under WATCH: see `writes`) is handed to a thread by `in_thread`, and nothing else in the package
starts threads for job work. Threads come from pools of our own, never from anyio's default pool
(which Starlette uses for its own work), and never from each other's:

* the *request* pool (`in_thread`): every synchronous store call made for a request; its size is
  the `request_threads` setting (`size_request_pool`, called by the app at start-up);
* the *operator* pool (`in_operator_thread`): metrics scrapes, so that request work can fill the
  request pool without starving them.

`/healthz` needs no thread at all, and `/readyz` pings Redis on the event loop.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

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


async def in_thread(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking store work on a request-pool thread: the event loop never waits on it."""
    return await _run(request_pool(), functools.partial(func, *args, **kwargs))


async def in_operator_thread(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`in_thread` on the operator pool, which request work cannot fill."""
    return await _run(_pool(_OPERATOR_POOL, OPERATOR_THREADS), functools.partial(func, *args, **kwargs))


async def _run(limiter: anyio.CapacityLimiter, call: Callable[[], T]) -> T:
    return await anyio.to_thread.run_sync(call, limiter=limiter)
