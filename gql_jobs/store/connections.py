"""Redis clients built from settings: the only place that decides addresses, timeouts and retries.

Two ways to find Redis: `REDIS_URL`, or Redis Sentinel (`GQL_JOBS_SENTINELS` + a master name),
which a URL cannot express. With Sentinel every client asks the sentinels for the current master
on each new connection (`master_for`), so after a failover the next connection goes to the new
master; RQ always gets the master, since it writes even when it reads.

The API's client fails fast (short connect/read timeouts, one immediate retry so a connection left
stale by a Redis restart or failover is replaced transparently, none after a timeout): a request
answers 503 within `redis_socket_timeout` (2 s) instead of hanging, and the pool reconnects by
itself once Redis is back. Submissions' writes are never retried by the client (`store.writes`
sends them on a connection of their own: a write resent after its reply was lost may be applied
twice); they are tried once more only when Redis refused them (a demoted master).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, TypeAlias

import hiredis
import redis.asyncio
from redis import BlockingConnectionPool, Redis
from redis.asyncio import BlockingConnectionPool as AsyncBlockingConnectionPool
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError
from redis.retry import Retry
from redis.sentinel import Sentinel

from gql_jobs.errors import RedisNotConfiguredError
from gql_jobs.settings import Settings
from gql_jobs.store.sentinel import AsyncMasterConnection, FailoverRetry, MasterConnection

#: Names shown by `CLIENT LIST`, so operators (and the leak test) can tell our connections apart.
API_CLIENT_NAME = "gql-jobs-api"
EVENTS_CLIENT_NAME = "gql-jobs-events"


#: What the API's clients retry (once, at once): a connection that Redis closed since it was last
#: used. Never a timeout: retried, it doubled the time to a 503 (4 s for a listing against a frozen
#: Redis) and could send a write a second time.
STALE_CONNECTION = (RedisConnectionError,)

#: Retries of a worker's Redis command: 0.1, 0.2, 0.4 s apart (under a second in all).
WORKER_RETRIES = 3


class _HiredisPacking:
    """Pack commands with hiredis on async connections too.

    redis-py packs with hiredis on sync connections but in pure Python on async ones; that was the
    largest cost of a 100-job `submitJobs` on the event loop (measured: 15 of 25 ms). Unlike
    redis-py's hiredis packer this one does not copy every argument through a generator looking
    for memoryviews (we send none): that was another 4% of the batch."""

    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]
        if isinstance(name, str) and " " in name:  # "CLIENT SETNAME" and the like: two words
            args = (*name.split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            raise DataError(exc) from exc


def pack_commands(commands: Sequence[Sequence[Any]]) -> list[bytes]:
    """Commands packed as `_HiredisPacking` packs them, to send together with
    `send_packed_command` (packed once, before a write is marked sent: see `store.writes`)."""
    packer = _HiredisPacking()
    return [b"".join(chunk for command in commands for chunk in packer.pack_command(*command))]


class AsyncConnection(_HiredisPacking, redis.asyncio.Connection):
    pass


class AsyncSentinelConnection(_HiredisPacking, AsyncMasterConnection):
    pass


#: The clients handed to the service and the store (the service names them, never `redis`).
Client: TypeAlias = Redis
AsyncClient: TypeAlias = AsyncRedis


def redis_url(settings: Settings) -> str:
    if not settings.redis_url:
        raise RedisNotConfiguredError(
            "REDIS_URL is not set: point it at a Redis server (or use `gql-jobs dev` for an in-memory one)"
        )
    return settings.redis_url


def describe(settings: Settings) -> str:
    """Where Redis is, for messages (never the password)."""
    if settings.sentinels:
        return f"Sentinel master {settings.sentinel_master!r} via {', '.join(settings.sentinels)}"
    return redis_url(settings)


def api_redis(settings: Settings) -> Redis:
    """Client for request handling: bounded pool, fast failure.

    The URL client's pool *blocks* (up to the socket timeout) when all its connections are in use,
    rather than failing at once as redis-py's default pool does: a burst of concurrent requests
    queues for a connection instead of answering 503 while Redis is perfectly healthy.
    """
    options = _api_options(settings)
    options["retry"] = Retry(NoBackoff(), 1, supported_errors=STALE_CONNECTION)
    if settings.sentinels:
        return _master(settings, options)
    pool = BlockingConnectionPool.from_url(
        redis_url(settings),
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_socket_timeout,
        **options,
    )
    client = Redis(connection_pool=pool)
    client.auto_close_connection_pool = True
    return client


def api_async_redis(settings: Settings) -> AsyncRedis:
    """`api_redis` for the event loop: every service operation that runs there uses it (submit,
    read, rate limit, queue signatures, events announced, ping); `api_redis` is RQ's, on threads.

    It has no read timeout: redis-py arms a timer for every reply it reads, a third of the CPU of a
    small MULTI/EXEC (measured: 268 -> 178 us). Callers bound each operation as a whole instead,
    with `deadline` (a cancelled read or write closes its connection, so nothing is left half-read);
    a submission's write script goes out on a connection taken from its pool (`store.writes`).
    """
    options = _api_options(settings)
    options["socket_timeout"] = None
    options["retry"] = AsyncRetry(NoBackoff(), 1, supported_errors=STALE_CONNECTION)
    if settings.sentinels:
        sentinel = AsyncSentinel(  # type: ignore[no-untyped-call]
            _addresses(settings), sentinel_kwargs=_sentinel_kwargs(settings), **_auth(settings)
        )
        master: AsyncRedis = sentinel.master_for(
            settings.sentinel_master, connection_class=AsyncSentinelConnection, **options
        )
        return master
    pool = AsyncBlockingConnectionPool.from_url(
        redis_url(settings),
        connection_class=AsyncConnection,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_socket_timeout,
        **options,
    )
    return AsyncRedis.from_pool(pool)  # the client owns the pool: closing one closes both


def deadline(settings: Settings, extra_seconds: float = 0.0) -> asyncio.Timeout:
    """The bound of one operation on the async client (`redis_socket_timeout`, plus `extra_seconds`
    for a command that waits on purpose, like WAIT); raises the built-in `TimeoutError`."""
    return asyncio.timeout(settings.redis_socket_timeout + extra_seconds)


def _api_options(settings: Settings) -> dict[str, Any]:
    return {
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "health_check_interval": 30,
        "client_name": API_CLIENT_NAME,
    }


async def close_async(client: AsyncRedis) -> None:
    """Close an async client, and with Sentinel the sentinel clients behind it too.

    (Closing a `master_for` client leaves its `Sentinel`'s own connections open.)"""
    await client.aclose()
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    if isinstance(manager, AsyncSentinel):
        # What redis-py 8.1's `Sentinel.aclose` does, which older ones (down to our floor) lack.
        for sentinel in manager.sentinels:
            await sentinel.aclose()


def pubsub_redis(settings: Settings) -> AsyncRedis:
    """Async client for the API's one event subscription: blocks on reads, so no read timeout."""
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.redis_connect_timeout,
        "socket_keepalive": True,
        "health_check_interval": 30,
        "client_name": EVENTS_CLIENT_NAME,
    }
    if settings.sentinels:
        sentinel = AsyncSentinel(  # type: ignore[no-untyped-call]
            _addresses(settings), sentinel_kwargs=_sentinel_kwargs(settings), **_auth(settings)
        )
        master: AsyncRedis = sentinel.master_for(settings.sentinel_master, **options)
        return master
    return AsyncRedis.from_url(redis_url(settings), **options)


