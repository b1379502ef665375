"""The listing index: Redis streams of job ids in submission order, written with each job.

What `listing` reads pages from, and only what writes it: which streams a job is listed in, how an
entry holds its job id, and the one command that appends a batch's entries and trims the streams.
Apart from the reader so the write path (`writes`, one write script with the enqueue) depends on
nothing of paging, and the entry format is defined in one place.

At submission each job gets an entry in `listing:all` and in one stream per queue, task, tag and
owner (the same write as the enqueue). A page is then one `XREVRANGE ... COUNT` (O(log N + page))
and one pipelined read of the page's jobs, whatever the number of jobs stored.

Why streams (issue #7): an entry costs ~30 bytes in a stream's listpack nodes against ~145 in a
sorted set's skiplist, and a job has up to six entries; as sorted sets, the index was an eighth of
a finished job's memory. An entry holds the 16 bytes of the job id's UUID (`member`), and its
stream ID is assigned by Redis: order is arrival order at Redis, strict even across API
processes, so positions never tie.

A stream takes one entry per `XADD`, and six commands per job tripled the cost of a 100-job batch,
so a batch's entries ride in its one write script as one `XADDS` per stream (`script_batch`:
the script runs the XADDs, the client sends each member once). Each `XADD` also trims its stream to
`index_retention` (`MINID ~`: whole listpack nodes only, so nearly free), and each stream it
touches gets a TTL of `index_retention` again: a stream nobody appends to any more (a tag used
once, a queue no longer used) would otherwise never be trimmed, and stay forever (issue #13: one
batch of unique tags left 10,000 streams, 44 MB). The TTL counts from the newest entry, so a
stream expires only once every entry in it is older than the retention, which no listing shows
anyway: an entry is listable for exactly `index_retention`, whatever its job's own TTLs (a job
kept forever, `resultTtl: -1`, stays readable by id, not listed).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from gql_jobs.constants import (
    INDEX_ALL,
    INDEX_BY_OWNER,
    INDEX_BY_QUEUE,
    INDEX_BY_TAG,
    INDEX_BY_TASK,
    JOB_ID_PREFIX,
)
from gql_jobs.store.script_batch import ScriptBatch

#: The entry field holding the member (one letter: field names are stored once per node anyway).
FIELD = b"j"


def member(job_id: str) -> bytes:
    """A job id as stored in an entry: its UUID's 16 bytes (40 characters as text).

    Only the ids we mint are indexed (`JOB-<uuid4>`, see `submission.new_job_id`)."""
    try:
        parsed = uuid.UUID(job_id.removeprefix(JOB_ID_PREFIX))
    except ValueError:
        parsed = None
    if parsed is None or f"{JOB_ID_PREFIX}{parsed}" != job_id:
        raise ValueError(f"not a job id we mint: {job_id!r}")
    return parsed.bytes


def job_id_of(stored: bytes) -> str:
    """The job id an entry holds (`member`'s inverse; any other value is read as the id's text)."""
    if len(stored) == 16:  # str(uuid.UUID(bytes=stored)), without the UUID (50 of them a page)
        h = stored.hex()
        return f"{JOB_ID_PREFIX}{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return stored.decode()


def streams_for(queue: str, task: str | None, tags: Iterable[str], owner: str | None) -> list[str]:
    """The streams a job is listed in."""
    keys = [INDEX_ALL, INDEX_BY_QUEUE + queue]
    if owner:
        keys.append(INDEX_BY_OWNER + owner)
    if task:
        keys.append(INDEX_BY_TASK + task)
    keys.extend(INDEX_BY_TAG + tag for tag in dict.fromkeys(tags))
    return keys


def append(batch: ScriptBatch, entries: dict[str, list[bytes]], retention_seconds: int) -> None:
    """Add `entries` (stream -> members, in order) to the batch, each stream trimmed to the
    retention and given it as TTL."""
    horizon_ms = max(time.time_ns() // 1_000_000 - retention_seconds * 1000, 0)
    for stream, members in entries.items():
        batch.xadds(stream, horizon_ms, retention_seconds * 1000, members)
