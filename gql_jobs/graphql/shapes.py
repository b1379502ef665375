"""A document's shape: its tokens with literal values numbered, so that one validation serves
`job(id: "JOB-a")` and `job(id: "JOB-b")` (issue #20: a new inline document cost 1.7-2x the same
operation with variables, most of it validation).

Why a passing verdict carries over to a document of the same shape: the two differ only in
the values of literals that validation cannot refuse whatever their value:

- a string at a `String` or `ID` argument or input field (both accept any string literal), and
- any literal inside a `JSON` literal (its `parse_literal` takes any value);

every other literal (an `Int`'s range, a `Float`, a `DateTime` string, a variable's default
value, ...) is *pinned*: kept with the shape and compared. Literals are numbered by value (the
first distinct value is 0, ...) with their token kind, so two documents of one shape have the
same equal-or-different pattern among their values, which is all the one rule that compares
values (`OverlappingFieldsCanBeMergedRule`, on arguments) sees. Only documents that passed
are kept by shape: a failing one is validated in full, so its errors are exactly graphql-core's.
Our own pricing (`measure.py`) still runs on each document, since it reads `first:`/`last:`.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    ArgumentNode,
    DocumentNode,
    GraphQLID,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLString,
    ListValueNode,
    Node,
    ObjectValueNode,
    StringValueNode,
    TypeInfo,
    TypeInfoVisitor,
    ValueNode,
    Visitor,
    visit,
)
from graphql.language import Token, TokenKind

LITERALS = frozenset({TokenKind.STRING, TokenKind.BLOCK_STRING, TokenKind.INT, TokenKind.FLOAT})
#: Marks a numbered literal in a shape: a control character no other token's text can hold.
MARK = "\x01"


@dataclass(frozen=True)
class Shape:
    """The shape's text, and the literals (token start offsets and values) in document order."""

    text: str
    literals: tuple[tuple[int, str], ...]


def shape_of(document: DocumentNode) -> Shape | None:
    """The document's shape, or None when it has no literal to number (then it is its own)."""
    return shape_of_tokens(document.loc.start_token if document.loc else None)


def shape_of_tokens(token: Token | None) -> Shape | None:
    """The shape of the tokens from `token` (graphql-core's `<SOF>`) on, as `shape_of`."""
    parts: list[str] = []
    literals: list[tuple[int, str]] = []
    numbers: dict[str, int] = {}
    while token is not None:
        kind = token.kind
        if kind in LITERALS:
            value = token.value or ""
            number = numbers.setdefault(value, len(numbers))
            parts.append(f"{MARK}{kind.value}{number}")
            literals.append((token.start, value))
        elif kind is not TokenKind.COMMENT:
            parts.append(token.value if token.value is not None else kind.value)
        token = token.next
    if not literals:
        return None
    return Shape(" ".join(parts), tuple(literals))


def pinned_literals(
    schema: GraphQLSchema, document: DocumentNode, shape: Shape
) -> tuple[tuple[int, str], ...]:
    """The literals of a document that passed validation whose value validation may depend on
    (their ordinal in `shape.literals` and value): every literal not proven free."""
    free: set[int] = set()
    json = schema.type_map.get("JSON")
    type_info = TypeInfo(schema)

    class Arguments(Visitor):
        def enter_argument(self, node: ArgumentNode, *_: object) -> None:
            argument = type_info.get_argument()
            if argument is not None:
                _free_in(node.value, argument.type, json, free)

    visit(document, TypeInfoVisitor(type_info, Arguments()))
    return tuple(
        (ordinal, value) for ordinal, (start, value) in enumerate(shape.literals) if start not in free
    )


def _free_in(value: ValueNode, type_: GraphQLInputType, json: object, free: set[int]) -> None:
    """Adds to `free` the start offsets of the literals under `value` (of `type_`) whose value
    cannot change validation's verdict."""
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if type_ is json:
        _all_literals(value, free)
    elif isinstance(type_, GraphQLList):
        for item in value.values if isinstance(value, ListValueNode) else (value,):
            _free_in(item, type_.of_type, json, free)
    elif isinstance(type_, GraphQLInputObjectType) and isinstance(value, ObjectValueNode):
        for field in value.fields:
            known = type_.fields.get(field.name.value)
            if known is not None:
                _free_in(field.value, known.type, json, free)
    elif type_ in (GraphQLString, GraphQLID) and isinstance(value, StringValueNode) and value.loc:
        free.add(value.loc.start)


def _all_literals(value: Node, free: set[int]) -> None:
    if isinstance(value, ListValueNode):
        for item in value.values:
            _all_literals(item, free)
    elif isinstance(value, ObjectValueNode):
        for field in value.fields:
            _all_literals(field.value, free)
    elif value.loc is not None:
        free.add(value.loc.start)


def matches(shape: Shape, pinned: tuple[tuple[int, str], ...]) -> bool:
    """Whether a document of `shape` has the pinned values of the validated one."""
    literals = shape.literals
    return all(literals[ordinal][1] == value for ordinal, value in pinned)
