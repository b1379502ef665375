"""The listing index: sorted sets of job ids by submission time, for cursor pagination.

RQ's registries are scored by *expiry*, and its queues are lists, so neither gives "newest first,
stable cursors, O(page)". At submission we add the job id to `index:all` and to one set per queue,
task and tag (same MULTI/EXEC as the enqueue), scored by submission time in microseconds. A page is
then one `ZREVRANGEBYSCORE ... LIMIT` (O(log N + page)) and one pipelined read of the page's jobs,
whatever the number of jobs stored.

A cursor is the (score, job id) pair of an entry, base64-encoded. Order is (score, id) descending,
so a cursor stays valid while jobs are added: new jobs have higher scores and land before page 1.

Entries outlive their jobs (RQ expires jobs by TTL without telling anyone): readers drop entries
whose job is gone, and each submission trims entries older than `index_retention`.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.client import Pipeline

from gql_jobs.constants import INDEX_ALL, INDEX_BY_OWNER, INDEX_BY_QUEUE, INDEX_BY_TAG, INDEX_BY_TASK
from gql_jobs.domain import JobFilter
from gql_jobs.errors import InvalidCursorError


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


def add(pipe: Pipeline, job_id: str, score: int, keys: Sequence[str], retention_seconds: int) -> None:
    """Queue the index writes for one job on `pipe`, trimming what is past retention."""
    horizon = score - retention_seconds * 1_000_000
    for key in keys:
        pipe.zadd(key, {job_id: score})
        pipe.zremrangebyscore(key, "-inf", f"({horizon}")


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
