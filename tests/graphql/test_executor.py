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


class CountingExecutor(PlainLeavesExecutor):
    """Counts the fields that took graphql-core's full path."""

    full_path: list[str] = []  # noqa: RUF012  # one list per test: reset below

    def execute_field(self, parent_type: Any, source: Any, field_details_list: Any, *args: Any) -> Any:
        self.full_path.append(f"{parent_type.name}.{field_details_list[0].node.name.value}")
        return super().execute_field(parent_type, source, field_details_list, *args)


def test_plain_leaves_take_the_short_path() -> None:
    """Breaks when graphql-core stops calling `execute_fields` (renamed, reshaped in an upgrade):
    the answers would stay right (the parity test above) but every leaf would pay the full path."""
    CountingExecutor.full_path = []
    answer(CountingExecutor)
    # `things` and `shout` have resolvers; the plain leaves and `__typename` never reach
    # `execute_field`, but for the null name and the bad count, which go back to raise their errors
    # (the null name nulls its row, whose `shout` is then not run, as in graphql-core).
    assert sorted(CountingExecutor.full_path) == sorted(
        ["Query.things", "Thing.shout", "Thing.name", "Thing.count", "Thing.shout"]
    )
