"""Many writes sent as ONE atomic `EVAL`: what a MULTI/EXEC of them does, at a fraction of the cost.

A submission writes the job hash, the queue, the `rq:queues` set, the listing index, the job
history's counters and the job's event: nine commands in a MULTI/EXEC. redis-py's client then
packs each command, reads a `QUEUED` reply for each, then EXEC's array, and runs a reply
callback per command: about 40% of the API's CPU per submission went there (measured in
`bench.inprocess`: 420-460 us for the MULTI/EXEC, 250-280 us for one EVAL doing the same
writes). `ScriptBatch` gathers the same commands and sends them as the arguments of one script,
`SCRIPT`, that calls them in order: one command to pack, one reply to read.

What the MULTI/EXEC guaranteed, it keeps: a script runs atomically (nothing else runs on Redis
until it has finished, so no reader sees half of it) and is replicated by its effects. A Redis
refusing writes (over `maxmemory`, or a read-only replica) refuses a script's *first* write, so a
refused batch wrote nothing, as an EXECABORT did; Redis 7 answers that with the refusal's own error
(`OutOfMemoryError`, `ReadOnlyError`), Redis 6 inside a generic script error (`refusal` reads
both). Neither rolls back: a command failing as it runs (a key of the wrong type, put there by
something else) leaves the commands before it applied, in a MULTI/EXEC the others too; so callers
order a batch with the job's own writes after its index entries (which read as nothing without the
job), and treat such a failure as "may be stored". The script
names its keys (KEYS), as Redis asks of scripts, and is sent in full each time (EVAL, not
EVALSHA): Redis hashes it to find it compiled, and a flushed or restarted script cache can never
fail a write with NOSCRIPT (inside a MULTI that would leave the other commands applied).

Only commands our code builds ever go in: nothing of a client's input is a command name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from itertools import chain
from typing import Any

from redis.client import Pipeline
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError
from redis.typing import EncodableT

#: ARGV holds the commands one after another, each as its number of words and then its words;
#: KEYS names every key they write. `XADDS` is ours: `XADDS stream horizon ttl member...` appends
#: one entry per member to a listing stream (trimming it to the horizon, in ms) and sets its TTL
#: (ms): six words per entry as XADDs, one as XADDS (see `listing_index`).
SCRIPT = """
local unpack = unpack or table.unpack
local at = 1
local done = 0
while at <= #ARGV do
  local n = tonumber(ARGV[at])
  if ARGV[at + 1] == 'XADDS' then
    local stream, horizon = ARGV[at + 2], ARGV[at + 3]
    for i = at + 5, at + n do
      redis.call('XADD', stream, 'MINID', '~', horizon, '*', 'j', ARGV[i])
    end
    redis.call('PEXPIRE', stream, ARGV[at + 4])
  else
    redis.call(unpack(ARGV, at + 1, at + n))
  end
  at = at + n + 1
  done = done + 1