def worker_redis(settings: Settings) -> Redis:
    """Client for workers: no read timeout (RQ blocks on BLMOVE), keep-alive on.

    Commands retry briefly (under a second) to ride over a blip. A longer outage (a restart) makes
    RQ quit, and `gql_jobs.worker.supervisor` starts a fresh worker: that also gives RQ's scheduler
    process, which copies these settings, a quick death and a clean restart. With Sentinel, commands wait up
    to `sentinel_failover_wait` for the new master instead, so the job in hand completes on it (see
    `gql_jobs.store.sentinel`).
    """
    options: dict[str, Any] = {
        "socket_connect_timeout": settings.redis_connect_timeout,
        "socket_keepalive": True,
        "health_check_interval": 30,
        "retry": Retry(ExponentialBackoff(cap=0.4, base=0.1), WORKER_RETRIES),
    }
    if settings.sentinels:
        return _master(settings, {**options, "retry": FailoverRetry(settings.sentinel_failover_wait)})
    return Redis.from_url(redis_url(settings), **options)


def _master(settings: Settings, options: dict[str, Any]) -> Redis:
    sentinel = Sentinel(_addresses(settings), sentinel_kwargs=_sentinel_kwargs(settings))  # type: ignore[no-untyped-call]
    master: Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        settings.sentinel_master, connection_class=MasterConnection, **options, **_auth(settings)
    )
    return master


def _addresses(settings: Settings) -> list[tuple[str, int]]:
    addresses = []
    for entry in settings.sentinels:
        host, _, port = entry.rpartition(":")
        addresses.append((host or entry, int(port or 26379)))
    return addresses


def _sentinel_kwargs(settings: Settings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"socket_timeout": settings.redis_connect_timeout}
    if settings.sentinel_password is not None:
        kwargs["password"] = settings.sentinel_password.get_secret_value()
    return kwargs


def _auth(settings: Settings) -> dict[str, Any]:
    auth: dict[str, Any] = {"db": settings.redis_db}
    if settings.redis_password is not None:
        auth["password"] = settings.redis_password.get_secret_value()
    if settings.redis_username:
        auth["username"] = settings.redis_username
    return auth


async def ping(client: AsyncRedis) -> bool:
    return bool(await client.ping())
