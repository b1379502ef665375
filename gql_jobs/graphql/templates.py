"""Documents of a shape seen before, built without parsing (issue #20).

A document with its values inline (`job(id: "JOB-…")`, `submitJob(input: {task: "add", …})`, as
GraphiQL users, scripts and the README write them) is new text on every request. Validation is
already shared by shape (`shapes.py`), but parsing it still cost graphql-core's Python lexer and
parser about 130 µs for 50 tokens, a third of the whole request, and each parsed document
kept in the cache pushed out one a client repeats.

Here such a document is *derived* instead: one regular expression (`scan`) reads its tokens,
giving its shape; when the cache holds a passing document of that shape with the same pinned
literals (`DocumentChecker`), the new document is that one's AST rebuilt (`Template.derive`) with
this text's literal values and this text's offsets and `Source` in every node's `Location`. The
result is the AST `parse` returns, node for node and location for location
(`tests/graphql/test_templates.py` holds the two equal on generated documents), except that its
locations carry no tokens (`start_token`/`end_token` are None): the tokens are the cost this
saves, and nothing that runs on the short path reads them (Strawberry's Apollo tracing does,
and with it on, the short path is off). Derived documents are therefore given only to
`direct.DirectExecution`; every other path parses.

The scan reads a subset of GraphQL's lexical grammar, the subset clients send: names,
punctuators, numbers, strings without escapes, commas, white space and comments. Within it,
it reads what graphql-core's lexer reads (held so by a property test against `Lexer`); anything
else (an escape, a block string, a character the lexer refuses) makes it decline, and the
document is parsed as before. It counts comments too: graphql-core counts them against
`max_tokens`, and a document over it is parsed, to be refused as parsing refuses it. A template
is only made from a document whose scan gives graphql-core's own tokens, offsets and count
included, and it keeps none of that document's literal values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from graphql import DocumentNode, FloatValueNode, IntValueNode, Node, Source, StringValueNode
from graphql.language import Location, Token, TokenKind

from gql_jobs.graphql.shapes import LITERALS, MARK, Shape

_SCAN = re.compile(
    r"""
    [ \t,\ufeff\n\r]*  # ignored: blanks, commas and line ends, before each token
    (?:(?P<comment>\#[^\n\r\ud800-\udfff]*)
    |(?P<punctuator>\.\.\.|[!$&():=@\[\]{|}])
    |(?P<name>[_A-Za-z][_0-9A-Za-z]*)
    |(?P<number>-?(?:0|[1-9][0-9]*)(?P<fraction>\.[0-9]+)?(?P<exponent>[eE][+-]?[0-9]+)?)
        (?![._A-Za-z0-9])
    |"(?!"")(?P<string>[^"\\\n\r\x00-\x1f\ud800-\udfff]*)"
    |(?P<end>\Z)
    |(?P<other>[\s\S]))
    """,
    re.VERBOSE,
)
_STRING = f"{MARK}{TokenKind.STRING.value}"
_INT = f"{MARK}{TokenKind.INT.value}"
_FLOAT = f"{MARK}{TokenKind.FLOAT.value}"
_LITERAL_NODES = (StringValueNode, IntValueNode, FloatValueNode)


@dataclass(frozen=True)
class Scan:
    """A document's shape (as `shapes.shape_of` gives it from graphql-core's tokens), where each
    of its tokens starts and ends (comments, `<SOF>` and `<EOF>` left out), and its comments."""

    shape: Shape
    starts: list[int]
    ends: list[int]
    comments: int

    @property
    def token_count(self) -> int:
        """The tokens graphql-core counts against `max_tokens`: comments included (3.3)."""
        return len(self.starts) + self.comments


def scan(text: str) -> Scan | None:
    """The document's shape and token offsets, or None when its text is outside the subset read
    here, or holds no literal (then it is its own shape, and the cache has it by its text)."""
    parts = ["<SOF>"]
    starts: list[int] = []
    ends: list[int] = []
    literals: list[tuple[int, str]] = []
    numbers: dict[str, int] = {}
    comments = 0
    for match in _SCAN.finditer(text):
        group = match.lastgroup
        end = match.end()  # a token ends its match (the blanks before it start it)
        if group in ("punctuator", "name"):
            token = match.group(group)
            parts.append(token)
            start = end - len(token)
        elif group in ("string", "number"):
            if group == "string":
                value = match.group("string")
                mark = _STRING
                start = end - len(value) - 2
            else:
                value = match.group("number")
                mark = _FLOAT if match.group("fraction") or match.group("exponent") else _INT
                start = end - len(value)
            number = numbers.setdefault(value, len(numbers))
            parts.append(f"{mark}{number}")
            literals.append((start, value))
        elif group == "comment":
            comments += 1
            continue
        elif group == "other":
            return None
        else:  # the blanks at the end
            continue
        starts.append(start)
        ends.append(end)
    if not literals:
        return None
    parts.append("<EOF>")
    return Scan(Shape(" ".join(parts), tuple(literals)), starts, ends, comments)


def graphql_core_tokens(document: DocumentNode) -> list[Token]:
    """The tokens graphql-core read for `document`, without comments, `<SOF>` and `<EOF>`."""
    token = document.loc.start_token.next if document.loc else None
    tokens = []
    while token is not None and token.kind is not TokenKind.EOF:
        if token.kind is not TokenKind.COMMENT:
            tokens.append(token)
        token = token.next
    return tokens


class Template:
    """A parsed document that passed, from which documents of its shape are derived."""

    def __init__(self, document: DocumentNode, tokens: list[Token]) -> None:
        self._counts_tokens = "token_count" in vars(document)
        start_index = {token.start: i for i, token in enumerate(tokens)}
        end_index = {token.end: i for i, token in enumerate(tokens)}
        literal_starts = [t.start for t in tokens if t.kind in LITERALS]
        literal_at = {start: ordinal for ordinal, start in enumerate(literal_starts)}
        self._steps: list[_Step] = []
        self._plan(document, start_index, end_index, literal_at)

    @classmethod
    def of(cls, document: DocumentNode, text: str, shape: Shape) -> Template | None:
        """A template of `document` (parsed from `text`, of `shape`), or None when the scan does
        not read `text` exactly as graphql-core did (then its documents are always parsed)."""
        tokens = graphql_core_tokens(document)
        scanned = scan(text)
        if scanned is None or scanned.shape != shape:
            return None
        if scanned.starts != [t.start for t in tokens] or scanned.ends != [t.end for t in tokens]:
            return None
        if getattr(document, "token_count", scanned.token_count) != scanned.token_count:
            return None
        return cls(document, tokens)

    def derive(self, text: str, scanned: Scan) -> DocumentNode:
        """The document `text` parses to: `scanned` is its scan, of this template's shape."""
        source = Source(text)
        starts, ends, literals = scanned.starts, scanned.ends, scanned.shape.literals
        built: list[Node] = []
        new_node = object.__new__
        set_fields = object.__setattr__
        for cls, fields, children, start, end, literal in self._steps:
            node = new_node(cls)
            values = fields.copy()
            for key, child in children:
                values[key] = built[child] if isinstance(child, int) else tuple([built[i] for i in child])
            location = new_node(Location)
            location.start = starts[start] if start >= 0 else 0
            location.end = ends[end] if end >= 0 else len(text)
            location.start_token = location.end_token = cast(Token, None)
            location.source = source
            values["loc"] = location
            if literal >= 0:
                values["value"] = literals[literal][1]
            elif cls is DocumentNode and self._counts_tokens:  # as graphql-core's parser sets it
                values["token_count"] = scanned.token_count
            # graphql-core's nodes are frozen dataclasses with a __dict__: this sets what
            # `__init__` would, without a frozen `__setattr__` call per field.
            set_fields(node, "__dict__", values)
            built.append(node)
        return cast(DocumentNode, built[-1])

    def _plan(
        self, node: Node, start_index: dict[int, int], end_index: dict[int, int], literal_at: dict[int, int]
    ) -> int:
        """Adds the steps that build `node` (its children first); answers the step's number."""
        fields: dict[str, Any] = {}
        children: list[tuple[str, int | tuple[int, ...]]] = []
        for key, value in node.__dict__.items():
            if isinstance(value, Node):
                children.append((key, self._plan(value, start_index, end_index, literal_at)))
            elif type(value) is tuple and value and all(isinstance(v, Node) for v in value):
                children.append(
                    (key, tuple(self._plan(v, start_index, end_index, literal_at) for v in value))
                )
            elif key != "loc":
                fields[key] = value
        if isinstance(node, _LITERAL_NODES):
            del fields["value"]  # each derivation sets its own: the template keeps none
        elif isinstance(node, DocumentNode):
            fields.pop("token_count", None)
        loc = node.loc
        if loc is None:
            raise ValueError(f"a template needs locations: {node!r} has none")
        whole = isinstance(node, DocumentNode)  # from <SOF> to <EOF>: the whole text
        start = -1 if whole else start_index[loc.start]
        end = -1 if whole else end_index[loc.end]
        literal = literal_at[loc.start] if isinstance(node, _LITERAL_NODES) else -1
        self._steps.append((type(node), fields, tuple(children), start, end, literal))
        return len(self._steps) - 1


#: How to build one node: its class, its plain fields, its children (step numbers), the token
#: indexes of its start and end (-1: the whole text), its literal's ordinal (-1: none).
_Step = tuple[type[Node], dict[str, Any], tuple[tuple[str, "int | tuple[int, ...]"], ...], int, int, int]
