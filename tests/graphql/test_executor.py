"""The short path for plain leaf fields (`gql_jobs.graphql.executor`) answers exactly what
graphql-core's own executor answers: values, nulls, and errors with their paths."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry

from gql_jobs.graphql.executor import PlainLeavesExecutor


@strawberry.enum
class Colour(Enum):
    RED = "red"


@strawberry.type
class Thing:
    name: str
    count: int | None
    colour: Colour | None

    @strawberry.field
    def shout(self, times: int = 1) -> str:
        return self.name.upper() * times


@strawberry.type
class Query:
    @strawberry.field
    def things(self) -> list[Thing | None]:
        return [
            Thing(name="a", count=None, colour=Colour.RED),
            Thing(name=None, count=1, colour=None),  # type: ignore[arg-type]  # a null for String!
            Thing(name="c", count="many", colour=None),  # type: ignore[arg-type]  # not an Int
        ]


DOCUMENT = "{ things { name count colour shout(times: 2) __typename } }"


def answer(executor: Any = None) -> dict[str, Any]:
    schema = strawberry.Schema(query=Query, execution_context_class=executor)
    result = schema.execute_sync(DOCUMENT)
    return {"data": result.data, "errors": [(e.message, e.path) for e in result.errors or ()]}


def test_plain_leaves_answer_as_graphql_core_does() -> None:
    ours = answer(PlainLeavesExecutor)
    assert ours == answer()
    assert ours["data"]["things"][0] == {
        "name": "a",
        "count": None,
        "colour": "RED",
        "shout": "AA",
        "__typename": "Thing",
    }
    assert [path for _, path in ours["errors"]] == [["things", 1, "name"], ["things", 2, "count"]]
