"""The bound on distinct queues (`max_queues`): a client may not create queues without end.

Every queue a job is put on becomes a member of RQ's `rq:queues` set, which nothing ever shrinks
(RQ keeps a queue there once emptied; only `Queue.delete` removes it), and a label value of
`/metrics`, a row of the `queues` query and eight commands of every scrape. An allow-list
(`queues`, checked in `submission`) bounds them with no Redis at all; without one, a submission
may name a queue RQ does not know yet only while fewer than `max_queues` exist.

Cost: the default queue and the allow-list are never looked up; a queue this process has
admitted within `KNOWN_SECONDS` neither. Any other name costs one script per batch, which admits
it (adding it to `rq:queues`, as the enqueue would) only while the set holds fewer than
`max_queues`: checking and adding in one step keeps the bound exact across API processes. The
process forgets what it admitted every `KNOWN_SECONDS`, so a queue an operator deleted counts
again soon.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from redis.asyncio import Redis as AsyncRedis

from gql_jobs.settings import Settings
from gql_jobs.store.keys import QUEUE_KEY_PREFIX, QUEUES_SET, queue_key

#: How long a process trusts that a queue it admitted still exists.
KNOWN_SECONDS = 60.0

#: KEYS: `rq:queues`. ARGV: the limit, then the queue keys wanted. Returns the keys refused.
_ADMIT = """
local limit = tonumber(ARGV[1])
local refused = {}
for i = 2, #ARGV do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then
    if redis.call('SCARD', KEYS[1]) < limit then
      redis.call('SADD', KEYS[1], ARGV[i])
    else
      refused[#refused + 1] = ARGV[i]
    end
  end
end
return refused
"""


class QueueQuota:
    """Which new queues a batch may use. Its cache is replaced or added to, never read
    half-written, and being wrong costs one more round trip at most."""

    def __init__(
        self,
        connection: AsyncRedis,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = settings.max_queues
        self._clock = clock
        #: Queues never looked up; `None`: none are, as the allow-list checked every queue already
        #: (`submission._queue`).
        self._free = None if settings.queues else settings.allowed_queues
        self._known: set[str] = set()
        self._known_until = 0.0
        self._admit = connection.register_script(_ADMIT)

    def to_check(self, queues: Iterable[str]) -> list[str]:
        """The queues of a batch that Redis must admit (no Redis here): usually none."""
        if self._free is None:
            return []
        now = self._clock()
        if now >= self._known_until:
            self._known = set()
            self._known_until = now + KNOWN_SECONDS
        return [q for q in dict.fromkeys(queues) if q not in self._free and q not in self._known]

    async def admit(self, queues: list[str]) -> set[str]:
        """Admit what fits under the bound (one round trip); returns the queues refused."""
        if not queues:
            return set()
        return self._settle(queues, await self._admit(keys=[QUEUES_SET], args=self._args(queues)))

    def _args(self, queues: list[str]) -> list[int | str]:
        return [self.limit, *map(queue_key, queues)]

    def _settle(self, queues: list[str], refused_keys: list[bytes]) -> set[str]:
        refused = {key.decode().removeprefix(QUEUE_KEY_PREFIX) for key in refused_keys}
        self._known.update(q for q in queues if q not in refused)
        return refused
