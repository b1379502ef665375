"""Answers that tell the truth (issue #13): crafted cursors, payloads JSON cannot carry, per-item
batch outcomes, submissions whose fate Redis left unknown, and limits no path may skip."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gql_jobs import index
from tests.graphql_helpers import gql, submit, top_level_error

pytestmark = pytest.mark.integration

PAGE = """query ($first: Int, $after: String, $last: Int, $before: String) {
  jobs(first: $first, after: $after, last: $last, before: $before) { edges { cursor node { id } } }
}"""


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# -- crafted cursors ---------------------------------------------------------------------------------

CRAFTED_CURSORS = {
    "huge-ms": b64("99999999999999999999999-1"),
    "huge-seq": b64("5-99999999999999999999"),
    "over-64-bits": b64("18446744073709551616-0"),
    "zero": b64("0-0"),
    "largest-id": b64("18446744073709551615-18446744073709551615"),
    "negative": b64("-1-5"),
    "no-seq": b64("1-"),
    "leading-zero": b64("007-1"),
    "plus-sign": b64("+1-2"),
    "padded": b64("1-2") + "==",
    "not-base64": "%%%not base64%%%",
    "one-kilobyte": "A" * 1024,
}


@pytest.mark.parametrize("direction", ["after", "before"])
@pytest.mark.parametrize("cursor", CRAFTED_CURSORS.values(), ids=CRAFTED_CURSORS.keys())
def test_a_crafted_cursor_is_a_typed_bad_user_input_error(
    client: TestClient, direction: str, cursor: str
) -> None:
    submit(client)
    size = {"first": 2} if direction == "after" else {"last": 2}

    error = top_level_error(gql(client, PAGE, **size, **{direction: cursor}))

    assert (error["message"], error["extensions"]["code"]) == ("Invalid cursor", "BAD_USER_INPUT")


@pytest.mark.parametrize(
    "position", [index.Position(0, 1), index.Position(2**64 - 1, 2**64 - 2)], ids=["first", "last"]
)
def test_the_extreme_positions_redis_can_assign_are_valid_cursors(
    client: TestClient, position: index.Position
) -> None:
    """The bounds of what `decode` accepts are IDs Redis takes in both exclusive ranges."""
    submit(client)
    for size, direction in [("first", "after"), ("last", "before")]:
        body = gql(client, PAGE, **{size: 2, direction: position.encode()})
        assert "errors" not in body, body
        edges: list[dict[str, Any]] = body["data"]["jobs"]["edges"]
        assert len(edges) <= 1
