"""Property-based fuzzing of both transports (schemathesis): no 5xx, no unhandled error.

Bounded: a fixed number of generated examples per operation, derandomized so CI is repeatable.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, settings

from gql_jobs.app import create_app
from tests.conftest import make_settings, redis_test_url

pytestmark = pytest.mark.integration

# Built at import (schemathesis parametrizes at collection); the suite's Redis is chosen by then.
APP = create_app(make_settings(max_payload_bytes=4096))
OPENAPI = schemathesis.openapi.from_asgi("/openapi.json", APP)
GRAPHQL = schemathesis.graphql.from_asgi("/graphql", APP)
BOUNDED = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(autouse=True, scope="module")
def _clean_redis() -> Any:
    client = redis.Redis.from_url(redis_test_url())
    client.flushdb()
    yield
    client.flushdb()


@OPENAPI.parametrize()
@BOUNDED
def test_rest_never_answers_5xx(case: schemathesis.Case[Any]) -> None:
    response = case.call()
    assert response.status_code < 500, response.text
    if not case.operation.path.startswith(("/docs", "/redoc")):
        assert response.headers["content-type"][0].startswith("application/json")


@GRAPHQL.parametrize()
@BOUNDED
def test_graphql_never_errors_unexpectedly(case: schemathesis.Case[Any]) -> None:
    response = case.call()
    assert response.status_code < 500, response.text
    assert "Unexpected error" not in response.text, response.text
