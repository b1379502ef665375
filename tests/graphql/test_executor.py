"""The short path for plain leaf fields (`gql_jobs.graphql.executor`) answers exactly what
graphql-core's own executor answers: values, nulls, and errors with their paths."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from enum import Enum
from typing import Any

import strawberry
from graphql import GraphQLEnumType, parse
from strawberry.extensions import FieldExtension
from strawberry.permission import BasePermission
from strawberry.scalars import JSON

from gql_jobs.graphql.executor import STEP_CACHE_SIZE, PlainLeavesExecutor, _coercion
from gql_jobs.graphql.schema import build_schema
from tests.conftest import make_settings


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


@strawberry.interface
class Named:
    label: str


@strawberry.type
class Inner(Named):  # an interface: Strawberry gives it an `is_type_of`
    label: str
    count: int | None = None

    @strawberry.field
    async def later(self) -> str:
        return self.label + "!"


@strawberry.type
class Other:
    label: str


@strawberry.type
class Box(Named):
    label: str
    inner: Inner | None = None  # a plain object field, nullable
    must: Inner = None  # type: ignore[assignment]  # a plain object field, non-null


@strawberry.type
class BoxQuery:
    @strawberry.field
    def boxes(self) -> list[Box | None]:
        return [
            Box(label="fine", inner=Inner(label="a", count=1), must=Inner(label="b")),
            Box(label="null inner", inner=None, must=Inner(label="c")),
            Box(label="bad count inside", inner=Inner(label="d", count="x"), must=Inner(label="e")),  # type: ignore[arg-type]
            Box(label="null must", inner=Inner(label="f"), must=None),  # type: ignore[arg-type]
            Box(label="bad inside must", inner=None, must=Inner(label=None)),  # type: ignore[arg-type]
            Box(label="wrong type", inner=Other(label="g"), must=Inner(label="h")),  # type: ignore[arg-type]
        ]


BOX_DOCUMENT = "{ boxes { label __typename inner { label count later __typename } must { label later } } }"


def box_answer(executor: Any = None) -> dict[str, Any]:
    schema = strawberry.Schema(query=BoxQuery, types=[Box], execution_context_class=executor)
    result = asyncio.run(schema.execute(BOX_DOCUMENT))  # `later` is async
    errors = sorted((error.message, tuple(error.path or ())) for error in result.errors or ())
    return {"data": result.data, "errors": errors}


def test_plain_object_fields_answer_as_graphql_core_does() -> None:
    """Nulls, errors inside a nullable or non-null object, async fields inside, a value of the
    wrong type: the same data and the same errors at the same paths."""
    ours = box_answer(PlainLeavesExecutor)
    assert ours == box_answer()
    assert ours["data"]["boxes"][0] == {
        "label": "fine",
        "__typename": "Box",
        "inner": {"label": "a", "count": 1, "later": "a!", "__typename": "Inner"},
        "must": {"label": "b", "later": "b!"},
    }
    assert len(ours["errors"]) == 4


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


def test_plain_object_fields_take_the_short_path() -> None:
    CountingExecutor.full_path = []
    ours = box_answer(CountingExecutor)
    assert [message for message, _ in ours["errors"]] == sorted(
        [
            "Int cannot represent non-integer value: 'x'",
            "Cannot return null for non-nullable field Box.must.",
            "Cannot return null for non-nullable field Inner.label.",
            "Expected value of type 'Inner' but got: <Other instance>.",
        ]
    )
    # Only the resolvers, and the abnormal values going back to raise their errors, took the full
    # path: `inner` and `must` of the fine boxes did not.
    assert sorted(set(CountingExecutor.full_path)) == [
        "Box.inner",
        "Box.must",
        "BoxQuery.boxes",
        "Inner.count",
        "Inner.label",
        "Inner.later",
    ]
    assert CountingExecutor.full_path.count("Box.inner") == 1  # the wrong type only
    assert CountingExecutor.full_path.count("Box.must") == 1  # the null only


class Deny(BasePermission):
    message = "not allowed"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return False


class Upper(FieldExtension):
    def resolve(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        return next_(source, info, **kwargs).upper()


@strawberry.type
class Secret:
    value: str


async def later() -> str:
    return "resolved"


@strawberry.type
class User:
    name: str = strawberry.field(extensions=[Upper()])
    password_hash: str | None = strawberry.field(permission_classes=[Deny])
    secret: Secret | None = strawberry.field(permission_classes=[Deny])
    failure: JSON | None = (
        None  # (JSON passes any value through) an Exception as the value: graphql-core raises it as the error
    )
    pending: JSON | None = None  # an awaitable as the value: graphql-core awaits it


@strawberry.type
class UserQuery:
    @strawberry.field
    async def user(self) -> User:
        return User(
            name="ann",
            password_hash="$2b$hash",
            secret=Secret(value="s3cr3t"),
            failure=ValueError("boom"),  # type: ignore[arg-type]
            pending=later(),  # type: ignore[arg-type]
        )


def test_permissions_extensions_exceptions_and_awaitables_take_graphql_cores_path() -> None:
    """A field without a resolver may still carry a permission class or a field extension (not a
    "basic" field for Strawberry): they must run. A value that is an Exception or an awaitable
    is raised or awaited by graphql-core, whatever a permissive scalar would make of it."""

    def run(executor: Any = None) -> tuple[Any, list[tuple[str, Any]]]:
        schema = strawberry.Schema(query=UserQuery, execution_context_class=executor)
        result = asyncio.run(
            schema.execute("{ user { name passwordHash secret { value } failure pending } }")
        )
        return result.data, sorted((error.message, error.path) for error in result.errors or ())

    ours = run(PlainLeavesExecutor)
    assert ours == run()
    data, errors = ours
    assert data == {
        "user": {"name": "ANN", "passwordHash": None, "secret": None, "failure": None, "pending": "resolved"}
    }
    assert errors == [
        ("boom", ["user", "failure"]),
        ("not allowed", ["user", "passwordHash"]),
        ("not allowed", ["user", "secret"]),
    ]


def test_enum_values_are_named_as_strawberry_names_them() -> None:
    """The short path names an enum member by lookup (`executor._coercion`), Strawberry's by
    walking the values: the same name for every member of every enum of our schema, and a
    value that is no member goes through Strawberry's coercion (its answer, or its error)."""
    schema = build_schema(make_settings())._schema
    types = schema.type_map.values()
    enums = [t for t in types if isinstance(t, GraphQLEnumType) and hasattr(t, "wrapped_cls")]
    assert len(enums) >= 3
    for enum_type in enums:
        short = _coercion(enum_type)
        assert short is not enum_type.coerce_output_value, enum_type.name
        for member in enum_type.wrapped_cls:
            assert short(member) == enum_type.coerce_output_value(member), (enum_type.name, member)
        for other in ("FINISHED", "nonsense", 3):
            try:
                expected: object = enum_type.coerce_output_value(other)
            except Exception as exc:
                expected = repr(exc)
            try:
                answered: object = short(other)
            except Exception as exc:
                answered = repr(exc)
            assert answered == expected, (enum_type.name, other)


