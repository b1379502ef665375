"""The listing index: sorted sets of job ids by submission time, for cursor pagination.

RQ's registries are scored by *expiry*, and its queues are lists, so neither gives "newest first,
stable cursors, O(page)". At submission we add the job id to `index:all` and to one set per queue,
task and tag (same MULTI/EXEC as the enqueue), scored by submission time in microseconds. A page is
then one `ZREVRANGEBYSCORE ... LIMIT` (O(log N + page)) and one pipelined read of the page's jobs,
whatever the number of jobs stored.

A cursor is the (score, job id) pair of an entry, base64-encoded. Order is (score, id) descending,
so a cursor stays valid while jobs are added: new jobs have higher scores and land before page 1.

Entries outlive their jobs (RQ expires jobs by TTL without telling anyone): readers drop entries
whose job is gone, and submissions trim entries older than `index_retention` from the sets they
add to, each set at most once per `TRIM_EVERY_SECONDS` per process (trimming on every submission
was 6 of a submission's 20 Redis commands, for entries that can only be a few seconds older).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.asyncio.client import Pipeline as AsyncPipeline
from redis.client import Pipeline

from gql_jobs.constants import INDEX_ALL, INDEX_BY_OWNER, INDEX_BY_QUEUE, INDEX_BY_TAG, INDEX_BY_TASK
from gql_jobs.domain import JobFilter
from gql_jobs.errors import InvalidCursorError

#: How often (per process) a submission also trims the index sets it adds to.
TRIM_EVERY_SECONDS = 10.0
#: Index sets whose last trim time a process remembers.
MAX_TRACKED_SETS = 10_000


@dataclass(frozen=True, order=True)
class Position:
    """Where an entry sits in an index; larger is newer."""

    score: int
    job_id: str

    def encode(self) -> str:
        raw = f"{self.score}:{self.job_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Position:
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            score, _, job_id = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
            if not job_id or len(cursor) > 400:
                raise ValueError(cursor)
            return cls(int(score), job_id)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise InvalidCursorError(cursor) from None


def now_micros() -> int:
    return time.time_ns() // 1000


def keys_for(queue: str, task: str | None, tags: Iterable[str], owner: str | None) -> list[str]:
    keys = [INDEX_ALL, INDEX_BY_QUEUE + queue]
    if owner:
        keys.append(INDEX_BY_OWNER + owner)
    if task:
        keys.append(INDEX_BY_TASK + task)
    keys.extend(INDEX_BY_TAG + tag for tag in dict.fromkeys(tags))
    return keys


def trim(pipe: Pipeline | AsyncPipeline, keys: Sequence[str], horizon: int) -> None:
    """Queue the removal of entries scored below `horizon` from `keys`."""
    for key in keys:
        pipe.zremrangebyscore(key, "-inf", f"({horizon}")


class TrimSchedule:
    """Which index sets are due a trim, and the horizon: past `retention_seconds`, in micros.

    Thread-safe enough: a race only trims a set twice, which is harmless."""

    def __init__(self, retention_seconds: int, every_seconds: float = TRIM_EVERY_SECONDS) -> None:
        self.retention_micros = retention_seconds * 1_000_000
        self.every = every_seconds
        self._next: dict[str, float] = {}

    def due(self, keys: Iterable[str]) -> list[str]:
        now = time.monotonic()
        due = [key for key in keys if self._next.get(key, 0.0) <= now]
        if due:
            if len(self._next) > MAX_TRACKED_SETS:  # many short-lived tags: forget, trim again
                self._next.clear()
            self._next.update(dict.fromkeys(due, now + self.every))
        return due

    def horizon(self, score: int) -> int:
        return score - self.retention_micros


def remove(pipe: Pipeline, job_id: str, keys: Sequence[str]) -> None:
    for key in keys:
        pipe.zrem(key, job_id)


def base_key(job_filter: JobFilter, owner: str | None = None) -> str:
    """The narrowest index that covers the filter; other criteria are checked on the records.

    A tenant's listing walks its own index (`owner`), so it never even reads another's jobs.
    """
    if owner is not None:
        return INDEX_BY_OWNER + owner
    if job_filter.tag:
        return INDEX_BY_TAG + job_filter.tag
    if job_filter.task:
        return INDEX_BY_TASK + job_filter.task
    if job_filter.queue:
        return INDEX_BY_QUEUE + job_filter.queue
    return INDEX_ALL


def older_than(connection: Redis, key: str, start: Position | None, count: int) -> list[Position]:
    """Up to `count` entries strictly older than `start` (or the newest ones), newest first."""
    if start is None:
        raw = connection.zrevrange(key, 0, count - 1, withscores=True)
        return _positions(raw)
    slack = 8
    while True:
        raw = connection.zrevrangebyscore(
            key, start.score, "-inf", start=0, num=count + slack, withscores=True
        )
        entries = [p for p in _positions(raw) if p < start]
        if len(entries) >= count or len(raw) < count + slack:
            return entries[:count]
        slack *= 4  # many entries share the cursor's score: look further


def newer_than(connection: Redis, key: str, start: Position | None, count: int) -> list[Position]:
    """Up to `count` entries strictly newer than `start` (or the oldest ones), oldest first."""
    if start is None:
        raw = connection.zrange(key, 0, count - 1, withscores=True)
        return _positions(raw)
    slack = 8
    while True:
        raw = connection.zrangebyscore(key, start.score, "+inf", start=0, num=count + slack, withscores=True)
        entries = [p for p in _positions(raw) if p > start]
        if len(entries) >= count or len(raw) < count + slack:
            return entries[:count]
        slack *= 4


def _positions(raw: Iterable[Any]) -> list[Position]:
    """Parse a `WITHSCORES` reply: (member, score) pairs."""
    return [Position(int(score), member.decode()) for member, score in raw]
