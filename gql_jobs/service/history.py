"""What a request for the job history (`JobService.stats`, read by `store.stats`) may ask.

Apart from `jobs` because its bounds are the history's own (how far back it reaches, whole steps),
not those of any job operation. No Redis: the service checks the caller and runs the read.
"""

from __future__ import annotations

import re

from gql_jobs.constants import NAME_PATTERN, STATS_MAX_WINDOW
from gql_jobs.errors import InvalidRequestError

#: Why `stats` is for admins only.
STATS_ADMINS_ONLY = "the job history counts every tenant's jobs, so only admins may read it"


def check_request(window: int, step: int, queue: str | None, task: str | None) -> None:
    """A window of whole steps within the history's reach, and names that could be a queue's and
    a task's; else `InvalidRequestError`."""
    _check_window(window, step)
    for name, value in (("queue", queue), ("task", task)):
        if value is not None and not re.fullmatch(NAME_PATTERN, value):
            raise InvalidRequestError(name, f"must match {NAME_PATTERN}")


def _check_window(window: int, step: int) -> None:
    """A window of whole steps within the history's reach (`STATS_MAX_WINDOW` minutes)."""
    if not 1 <= window <= STATS_MAX_WINDOW:
        raise InvalidRequestError("window", f"must be 1 to {STATS_MAX_WINDOW} minutes, not {window}")
    if not 1 <= step <= window:
        raise InvalidRequestError("step", f"must be 1 to window ({window}) minutes, not {step}")
    if window % step:
        raise InvalidRequestError("step", f"must divide window ({window} minutes) evenly, not {step}")