@strawberry.type
class Item:
    label: str
    count: int | None = None

    @strawberry.field
    async def later(self) -> str:  # non-null: its error nulls the item (or the list, for non-null items)
        if self.label == "boom":
            raise ValueError("boom later")
        return self.label + "!"


@strawberry.type
class Shelf:
    name: str
    items: list[Item] = strawberry.field(default_factory=list)  # non-null list of non-null items
    maybe: list[Item | None] | None = None  # nullable list of nullable items
    strict: list[Item] | None = None  # nullable list of non-null items


def _generator() -> Any:
    yield Item(label="from a generator")


@strawberry.type
class ShelfQuery:
    @strawberry.field
    def shelves(self) -> list[Shelf | None]:
        return [
            Shelf(name="fine", items=[Item(label="a", count=1), Item(label="b")], maybe=[], strict=[]),
            Shelf(name="a tuple", items=(Item(label="t"),)),  # type: ignore[arg-type]
            Shelf(name="null inside a non-null item", items=[Item(label="c"), Item(label=None)]),  # type: ignore[arg-type]
            Shelf(name="bad count", items=[Item(label="d", count="x")]),  # type: ignore[arg-type]
            Shelf(name="null items", maybe=[None, Item(label="e")], strict=[Item(label="f"), None]),  # type: ignore[list-item]
            Shelf(name="wrong type", maybe=[Other(label="g")], strict=[Item(label="h")]),  # type: ignore[list-item]
            Shelf(name="a generator", strict=_generator()),
            Shelf(name="async error, nullable item", maybe=[Item(label="boom"), Item(label="i")]),
            Shelf(name="async error, non-null item", strict=[Item(label="j"), Item(label="boom")]),
            Shelf(name="async error, non-null list", items=[Item(label="boom")]),
            Shelf(name="not a list", strict="nope"),  # type: ignore[arg-type]
        ]


