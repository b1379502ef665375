"""Reading the listing index (`listing_index`): pages of jobs, newest or oldest first, and counts.

RQ's registries are scored by *expiry*, and its queues are lists, so neither gives "newest first,
stable cursors, O(page)": each job has entries in Redis streams in submission order instead,
written with the job (`listing_index`, which says why streams and how they are trimmed). This
module only reads them, apart from dropping entries whose job is gone as it walks past them.

A cursor is an entry's stream ID, base64-encoded: a position in the stream it came from, i.e. for
the filter that produced it. (One job's entries in different streams share the millisecond part,
so a cursor carried to another filter resumes at about the same time.)

Entries outlive their jobs (RQ expires jobs by TTL without telling anyone, and a deleted job's
entries are not looked for): readers drop entries whose job is gone, and retention trims the rest.

A page walks one index (`base_key`) newest first: one XREVRANGE for the ids and one pipelined read
of those jobs, whatever the number of jobs stored. Criteria the index does not cover (a status, or
a second dimension) are checked on the records, reading further chunks only while the page is not
full, within `SCAN_BUDGET` entries; the page then ends early with `hasNextPage`.

Operators' filters (issue #17): stream IDs are Redis' clock in milliseconds, so a submission time
range is only tighter XRANGE bounds (`Bounds`: still O(page)), and oldest-first order walks the
same stream the other way. Any-of `tags` (more than one) walks the next narrowest index and checks
the tags on the records: one job has a different stream ID in each tag stream, so a merge of
streams could not resume from one cursor without repeating or losing jobs. An `ids` lookup reads
those jobs directly (no index), in one round trip.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from gql_jobs.constants import (
    INDEX_ALL,
    INDEX_BY_OWNER,
    INDEX_BY_QUEUE,
    INDEX_BY_TAG,
    INDEX_BY_TASK,
    SCAN_BUDGET,
)
from gql_jobs.domain import JobFilter, JobRecord, Order, Page, PageRequest, RecordFields
from gql_jobs.errors import InvalidCursorError, InvalidRequestError
from gql_jobs.store import inventory
from gql_jobs.store.keys import job_key
from gql_jobs.store.listing_index import FIELD, job_id_of
from gql_jobs.store.reads import read_jobs

#: Longest cursor `Position.encode` issues: two 20-digit parts and a dash, in base64.
MAX_CURSOR_LENGTH = 55
#: A stream ID as `Position.stream_id` writes it: decimal parts, no sign, no leading zeros.
_STREAM_ID = re.compile(r"(0|[1-9][0-9]{0,19})-(0|[1-9][0-9]{0,19})", re.ASCII)


@dataclass(frozen=True, order=True)
class Position:
    """A stream ID: where an entry sits in its stream; larger is newer."""

    ms: int
    seq: int

    @property
    def stream_id(self) -> str:
        return f"{self.ms}-{self.seq}"

    def encode(self) -> str:
        return base64.urlsafe_b64encode(self.stream_id.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> Position:
        """The position a cursor we issued stands for; anything else is an `InvalidCursorError`.

        Only the exact text `encode` produces is accepted: a crafted cursor that Redis would refuse
        (a part over 64 bits, `0-0` or the largest ID, which exclusive ranges cannot take) must not
        reach it and come back as an unexpected error."""
        position = _parse_cursor(cursor) if len(cursor) <= MAX_CURSOR_LENGTH else None
        if position is None or not position.assignable or position.encode() != cursor:
            raise InvalidCursorError(cursor)
        return position

    @property
    def assignable(self) -> bool:
        """Whether Redis could have given an entry this ID (each part 64-bit unsigned, not `0-0`),
        short of the largest one, which an exclusive range cannot start from."""
        in_range = min(self.ms, self.seq) >= 0 and max(self.ms, self.seq) <= _MAX_PART
        return in_range and self not in _UNUSABLE

    @classmethod
    def parse(cls, stream_id: bytes) -> Position:
        ms, _, seq = stream_id.partition(b"-")
        return cls(int(ms), int(seq))

    def following(self) -> Position | None:
        """The next possible ID (`None` after the largest)."""
        if self.seq < _MAX_PART:
            return Position(self.ms, self.seq + 1)
        return Position(self.ms + 1, 0) if self.ms < _MAX_PART else None

    def preceding(self) -> Position | None:
        """The previous possible ID (`None` before `0-0`)."""
        if self.seq > 0:
            return Position(self.ms, self.seq - 1)
        return Position(self.ms - 1, _MAX_PART) if self.ms > 0 else None


#: Stream IDs are two 64-bit unsigned parts; `0-0` is never assigned (and `(0-0` is refused as an
#: end), and the largest ID is refused as an exclusive start.
_MAX_PART = 2**64 - 1
_UNUSABLE = frozenset({Position(0, 0), Position(_MAX_PART, _MAX_PART)})


def _parse_cursor(cursor: str) -> Position | None:
    try:
        text = base64.urlsafe_b64decode(cursor.encode() + b"=" * (-len(cursor) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeError):
        return None
    match = _STREAM_ID.fullmatch(text)
    return Position(int(match[1]), int(match[2])) if match else None


@dataclass(frozen=True)
class Entry:
    position: Position
    job_id: str


def base_key(job_filter: JobFilter, owner: str | None = None) -> str:
    """The narrowest index that covers the filter; other criteria are checked on the records.

    A tenant's listing walks its own index (`owner`), so it never even reads another's jobs.
    """
    if owner is not None:
        return INDEX_BY_OWNER + owner
    if job_filter.tag:
        return INDEX_BY_TAG + job_filter.tag
    if len(job_filter.tags) == 1:
        return INDEX_BY_TAG + job_filter.tags[0]
    if job_filter.task:
        return INDEX_BY_TASK + job_filter.task
    if job_filter.queue:
        return INDEX_BY_QUEUE + job_filter.queue
    return INDEX_ALL


@dataclass(frozen=True)
class Bounds:
    """The stream IDs a listing may show, both inclusive (a submission time range)."""

    lower: Position
    upper: Position


EVERYTHING = Bounds(Position(0, 0), Position(_MAX_PART, _MAX_PART))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def bounds_of(job_filter: JobFilter) -> Bounds | None:
    """The IDs of entries stored at or after `submitted_after` and before `submitted_before` (to
    the millisecond); `None` when no ID can be in range."""
    lower, upper = EVERYTHING.lower, EVERYTHING.upper
    if job_filter.submitted_after is not None:
        lower = Position(max(0, _ceil_ms(job_filter.submitted_after)), 0)
    if job_filter.submitted_before is not None:
        before = _ceil_ms(job_filter.submitted_before)
        if before <= 0:
            return None
        upper = min(upper, Position(before - 1, _MAX_PART))
    return Bounds(lower, upper) if lower <= upper else None


def _ceil_ms(moment: datetime) -> int:
    return -((_EPOCH - moment) // _MS)


def _bound(position: Position) -> str:
    if position == EVERYTHING.lower:
        return "-"
    return "+" if position == EVERYTHING.upper else position.stream_id


def _range(ascending: bool, start: Position | None, bounds: Bounds) -> tuple[str, str] | None:
    """The XRANGE (`ascending`) or XREVRANGE arguments for the entries within `bounds` strictly
    past `start`, or None when there are none."""
    lower, upper = bounds.lower, bounds.upper
    if ascending:
        after = start.following() if start is not None else lower
        if after is None or max(after, lower) > upper:
            return None
        return _bound(max(after, lower)), _bound(upper)
    before = start.preceding() if start is not None else upper
    if before is None or min(before, upper) < lower:
        return None
    return _bound(min(before, upper)), _bound(lower)


def walk(
    connection: Redis, key: str, ascending: bool, start: Position | None, bounds: Bounds, count: int
) -> list[Entry]:
    """Up to `count` entries within `bounds`, strictly past `start` (exclusive) when given: towards
    newer ones (oldest first) when `ascending`, else towards older ones (newest first)."""
    arguments = _range(ascending, start, bounds)
    if arguments is None:
        return []
    read = connection.xrange if ascending else connection.xrevrange
    return _entries(read(key, *arguments, count=count))


async def walk_async(
    connection: AsyncRedis, key: str, ascending: bool, start: Position | None, bounds: Bounds, count: int
) -> list[Entry]:
    """`walk` on the async client (a page is read on the event loop)."""
    arguments = _range(ascending, start, bounds)
    if arguments is None:
        return []
    read = connection.xrange if ascending else connection.xrevrange
    return _entries(await read(key, *arguments, count=count))


def older_than(connection: Redis, key: str, start: Position | None, count: int) -> list[Entry]:
    """Up to `count` entries strictly older than `start` (or the newest ones), newest first."""
    return walk(connection, key, False, start, EVERYTHING, count)


def newer_than(connection: Redis, key: str, start: Position | None, count: int) -> list[Entry]:
    """Up to `count` entries strictly newer than `start` (or the oldest ones), oldest first."""
    return walk(connection, key, True, start, EVERYTHING, count)


def _entries(raw: Iterable[tuple[Any, Any]] | None) -> list[Entry]:
    """Parse an `XRANGE` reply: (stream id, {field: value}) pairs."""
    return [Entry(Position.parse(stream_id), job_id_of(fields[FIELD])) for stream_id, fields in raw or ()]


#: Entries read at a time while criteria are checked on the jobs: a small page (`first: 1`) would
#: otherwise walk its scan budget a page at a time, a thousand round trips.
SCAN_CHUNK = 100


async def list_jobs(
    connection: AsyncRedis,
    job_filter: JobFilter,
    page: PageRequest,
    max_page_size: int,
    owner: str | None,
    summary: RecordFields | None = None,
) -> Page:
    """One page of jobs in `page.order`; `owner` restricts it to one tenant's jobs; `summary`
    (record fields) reads summaries holding them (`reads.read_jobs`), and every criterion of a filter.

    On the event loop with the async client (issue #20): a page is two or three round trips and
    no RQ call, so a store thread would cost more (the hop, the synchronous client) than it spares."""
    backwards = page.last is not None and page.first is None
    size = page_size(page.last if backwards else page.first, max_page_size)
    cursor = page.before if backwards else page.after
    start = Position.decode(cursor) if cursor else None
    if job_filter.ids:
        if cursor:
            raise InvalidRequestError("after/before", "not with `ids`: the page holds every one of them")
        return await _listed_by_ids(connection, job_filter, page.order, size, backwards, owner, summary)
    bounds = bounds_of(job_filter)
    ascending = backwards != (page.order == Order.OLDEST_FIRST)
    key = base_key(job_filter, owner)
    matches: list[tuple[Position, JobRecord]] = []
    examined = 0
    exhausted = bounds is None
    last_seen: Position | None = None
    chunk = SCAN_CHUNK if needs_checking(job_filter, owner) else 0
    while bounds is not None and len(matches) <= size and examined < SCAN_BUDGET:
        want = max(size + 1 - len(matches), chunk)
        entries = await walk_async(connection, key, ascending, start, bounds, want)
        records = await read_jobs(connection, [e.job_id for e in entries], summary)
        await _prune(
            connection, key, [e.position for e, r in zip(entries, records, strict=True) if r is None]
        )
        matches.extend(
            (e.position, r)
            for e, r in zip(entries, records, strict=True)
            if r is not None and matches_filter(r, job_filter)
        )
        examined += len(entries)
        if len(entries) < want:
            exhausted = True
            break
        start = last_seen = entries[-1].position
    more = len(matches) > size or not exhausted
    window = matches[:size]
    resume: Position | None
    if len(matches) <= size and last_seen is not None and not exhausted:
        resume = last_seen  # the scan budget ran out: go on from the last entry examined
    else:
        resume = window[-1][0] if window and more else None
    if backwards:
        window.reverse()
    return Page(
        items=[(p.encode(), r) for p, r in window],
        has_next_page=(cursor is not None) if backwards else more,
        has_previous_page=more if backwards else (cursor is not None),
        total_count=None,
        resume_cursor=resume.encode() if resume is not None else None,
    )


async def _listed_by_ids(
    connection: AsyncRedis,
    job_filter: JobFilter,
    order: Order,
    size: int,
    backwards: bool,
    owner: str | None,
    summary: RecordFields | None,
) -> Page:
    """The listed jobs among `job_filter.ids` (one pipelined read, no index), by submission time.

    Their cursors are their submission times (no stream was walked): valid, but a page of ids is
    not paged further."""
    ids = list(dict.fromkeys(job_filter.ids))
    found = [
        r
        for r in await read_jobs(connection, ids, summary)
        if r is not None
        and (owner is None or r.owner == owner)
        and matches_filter(r, job_filter)
        and in_time_range(r, job_filter)
    ]
    found.sort(key=lambda r: (_created(r), r.id), reverse=order == Order.NEWEST_FIRST)
    window = found[-size:] if backwards else found[:size]
    if size == 0:
        window = []
    more = len(found) > size
    return Page(
        items=[(_time_cursor(r), r) for r in window],
        has_next_page=more and not backwards,
        has_previous_page=more and backwards,
        total_count=len(found),
    )


def _created(record: JobRecord) -> datetime:
    """When RQ created the job, in UTC (RQ's times are UTC, with or without their zone)."""
    moment = record.created_at or _EPOCH
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _time_cursor(record: JobRecord) -> str:
    return Position(max(1, (_created(record) - _EPOCH) // _MS), 0).encode()


def in_time_range(record: JobRecord, job_filter: JobFilter) -> bool:
    """The time range on a record read by id (the index's time is not at hand): its creation."""
    if record.created_at is None:
        return job_filter.submitted_after is None and job_filter.submitted_before is None
    created = _created(record)
    after, before = job_filter.submitted_after, job_filter.submitted_before
    return (after is None or created >= after) and (before is None or created < before)


def count_jobs(connection: Redis, job_filter: JobFilter, owner: str | None) -> int | None:
    """Count matching jobs where that is cheap; `None` where it would mean reading every job."""
    if job_filter.ids:
        return None  # the page itself counts them (`Page.total_count`)
    if len(job_filter.tags) == 1 and not job_filter.tag:
        job_filter = replace(job_filter, tag=job_filter.tags[0], tags=())
    extras = job_filter.tags or job_filter.statuses is not None
    if extras or job_filter.submitted_after is not None or job_filter.submitted_before is not None:
        return None
    dimensions = sum(1 for v in (job_filter.queue, job_filter.task, job_filter.tag) if v)
    if owner is not None:
        if dimensions or job_filter.status is not None:
            return None
        return int(connection.xlen(base_key(job_filter, owner)))
    if job_filter.status is None:
        return None if dimensions > 1 else int(connection.xlen(base_key(job_filter)))
    if job_filter.task or job_filter.tag or job_filter.status not in inventory.COUNTABLE:
        return None
    queues = [job_filter.queue] if job_filter.queue else inventory.queue_names(connection)
    counts = inventory.status_counts(connection, queues)
    return sum(per_queue.get(job_filter.status, 0) for per_queue in counts.values())


def page_size(requested: int | None, max_page_size: int) -> int:
    size = max_page_size if requested is None else requested
    if not 0 <= size <= max_page_size:
        raise InvalidRequestError("first/last", f"must be between 0 and {max_page_size}")
    return size


def needs_checking(job_filter: JobFilter, owner: str | None) -> bool:
    """Whether the walked index may hold jobs the filter excludes (then a page reads ahead): a
    status, or more criteria than the index covers (one; none for a tenant's own index; several
    `tags` are never covered: see the module's docstring). The time range is the walk's bounds."""
    tags = 1 if len(job_filter.tags) == 1 else (2 if job_filter.tags else 0)
    dimensions = sum(1 for v in (job_filter.queue, job_filter.task, job_filter.tag) if v) + tags
    if job_filter.status is not None or job_filter.statuses is not None or tags > 1:
        return True
    return dimensions > (0 if owner is not None else 1)


def matches_filter(record: JobRecord, job_filter: JobFilter) -> bool:
    """The filter's criteria a record shows (the time range is the index walk's, see `bounds_of`)."""
    return (
        (job_filter.status is None or record.status == job_filter.status)
        and (job_filter.statuses is None or record.status in job_filter.statuses)
        and (job_filter.queue is None or record.queue == job_filter.queue)
        and (job_filter.task is None or record.task == job_filter.task)
        and (job_filter.tag is None or job_filter.tag in record.tags)
        and (not job_filter.tags or any(tag in record.tags for tag in job_filter.tags))
        and (not job_filter.ids or record.id in job_filter.ids)
    )


async def _prune(connection: AsyncRedis, key: str, gone: list[Position]) -> None:
    """Drop the walked index's entries whose job has expired or been deleted (the job's entries
    in other indexes go when those are walked, or trimmed)."""
    if gone:
        await connection.xdel(key, *(p.stream_id for p in gone))


def owner_queues(connection: Redis, owner: str, newest: int) -> list[str]:
    """The queues of `owner`'s `newest` most recent listable jobs (expired ones are skipped)."""
    entries = older_than(connection, INDEX_BY_OWNER + owner, None, newest)
    with connection.pipeline(transaction=False) as pipe:
        for entry in entries:
            pipe.hget(job_key(entry.job_id), "origin")
        origins = pipe.execute()
    return sorted({origin.decode() for origin in origins if origin})
