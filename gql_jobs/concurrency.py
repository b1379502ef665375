"""The one way async code calls the (synchronous, RQ-based) job service."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

P = ParamSpec("P")
T = TypeVar("T")


async def run_sync(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking service call on a worker thread: the event loop never waits on Redis."""
    return await anyio.to_thread.run_sync(functools.partial(func, *args, **kwargs))