SHELF_DOCUMENT = (
    "{ shelves { name items { label count later __typename } maybe { label count later } "
    "strict { label later } } }"
)


def shelf_answer(executor: Any = None, document: str = SHELF_DOCUMENT) -> dict[str, Any]:
    schema = strawberry.Schema(query=ShelfQuery, types=[Other], execution_context_class=executor)
    result = asyncio.run(schema.execute(document))
    errors = sorted((error.message, tuple(error.path or ())) for error in result.errors or ())
    return {"data": result.data, "errors": errors}


def test_plain_lists_of_objects_answer_as_graphql_core_does() -> None:
    """Lists (and tuples) of objects: nulls in them, errors inside items (sync and async, in
    nullable and non-null items and lists), items of the wrong type, an iterable that is not a
    list, a value that is not iterable: the same data and the same errors at the same paths."""
    ours = shelf_answer(PlainLeavesExecutor)
    assert ours == shelf_answer()
    shelves = ours["data"]["shelves"]
    assert shelves[0] == {
        "name": "fine",
        "items": [
            {"label": "a", "count": 1, "later": "a!", "__typename": "Item"},
            {"label": "b", "count": None, "later": "b!", "__typename": "Item"},
        ],
        "maybe": [],
        "strict": [],
    }
    assert shelves[1]["items"] == [{"label": "t", "count": None, "later": "t!", "__typename": "Item"}]
    assert shelves[2] is None  # a null label in a non-null item of a non-null list nulls the shelf
    assert shelves[4]["maybe"][0] is None and shelves[4]["strict"] is None
    assert shelves[7]["maybe"] == [None, {"label": "i", "count": None, "later": "i!"}]
    assert shelves[8]["strict"] is None and shelves[9] is None
    assert len(ours["errors"]) == 8


def test_lists_under_defer_and_stream_answer_as_graphql_core_does() -> None:
    """Inside a deferred fragment, or streamed, a list takes graphql-core's path, with the same
    initial answer."""
    document = "{ shelves { name ... @defer { items { label } } strict @stream(initialCount: 0) { label } } }"
    ours = shelf_answer(PlainLeavesExecutor, document)
    assert ours == shelf_answer(None, document)


def test_plain_lists_of_objects_take_the_short_path() -> None:
    CountingExecutor.full_path = []
    shelf_answer(CountingExecutor)
    # The fine lists never reach `execute_field`; the abnormal ones go back to raise their errors
    # (a null item, an item of the wrong type, a generator, a value that is not a list).
    full = CountingExecutor.full_path
    assert full.count("Shelf.items") == 0
    # The null item (`Item` has no `is_type_of`: Strawberry gives one to types with interfaces,
    # and graphql-core reads an `Other`'s label as it would an `Item`'s).
    assert full.count("Shelf.maybe") == 1
    assert full.count("Shelf.strict") == 3  # the null item, the generator, the string


