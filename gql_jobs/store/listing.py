"""Pages and counts of jobs from the listing indexes (part of the service layer).

A page walks one index (`index.base_key`) newest first: one XREVRANGE for the ids and one pipelined
read of those jobs, whatever the number of jobs stored. Criteria the index does not cover (a
status, or a second dimension) are checked on the records, reading further chunks only while the
page is not full, within `SCAN_BUDGET` entries; the page then ends early with `hasNextPage`.
"""

from __future__ import annotations

from redis import Redis

from gql_jobs.domain import JobFilter, JobRecord, Page, PageRequest
from gql_jobs.errors import InvalidRequestError
from gql_jobs.store import index, inventory
from gql_jobs.store.reads import read_jobs

#: How many index entries one page may examine when criteria must be checked on the jobs.
SCAN_BUDGET = 2000
#: Entries read at a time while criteria are checked on the jobs: a small page (`first: 1`) would
#: otherwise walk its scan budget a page at a time, a thousand round trips.
SCAN_CHUNK = 100


def list_jobs(
    connection: Redis, job_filter: JobFilter, page: PageRequest, max_page_size: int, owner: str | None
) -> Page:
    """One page of jobs, newest first; `owner` restricts it to one tenant's jobs."""
    backwards = page.last is not None and page.first is None
    size = page_size(page.last if backwards else page.first, max_page_size)
    cursor = page.before if backwards else page.after
    start = index.Position.decode(cursor) if cursor else None
    key = index.base_key(job_filter, owner)
    fetch = index.newer_than if backwards else index.older_than
    matches: list[tuple[index.Position, JobRecord]] = []
    examined = 0
    exhausted = False
    chunk = SCAN_CHUNK if needs_checking(job_filter, owner) else 0
    while len(matches) <= size and examined < SCAN_BUDGET:
        want = max(size + 1 - len(matches), chunk)
        entries = fetch(connection, key, start, want)
        records = read_jobs(connection, [e.job_id for e in entries])
        _prune(connection, key, [e.position for e, r in zip(entries, records, strict=True) if r is None])
        matches.extend(
            (e.position, r)
            for e, r in zip(entries, records, strict=True)
            if r is not None and matches_filter(r, job_filter)
        )
        examined += len(entries)
        if len(entries) < want:
            exhausted = True
            break
        start = entries[-1].position
    more = len(matches) > size or not exhausted
    window = matches[:size]
    if backwards:
        window.reverse()
    return Page(
        items=[(p.encode(), r) for p, r in window],
        has_next_page=(cursor is not None) if backwards else more,
        has_previous_page=more if backwards else (cursor is not None),
        total_count=None,
    )


def count_jobs(connection: Redis, job_filter: JobFilter, owner: str | None) -> int | None:
    """Count matching jobs where that is cheap; `None` where it would mean reading every job."""
    dimensions = sum(1 for v in (job_filter.queue, job_filter.task, job_filter.tag) if v)
    if owner is not None:
        if dimensions or job_filter.status is not None:
            return None
        return int(connection.xlen(index.base_key(job_filter, owner)))
    if job_filter.status is None:
        return None if dimensions > 1 else int(connection.xlen(index.base_key(job_filter)))
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
    status, or more criteria than the index covers (one; none for a tenant's own index)."""
    dimensions = sum(1 for v in (job_filter.queue, job_filter.task, job_filter.tag) if v)
    return job_filter.status is not None or dimensions > (0 if owner is not None else 1)


def matches_filter(record: JobRecord, job_filter: JobFilter) -> bool:
    return (
        (job_filter.status is None or record.status == job_filter.status)
        and (job_filter.queue is None or record.queue == job_filter.queue)
        and (job_filter.task is None or record.task == job_filter.task)
        and (job_filter.tag is None or job_filter.tag in record.tags)
    )


def _prune(connection: Redis, key: str, gone: list[index.Position]) -> None:
    """Drop the walked index's entries whose job has expired or been deleted (the job's entries
    in other indexes go when those are walked, or trimmed)."""
    if gone:
        connection.xdel(key, *(p.stream_id for p in gone))
