"""Redis clients built from settings: the only place that decides timeouts and retries.

The API's client fails fast (short connect/read timeouts, one immediate retry so a connection left
stale by a Redis restart is replaced transparently): a request answers 503 in about a second
instead of hanging, and the pool reconnects by itself once Redis is back.
"""

from __future__ import annotations

from redis import BlockingConnectionPool, Redis
from redis.asyncio import Redis as AsyncRedis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gql_jobs.settings import Settings

#: Names shown by `CLIENT LIST`, so operators (and the leak test) can tell our connections apart.
API_CLIENT_NAME = "gql-jobs-api"
EVENTS_CLIENT_NAME = "gql-jobs-events"


class RedisNotConfiguredError(RuntimeError):
    """`REDIS_URL` is unset and nothing provided an embedded Redis."""


def redis_url(settings: Settings) -> str:
    if not settings.redis_url:
        raise RedisNotConfiguredError(
            "REDIS_URL is not set: point it at a Redis server (or use `gql-jobs dev` for an in-memory one)"
        )
    return settings.redis_url


def api_redis(settings: Settings) -> Redis:
    """Client for request handling: bounded pool, fast failure.

    The pool *blocks* (up to the socket timeout) when all its connections are in use, rather
    than failing at once as redis-py's default pool does: a burst of concurrent requests queues
    for a connection instead of answering 503 while Redis is perfectly healthy.
    """
    pool = BlockingConnectionPool.from_url(
        redis_url(settings),
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        health_check_interval=30,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_socket_timeout,
        retry=Retry(NoBackoff(), 1),
        client_name=API_CLIENT_NAME,
    )
    client = Redis(connection_pool=pool)
    client.auto_close_connection_pool = True
    return client


def pubsub_redis(settings: Settings) -> AsyncRedis:
    """Async client for the API's one event subscription: blocks on reads, so no read timeout."""
    return AsyncRedis.from_url(
        redis_url(settings),
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_keepalive=True,
        health_check_interval=30,
        client_name=EVENTS_CLIENT_NAME,
    )


def worker_redis(settings: Settings) -> Redis:
    """Client for workers: no read timeout (RQ blocks on BLPOP/BZPOPMIN), keep-alive on."""
    return Redis.from_url(
        redis_url(settings),
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_keepalive=True,
        health_check_interval=30,
    )
