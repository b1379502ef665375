"""The redis-py internals `store/sentinel.py` and `store/connections.py` override, held to the
installed redis-py.

`redis` is capped at the minor the suite ran on (pyproject.toml): `MasterConnection` reconnects
through Sentinel by overriding connection methods that are not public API (6.4 added the
`retry_socket_connect` parameter it passes on), `FailoverRetry` reads `Retry`'s private fields, and
`_HiredisPacking` replaces the async connections' packer. A release that renames or reshapes one
fails here, by name, instead of failing a worker during a failover.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio
import redis.asyncio.sentinel
from redis.asyncio.connection import AbstractConnection as AsyncAbstractConnection
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.connection import AbstractConnection
from redis.retry import Retry
from redis.sentinel import SentinelConnectionPool, SentinelManagedConnection

from gql_jobs.store.connections import AsyncConnection, AsyncSentinelConnection, _HiredisPacking
from gql_jobs.store.sentinel import AsyncMasterConnection, FailoverRetry, MasterConnection
from tests.adapter_checks import library_method, missing_parameters, overrides

#: Per class of ours, the redis-py methods it overrides: the parameters (in order) it relies on.
OVERRIDDEN: dict[type[Any], dict[str, list[str]]] = {
    MasterConnection: {
        "connect_check_health": ["self", "check_health", "retry_socket_connect"],
        "connect_to": ["self", "address"],
        "read_response": ["self", "disable_decoding", "disconnect_on_error"],
    },
    AsyncMasterConnection: {
        "connect_check_health": ["self", "check_health", "retry_socket_connect"],
        "connect_to": ["self", "address"],
    },
    FailoverRetry: {"call_with_retry": ["self", "do", "fail"]},
}
#: redis-py methods we call on a base class directly (not through `super()`), with what we pass.
CALLED: dict[tuple[type[Any], str], list[str]] = {
    (AbstractConnection, "connect_check_health"): ["self", "check_health", "retry_socket_connect"],
    (AsyncAbstractConnection, "connect_check_health"): ["self", "check_health", "retry_socket_connect"],
    (Retry, "__init__"): ["self", "backoff", "retries"],
}


@pytest.mark.parametrize("ours", list(OVERRIDDEN), ids=lambda cls: cls.__name__)
def test_every_override_of_a_redis_py_method_is_checked_here(ours: type[Any]) -> None:
    assert overrides(ours, "redis") == set(OVERRIDDEN[ours])


@pytest.mark.parametrize(
    ("ours", "name"),
    [(ours, name) for ours, methods in OVERRIDDEN.items() for name in methods],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_overridden_method_has_the_parameters_we_were_written_against(ours: type[Any], name: str) -> None:
    method = library_method(ours, name, "redis")
    assert method is not None, f"redis-py no longer has {ours.__mro__[1].__name__}.{name}"
    missing = missing_parameters(method, OVERRIDDEN[ours][name])
    assert not missing, f"{name} lost or moved {missing}: update gql_jobs/store/sentinel.py"


@pytest.mark.parametrize(("owner", "name"), list(CALLED), ids=lambda value: getattr(value, "__name__", value))
def test_called_method_has_the_parameters_we_pass(owner: type[Any], name: str) -> None:
    assert not missing_parameters(getattr(owner, name), CALLED[(owner, name)])


def test_sentinel_connections_still_connect_through_connect_to() -> None:
    """`MasterConnection` asks Sentinel again on every reconnection only if redis-py's `connect()`
    reaches the address through `connect_to` (which it overrides): check that it still does."""
    asked: list[str] = []

    class Pool(SentinelConnectionPool):
        def __init__(self) -> None:  # no Sentinel: only what `connect` reads
            self.is_master = True
            self.check_connection = False

        def get_master_address(self) -> tuple[str, int]:
            asked.append("master")
            return ("127.0.0.1", 1)  # nothing listens there: the connection fails after asking

    connection = MasterConnection(connection_pool=Pool(), retry=Retry(NoBackoff(), 0))  # type: ignore[no-untyped-call]
    with pytest.raises(redis.ConnectionError):
        connection.connect()  # type: ignore[no-untyped-call]
    assert asked == ["master"]
    assert issubclass(MasterConnection, SentinelManagedConnection)


@pytest.mark.anyio
async def test_async_sentinel_connections_reconnect_through_sentinel() -> None:
    """A connection of the API's async client whose health-check PING failed is reconnected by
    redis-py through `connect_check_health`: `AsyncMasterConnection` asks Sentinel there, instead
    of going back to the address it had (a stale master, after a reboot)."""
    asked: list[str] = []

    class Pool(redis.asyncio.sentinel.SentinelConnectionPool):
        def __init__(self) -> None:  # no Sentinel: only what `connect` reads
            self.is_master = True
            self.check_connection = False

        async def get_master_address(self) -> tuple[str, int]:
            asked.append("master")
            return ("127.0.0.1", 1)  # nothing listens there: the connection fails after asking

    connection = AsyncSentinelConnection(connection_pool=Pool(), retry=AsyncRetry(NoBackoff(), 0))  # type: ignore[no-untyped-call]
    connection.host, connection.port = "127.0.0.1", 2  # where it was connected before
    with pytest.raises(redis.ConnectionError):
        await connection.connect_check_health(check_health=True, retry_socket_connect=False)
    assert asked == ["master"]
    assert connection.port == 1
    assert issubclass(AsyncMasterConnection, redis.asyncio.sentinel.SentinelManagedConnection)


def test_retry_still_has_the_fields_failover_retry_reads() -> None:
    retry = FailoverRetry(wait=1.0)
    assert isinstance(retry._supported_errors, tuple)
    assert retry._backoff.compute(1) >= 0


@pytest.mark.parametrize("ours", [AsyncConnection, AsyncSentinelConnection], ids=lambda cls: cls.__name__)
def test_async_connections_still_pack_through_pack_command(ours: type[Any]) -> None:
    """redis-py's async connections pack every command with `pack_command(*args)`, which
    `_HiredisPacking` replaces; a rename would silently fall back to the pure-Python packer."""
    assert ours.pack_command is _HiredisPacking.pack_command
    base = (
        redis.asyncio.Connection
        if ours is AsyncConnection
        else redis.asyncio.sentinel.SentinelManagedConnection
    )
    assert callable(getattr(base, "pack_command", None))
    packed = _HiredisPacking().pack_command("SET", "k", 1)
    assert packed == [b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n"]
