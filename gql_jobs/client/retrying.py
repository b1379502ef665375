"""Retries under the generated client: an httpx transport that sends a request again after a
connection failure or a 429/502/503/504, waiting as `Retry-After` says or by exponential backoff.

The request is sent again byte for byte, so a submission keeps its idempotency key: a retry after a
timeout returns the job the first attempt stored, if it did, instead of making a second one.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time

import anyio
import httpx

RETRY_STATUSES = frozenset({429, 502, 503, 504})
logger = logging.getLogger("gql_jobs.client")


def retry_delay(attempt: int, retry_after: str | None, backoff: float, max_backoff: float) -> float:
    """Seconds before retry number `attempt` (0-based): the server's `Retry-After` (seconds or an
    HTTP date) when it gave one, else `backoff * 2**attempt` with jitter; never above `max_backoff`."""
    if retry_after is not None:
        told = _parse_retry_after(retry_after)
        if told is not None:
            return float(min(max(told, 0.0), max_backoff))
    return float(min(backoff * 2**attempt * (0.5 + random.random() / 2), max_backoff))


def _parse_retry_after(value: str) -> float | None:
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment.timestamp() - time.time()


class RetryingTransport(httpx.AsyncBaseTransport):
    """Wraps a transport; `retries` more attempts at most, each after `retry_delay`."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        retries: int,
        backoff: float,
        max_backoff: float,
    ) -> None:
        self.inner = inner
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self.inner.handle_async_request(request)
            except httpx.TransportError as exc:
                if attempt >= self.retries:
                    raise
                await pause(retry_delay(attempt, None, self.backoff, self.max_backoff), type(exc).__name__)
            else:
                if response.status_code not in RETRY_STATUSES or attempt >= self.retries:
                    return response
                retry_after = response.headers.get("retry-after")
                await response.aclose()
                delay = retry_delay(attempt, retry_after, self.backoff, self.max_backoff)
                await pause(delay, f"HTTP {response.status_code}")
            attempt += 1

    async def aclose(self) -> None:
        await self.inner.aclose()


async def pause(delay: float, why: str) -> None:
    """Wait before a retry, saying so (at INFO: a retry is worth knowing about, not a warning)."""
    logger.info("retrying in %.2f s after %s", delay, why, extra={"retry_delay": delay, "retry_cause": why})
    await anyio.sleep(delay)
