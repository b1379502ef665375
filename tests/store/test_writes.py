"""How `store.writes` words each way Redis can fail a submission's write: "nothing written" only
when Redis cannot have applied any of it, "outcome unknown" whenever it may have.

The real failures (a stalled Redis, a paused one, a demoted master, a clobbered key, a Sentinel
switchover) are in tests/integration/test_faults.py and test_sentinel.py; this holds the mapping
for the errors a test cannot make Redis send on cue (LOADING lasts as long as a restart's load).
"""

from __future__ import annotations

import pytest
from redis.exceptions import (
    BusyLoadingError,
    DataError,
    InvalidResponse,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from gql_jobs.store.writes import FAILED_AS_IT_RAN, REFUSED, _WriteError, _writing


def sentinel_wording() -> RedisConnectionError:
    """What redis-py's Sentinel connection raises for a READONLY reply (the reply as context)."""
    error = RedisConnectionError("The previous master is now a slave")
    error.__context__ = ReadOnlyError("You can't write against a read only replica.")
    return error


def raised_writing(error: Exception, *, sent: bool) -> BaseException:
    """What `_writing` makes of `error` raised inside it, after the write was (or was not) sent."""
    try:
        with _writing([]) as progress:
            progress.sent = sent
            raise error
    except Exception as raised:
        return raised
    raise AssertionError("nothing was raised")


WRONGTYPE = ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")


@pytest.mark.parametrize(
    ("error", "sent", "reason"),
    [
        (BusyLoadingError("Redis is loading the dataset in memory"), False, REFUSED),
        (OutOfMemoryError("command not allowed when used memory > 'maxmemory'."), False, REFUSED),
        (ResponseError("NOREPLICAS Not enough good replicas to write."), False, REFUSED),
        (sentinel_wording(), False, REFUSED),
        (RedisConnectionError("Connection closed by server."), True, None),
        (TimeoutError(), True, None),
        (WRONGTYPE, True, FAILED_AS_IT_RAN),
        (InvalidResponse("Protocol Error"), True, FAILED_AS_IT_RAN),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_an_error_after_the_write_was_sent_is_worded_by_what_redis_may_have_applied(
    error: Exception, sent: bool, reason: str | None
) -> None:
    failure = raised_writing(error, sent=True)
    assert isinstance(failure, _WriteError), failure
    assert (failure.sent, failure.reason) == (sent, reason)


@pytest.mark.parametrize("error", [ResponseError("ERR unknown command"), DataError("Invalid input")])
def test_an_error_before_anything_was_sent_is_a_bug_not_an_outcome(error: Exception) -> None:
    """Nothing reached Redis: no outcome to tell the client, the error goes up (and is masked)."""
    assert raised_writing(error, sent=False) is error
