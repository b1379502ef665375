"""What Redis failing looks like, and the guards that turn it into `ServiceUnavailableError`.

The service wraps its operations in `redis_guard`, so no layer above the store sees a Redis
exception (nor imports `redis` to catch one).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gql_jobs.errors import ServiceUnavailableError

P = ParamSpec("P")
T = TypeVar("T")

#: What Redis failing looks like (the async client's `connections.deadline` raises the built-in).
REDIS_FAILURES = (RedisConnectionError, RedisTimeoutError, TimeoutError)
#: Redis refusing writes for now (over `maxmemory`, or a replica since a failover): it refuses a
#: MULTI/EXEC as a whole (EXECABORT) and a script at its first write, so nothing was applied (how
#: submissions tell these apart from other errors, on Redis 6 too: `store.writes._writing`).
REDIS_REFUSALS = (OutOfMemoryError, ReadOnlyError)
#: Any error of the Redis client, and the socket errors under it (a lost pub/sub connection).
REDIS_ERRORS = (RedisError, OSError)


def redis_guard(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Turn "Redis is unreachable" (or refusing writes for now) into `ServiceUnavailableError`.

    For coroutines, whether their Redis calls ran on the loop (and time out with
    `connections.deadline`) or on a store thread (and time out on the synchronous client's socket)."""

    @functools.wraps(method)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except (*REDIS_FAILURES, *REDIS_REFUSALS) as exc:
            raise ServiceUnavailableError() from exc

    return guarded