end
return done
"""

#: The most members or pairs one command of a batch takes: Lua's `unpack` stops at ~8,000 values,
#: so longer lists (a big batch's RPUSH) are split into several commands of the same script.
MAX_WORDS = 1000

#: How Redis 6 words a script's first write refused (Redis 7 raises the refusal's own error):
#: the refusal's own reply, after the script's name and line.
_REFUSAL_IN_SCRIPT = re.compile(r"@user_script: ?\d+: -(OOM|READONLY|NOREPLICAS|MISCONF) ")
#: The refusals Redis 7 answers under their own code that redis-py has no exception class for.
_REFUSAL_OF_REDIS_7 = re.compile(r"(NOREPLICAS|MISCONF) ")


class ScriptBatch:
    """Commands gathered for one `SCRIPT` call, in order; the methods are the subset of redis-py's
    pipeline API that our writes use, so the code staging them reads the same."""

    def __init__(self) -> None:
        self._keys: dict[EncodableT, None] = {}
        self._words: list[EncodableT] = []
        self.commands = 0

    def __bool__(self) -> bool:
        return self.commands > 0

    def call(self, name: str, key: EncodableT, *words: EncodableT) -> None:
        """Add `name key words...` (a command writing `key`)."""
        self._keys[key] = None
        self._words += (len(words) + 2, name, key)
        self._words += words
        self.commands += 1

    def _call_long(self, name: str, key: EncodableT, words: Sequence[EncodableT], step: int = 1) -> None:
        """`call`, split into commands of at most `MAX_WORDS` items of `step` words each."""
        if len(words) <= MAX_WORDS * step:
            self.call(name, key, *words)
            return
        for start in range(0, len(words), MAX_WORDS * step):
            self.call(name, key, *words[start : start + MAX_WORDS * step])

    def hset(self, name: EncodableT, mapping: Mapping[Any, EncodableT]) -> None:
        self.call("HSET", name, *chain.from_iterable(mapping.items()))

    def sadd(self, name: EncodableT, *values: EncodableT) -> None:
        self._call_long("SADD", name, values)

    def rpush(self, name: EncodableT, *values: EncodableT) -> None:
        self._call_long("RPUSH", name, values)

    def lpush(self, name: EncodableT, *values: EncodableT) -> None:
        self._call_long("LPUSH", name, values)

    def zadd(self, name: EncodableT, mapping: Mapping[Any, float | int]) -> None:
        self._call_long("ZADD", name, [w for member, score in mapping.items() for w in (score, member)], 2)

    def hincrby(self, name: EncodableT, key: EncodableT, amount: int = 1) -> None:
        self.call("HINCRBY", name, key, amount)

    def expire(self, name: EncodableT, time: int) -> None:
        self.call("EXPIRE", name, time)

    def publish(self, channel: EncodableT, message: EncodableT) -> None:
        self._words += (3, "PUBLISH", channel, message)  # a channel, not a key
        self.commands += 1

    def xadds(self, stream: EncodableT, horizon_ms: int, ttl_ms: int, members: Sequence[bytes]) -> None:
        """Append an entry per member to a listing stream, trimmed to `horizon_ms`, TTL `ttl_ms`."""
        for start in range(0, len(members), MAX_WORDS):
            self.call("XADDS", stream, horizon_ms, ttl_ms, *members[start : start + MAX_WORDS])

    def arguments(self) -> list[EncodableT]:
        """`EVAL`'s arguments after the script: the number of keys, the keys, the words."""
        return [len(self._keys), *self._keys, *self._words]

    def command(self) -> list[EncodableT]:
        """The whole command: `EVAL`, the script, its arguments."""
        return ["EVAL", SCRIPT, *self.arguments()]

    def stage_on(self, pipe: Pipeline) -> None:
        """Queue the batch on a pipeline (in a MULTI, beside other commands: keyed submissions)."""
        if self:
            pipe.execute_command(*self.command())  # type: ignore[no-untyped-call]


def refusal(exc: ResponseError) -> str | None:
    """The refusal a script's error stands for, if it is one (its code: `OOM` over `maxmemory`,
    `READONLY` on a replica, `NOREPLICAS` short of `min-replicas-to-write`, `MISCONF` unable to
    persist): Redis checks these at a script's first write, and none can change while a script
    runs, so nothing of it ran (see the module's text).

    Redis 7 answers with the refusal's own error (redis-py raises `OutOfMemoryError` and
    `ReadOnlyError` for the first two, a `ResponseError` starting with the code for the others);
    Redis 6 with a script error quoting it after the script's position
    (`... @user_script: 1: -OOM command not allowed ...`)."""
    if isinstance(exc, OutOfMemoryError):
        return "OOM"
    if isinstance(exc, ReadOnlyError):
        return "READONLY"
    text = str(exc)
    quoted = _REFUSAL_OF_REDIS_7.match(text) or _REFUSAL_IN_SCRIPT.search(text)
    return None if quoted is None else quoted[1]