def test_values_answered_unchanged_are_those_graphql_core_answers_unchanged() -> None:
    """`_UNCHANGED`: a str for String and ID, a bool for Boolean, are answered without the call;
    breaks if graphql-core's coercions start changing them (or are renamed)."""
    from graphql import GraphQLBoolean, GraphQLID, GraphQLString

    from gql_jobs.graphql.executor import _UNCHANGED

    assert {
        GraphQLString.coerce_output_value: str,
        GraphQLID.coerce_output_value: str,
        GraphQLBoolean.coerce_output_value: bool,
    } == _UNCHANGED
    samples: dict[type, list[Any]] = {str: ["", "x", "é", "JOB-1"], bool: [True, False]}
    for coerce, exact in _UNCHANGED.items():
        for value in samples[exact]:
            assert coerce(value) is value


class Remembered(PlainLeavesExecutor):
    """Keeps the contexts made, to look at their step caches."""

    made: list[PlainLeavesExecutor] = []  # noqa: RUF012  # one list per test: reset below

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.made.append(self)


@strawberry.type
class Event:
    n: int
    items: list[Item]


@strawberry.type
class Events:
    @strawberry.subscription
    async def events(self, count: int) -> AsyncGenerator[Event, None]:
        for n in range(count):
            yield Event(n=n, items=[Item(label="a"), Item(label="b")])


def test_a_long_subscription_keeps_a_bounded_step_cache() -> None:
    """graphql-core executes each event with a shallow copy of the subscription's context: the
    copies share the step cache, and each event's selections are new objects. 500 events keep at
    most `STEP_CACHE_SIZE` entries, and every event is answered."""
    Remembered.made = []
    schema = strawberry.Schema(query=Query, subscription=Events, execution_context_class=Remembered)

    async def run() -> list[Any]:
        answers = await schema.subscribe("subscription { events(count: 500) { n items { label } } }")
        assert not isinstance(answers, strawberry.types.ExecutionResult)
        return [answer.data async for answer in answers]

    answers = asyncio.run(run())
    assert len(answers) == 500
    assert answers[-1] == {"events": {"n": 499, "items": [{"label": "a"}, {"label": "b"}]}}
    assert Remembered.made
    assert all(len(context._step_cache) <= STEP_CACHE_SIZE for context in Remembered.made)


@strawberry.type
class HelpersQuery:
    @strawberry.field
    async def gathered(self, info: strawberry.Info) -> list[int]:
        """Uses graphql-core's helpers for resolvers, as a resolver may (`info.async_helpers`)."""

        async def value(n: int) -> int:
            return n

        helpers = info._raw_info.async_helpers
        helpers.track([value(0)])  # settled in the background, its result dropped
        return await helpers.gather([value(1), value(2)])


def test_async_helpers_are_made_on_access_and_work_as_graphql_cores() -> None:
    """The executor keeps no helpers (they made it a reference cycle: `tests/graphql/
    test_garbage.py`), but a resolver asking for them gets working ones, as graphql-core's own."""

    def run(executor: Any = None) -> Any:
        schema = strawberry.Schema(query=HelpersQuery, execution_context_class=executor)
        return asyncio.run(schema.execute("{ gathered }"))

    ours, theirs = run(PlainLeavesExecutor), run()
    assert (ours.data, ours.errors) == (theirs.data, theirs.errors) == ({"gathered": [1, 2]}, None)
    schema = strawberry.Schema(query=HelpersQuery)
    executor = PlainLeavesExecutor.build(schema._schema, parse("{ gathered }"))
    assert isinstance(executor, PlainLeavesExecutor)
    assert "async_helpers" not in vars(executor)  # graphql-core's __init__ assigned them: not kept
