"""Per-principal submission rate limit: a token bucket kept in Redis (shared by all API processes).

One Lua script reads, refills and takes from the bucket atomically, using Redis' clock so API
processes on different machines agree. A batch of N jobs takes N tokens, all or none.
"""

from __future__ import annotations

from redis.asyncio import Redis as AsyncRedis

from gql_jobs.constants import RATE_LIMIT_PREFIX
from gql_jobs.errors import RateLimitedError

_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or burst
local at = tonumber(bucket[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return {allowed, tostring((cost - tokens) / rate)}
"""


class RateLimiter:
    """The buckets of one process's principals, taken from on the event loop (one script call)."""

    def __init__(self, connection: AsyncRedis, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = burst
        self._take = connection.register_script(_TAKE)

    @property
    def enabled(self) -> bool:
        return self.per_second > 0

    async def take(self, principal: str, cost: int) -> None:
        """Take `cost` tokens or raise `RateLimitedError` saying when enough will be there.

        A batch larger than the burst can never pass whole: it is refused with the time a burst
        takes to refill, and the client should split it.
        """
        if self._needed(cost):
            self._check(*await self._take(keys=self._keys(principal), args=self._args(cost)))

    def _needed(self, cost: int) -> bool:
        if not self.enabled or cost <= 0:
            return False
        if cost > self.burst:
            raise RateLimitedError(self.burst / self.per_second)
        return True

    def _keys(self, principal: str) -> list[str]:
        return [RATE_LIMIT_PREFIX + principal]

    def _args(self, cost: int) -> list[float]:
        return [self.per_second, self.burst, cost]

    def _check(self, allowed: int | bytes, wait: bytes | str) -> None:
        if not int(allowed):
            raise RateLimitedError(max(0.001, float(wait)))
