"""When the client retries, and how long it waits: `Retry-After` first, else exponential backoff."""

from __future__ import annotations

import email.utils
import time

import pytest

from gql_jobs.client.config import ClientConfig
from gql_jobs.client.errors import (
    InvalidPayloadError,
    RateLimitedError,
    ServiceUnavailableError,
    SubmissionOutcomeUnknownError,
    UnknownTaskError,
)
from gql_jobs.client.retrying import retry_delay


def test_retry_after_in_seconds_is_honoured() -> None:
    assert retry_delay(0, "0", backoff=60, max_backoff=120) == 0.0
    assert retry_delay(3, "7", backoff=0.5, max_backoff=30) == 7.0


def test_retry_after_as_an_http_date_is_honoured() -> None:
    moment = email.utils.formatdate(time.time() + 100, usegmt=True)
    assert 90 < retry_delay(0, moment, backoff=0.5, max_backoff=1000) <= 100


def test_retry_after_is_capped() -> None:
    assert retry_delay(0, "3600", backoff=0.5, max_backoff=30) == 30


def test_without_retry_after_the_backoff_doubles_with_jitter() -> None:
    for attempt in range(4):
        delay = retry_delay(attempt, None, backoff=1, max_backoff=1000)
        assert 2**attempt / 2 <= delay <= 2**attempt
    assert retry_delay(20, None, backoff=1, max_backoff=30) <= 30
    assert retry_delay(0, "soon", backoff=1, max_backoff=30) <= 1  # unreadable: backoff


def test_only_the_members_that_say_retry_are_retried() -> None:
    assert ServiceUnavailableError.retryable and SubmissionOutcomeUnknownError.retryable
    assert RateLimitedError.retryable
    assert not UnknownTaskError.retryable and not InvalidPayloadError.retryable


def test_config_prefers_arguments_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GQL_JOBS_URL", "GQL_JOBS_API_KEY", "GQL_JOBS_TIMEOUT", "GQL_JOBS_RETRIES"):
        monkeypatch.delenv(name, raising=False)
    default = ClientConfig.resolve()
    assert (default.url, default.api_key, default.timeout, default.retries) == (
        "http://127.0.0.1:8000",
        None,
        30.0,
        3,
    )
    monkeypatch.setenv("GQL_JOBS_URL", "https://jobs.example.com/")
    monkeypatch.setenv("GQL_JOBS_API_KEY", "gqljobs_env")
    from_env = ClientConfig.resolve()
    assert from_env.graphql_url == "https://jobs.example.com/graphql"
    assert from_env.ws_url == "wss://jobs.example.com/graphql"
    assert from_env.headers() == {"Authorization": "Bearer gqljobs_env"}
    assert ClientConfig.resolve("http://other:1", api_key="k").url == "http://other:1"
    monkeypatch.setenv("GQL_JOBS_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="GQL_JOBS_TIMEOUT must be a number"):
        ClientConfig.resolve()
