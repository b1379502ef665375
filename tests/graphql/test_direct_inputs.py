"""`build_directly` builds the same input objects as Strawberry's own field-by-field conversion."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
import strawberry
from strawberry.types.arguments import convert_argument

from gql_jobs.graphql.direct_inputs import build_directly
from gql_jobs.graphql.mutations import RetryInput, SubmitJobInput
from gql_jobs.graphql.pagination import JobFilter
from gql_jobs.graphql.schema import build_schema
from tests.conftest import make_settings

SCHEMA = build_schema(make_settings())

VALUES: list[dict[str, Any]] = [
    {"task": "echo", "atFront": False},
    {"task": "echo", "payload": {"n": [1, {"deep": None}]}, "tags": ["a", "b"], "atFront": True},
    {
        "task": "sleep",
        "payload": None,
        "queue": "high",
        "description": "d",
        "timeout": 5,
        "resultTtl": -1,
        "failureTtl": 60,
        "retry": {"max": 3, "intervals": [1, 2]},
        "delaySeconds": 1.5,
        "dependsOn": ["JOB-1", "JOB-2"],
        "idempotencyKey": "k",
        "atFront": False,
    },
    {"task": "echo", "retry": {"max": 1}, "scheduledAt": datetime(2030, 1, 1, tzinfo=UTC), "atFront": False},
    {"task": "echo", "retry": None, "tags": None, "atFront": False},
]


@contextmanager
def strawberry_conversion(*classes: type) -> Iterator[None]:
    """Strawberry's default conversion, for the comparison."""
    hooks = [cls.__strawberry_definition__.from_input for cls in classes]  # type: ignore[attr-defined]
    for cls in classes:
        cls.__strawberry_definition__.from_input = None  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for cls, hook in zip(classes, hooks, strict=True):
            cls.__strawberry_definition__.from_input = hook  # type: ignore[attr-defined]


def convert(value: dict[str, Any]) -> Any:
    return convert_argument(value, SubmitJobInput, SCHEMA.schema_converter.scalar_registry, SCHEMA.config)


@pytest.mark.parametrize("value", VALUES)
def test_direct_build_equals_strawberrys_conversion(value: dict[str, Any]) -> None:
    direct = convert(value)
    with strawberry_conversion(SubmitJobInput, RetryInput):
        expected = convert(value)

    assert direct == expected
    assert direct.to_domain() == expected.to_domain()
    assert isinstance(direct.retry, RetryInput | None)


def test_lists_are_copies() -> None:
    tags = ["a"]
    built = convert({"task": "echo", "tags": tags, "atFront": False})
    assert built.tags == tags and built.tags is not tags


def test_inputs_it_cannot_build_are_refused_at_definition() -> None:
    with pytest.raises(TypeError, match="enum"):
        build_directly(JobFilter)

    @strawberry.input
    class Many:
        items: list[RetryInput]

    with pytest.raises(TypeError, match="lists of input objects"):
        build_directly(Many)
