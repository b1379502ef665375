"""Bulk actions: cancel, requeue or delete every job a filter selects (`JobService.bulk`).

Apart from `jobs` because selecting the jobs (named by id, or walked from the listing) and
accounting for each one (acted on, or skipped with why) is most of the work, and none of it is
the single actions'. It goes through the service's own steps (reads, the listing within read
slots, the rate limit, the one store path for actions: `JobService._apply`), so a job acted on in
bulk is checked, applied and announced exactly as a single action would; the caller was checked
by `JobService.bulk` already.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from gql_jobs.auth import Principal
from gql_jobs.domain import (
    BulkAction,
    BulkOutcome,
    BulkSkip,
    BulkSkipReason,
    JobFilter,
    JobRecord,
    JobStatus,
    PageRequest,
)
from gql_jobs.errors import InvalidCursorError, InvalidJobStateError, InvalidRequestError
from gql_jobs.service.actions import APPLIES_TO, reader_for
from gql_jobs.store import listing, manage

if TYPE_CHECKING:  # the service calls this module, which works through the service's steps
    from gql_jobs.service.jobs import JobService


async def act(
    service: JobService, manager: Principal, action: BulkAction, job_filter: JobFilter, after: str | None
) -> BulkOutcome:
    """`JobService.bulk`'s work, for a `manager` allowed to submit (see its docstring)."""
    limit = service.settings.max_bulk_jobs
    job_filter = service.check_filter(job_filter, limit)
    if after is not None:
        try:
            listing.Position.decode(after)
        except InvalidCursorError:
            raise InvalidRequestError("after", "not a cursor this API issued") from None
    skipped: list[BulkSkip] = []
    if job_filter.ids:
        if after is not None:
            raise InvalidRequestError("after", "not with `ids`: every id is taken at once")
        candidates = await _named(service, manager, action, job_filter, skipped)
        matched, truncated, resume = len(job_filter.ids), False, None
    elif job_filter.status is not None and job_filter.status not in APPLIES_TO[action]:
        # Nothing can match (cancelJobs(filter: {status: FINISHED})): walking the index anyway
        # read up to the scan budget per call, and a large index answered `truncated`, so a
        # client calling again while truncated walked all of it for nothing.
        return BulkOutcome(action, 0, 0, (), (), False, None)
    else:
        owner = None if manager.is_admin else manager.name
        selection = replace(job_filter, statuses=APPLIES_TO[action])
        page = await service._listed(manager, selection, PageRequest(first=limit, after=after), limit, owner)
        candidates = [record for _, record in page.items]
        matched, truncated, resume = len(candidates), page.has_next_page, page.resume_cursor
    if action == BulkAction.REQUEUE:
        candidates = await _within_rate(service, manager, candidates, skipped)
    applied = await service._apply(action, candidates) if candidates else manage.Applied()
    skipped.extend(_changed_skip(job_id, status, action) for job_id, status in applied.changed.items())
    acted = [r.id for r in applied.acted + applied.stopping]
    return BulkOutcome(action, matched, len(acted), tuple(acted), tuple(skipped), truncated, resume)


async def _named(
    service: JobService,
    manager: Principal,
    action: BulkAction,
    job_filter: JobFilter,
    skipped: list[BulkSkip],
) -> list[JobRecord]:
    """The jobs named in `ids` the action applies to; the others go to `skipped`, with why."""
    records = await service.get_many(reader_for(manager), job_filter.ids)
    criteria = replace(job_filter, ids=())
    chosen = []
    for job_id, record in zip(job_filter.ids, records, strict=True):
        if record is None:
            skipped.append(BulkSkip(job_id, BulkSkipReason.NOT_FOUND, f"Job not found: {job_id[:140]}"))
        elif not (listing.matches_filter(record, criteria) and listing.in_time_range(record, criteria)):
            skipped.append(
                BulkSkip(job_id, BulkSkipReason.NOT_MATCHED, "Outside the filter's other criteria")
            )
        elif record.status not in APPLIES_TO[action]:
            skipped.append(_changed_skip(job_id, record.status, action))
        else:
            chosen.append(record)
    return chosen


async def _within_rate(
    service: JobService, manager: Principal, candidates: list[JobRecord], skipped: list[BulkSkip]
) -> list[JobRecord]:
    """Requeued jobs run again: each takes a token, all at once; beyond the burst they wait."""
    rate = service._rate
    if not rate.enabled or not candidates:
        return candidates
    taken, left = candidates[: rate.burst], candidates[rate.burst :]
    await service._take_tokens(manager.name, len(taken))
    message = f"More than the rate limit's burst ({rate.burst}) at once; retry for the rest"
    skipped.extend(BulkSkip(r.id, BulkSkipReason.RATE_LIMITED, message, r.status) for r in left)
    return taken


def _changed_skip(job_id: str, status: JobStatus | None, action: BulkAction) -> BulkSkip:
    if status is None:
        return BulkSkip(job_id, BulkSkipReason.NOT_FOUND, f"Job not found: {job_id[:140]}")
    message = InvalidJobStateError(job_id, status.value, action.value).message
    return BulkSkip(job_id, BulkSkipReason.INVALID_STATE, message, status)
