"""The bound on expensive reads each principal may run at once (`ReadSlots`).

Listings, counts, queue and worker inventories cost the store more than a read by id (and the
listing runs on a request thread: see `gql_jobs.store.threads`). `ReadSlots` bounds those each
principal may run at once: one tenant's 30-alias query waits for its own slots instead of taking
every thread of the process. A service concern (who the caller is), so it lives above the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from gql_jobs.errors import TooManyConcurrentReadsError


class ReadSlots:
    """At most `per_principal` expensive reads of one principal at once.

    A read over the bound waits for a slot of its own principal, up to `wait` seconds, then fails
    with `TooManyConcurrentReadsError` (`CONCURRENCY_LIMITED`): other principals never wait for it.
    One semaphore per principal name; names come from the configured keys, so the map is bounded.
    """

    def __init__(self, per_principal: int, wait: float) -> None:
        self.per_principal = per_principal
        self.wait = wait
        self._semaphores: dict[str, anyio.Semaphore] = {}

    def _semaphore(self, principal: str) -> anyio.Semaphore:
        semaphore = self._semaphores.get(principal)
        if semaphore is None:
            semaphore = self._semaphores[principal] = anyio.Semaphore(self.per_principal)
        return semaphore

    @asynccontextmanager
    async def slot(self, principal: str) -> AsyncIterator[None]:
        semaphore = self._semaphore(principal)
        try:
            with anyio.fail_after(self.wait):
                await semaphore.acquire()
        except TimeoutError:
            raise TooManyConcurrentReadsError(self.per_principal) from None
        try:
            yield
        finally:
            semaphore.release()

    def waiting(self, principal: str) -> int:
        """Reads of `principal` waiting for a slot now (for tests and debugging)."""
        semaphore = self._semaphores.get(principal)
        return semaphore.statistics().tasks_waiting if semaphore is not None else 0
