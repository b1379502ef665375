"""Documents derived from their shape's template (`gql_jobs.graphql.templates`) are what `parse`
gives: the scan reads what graphql-core's lexer reads (or declines), and a derived document equals
the parsed one node for node and location for location; the checker derives only where the
shape's verdict holds, and keeps nothing for a derived document."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest
from graphql import DocumentNode, GraphQLSyntaxError, Source, parse
from graphql.language import Lexer, Token, TokenKind
from graphql.utilities import ast_to_dict
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gql_jobs.graphql.documents import DocumentCache, DocumentChecker
from gql_jobs.graphql.schema import build_schema
from gql_jobs.graphql.shapes import shape_of, shape_of_tokens
from gql_jobs.graphql.templates import Template, scan
from tests.conftest import make_settings

# -- the scan reads what graphql-core's lexer reads -----------------------------------------------

#: Pieces of text, valid and not: what the scan must read as graphql-core does, or decline.
PIECES = [
    *("a", "_b9", "query", "mutation", "on", "true", "null", "A_1"),
    *("!", "$", "&", "(", ")", "...", ":", "=", "@", "[", "]", "{", "|", "}", "..", ".", "?"),
    *("0", "-0", "12", "0123", "1.5", "1.", ".5", "1e3", "1E+3", "1e-3", "1e", "-", "-x", "00"),
    *("1.5e-3x", "9" * 25, "3a", "1.2.3"),
    *('"x"', '""', '"a\\nb"', '"é ü 中"', '"\\u0041"', '"""block"""', '"""', '"unterminated', '"\ttab"'),
    *('"ctl\x01"', '"\ud800"', '"#no comment"', '"{ }"', '"\U0001f600"'),
    *(" ", "\t", ",", "\n", "\r\n", "\r", "\ufeff", "\x0b", "\u00a0", "\u2028"),
    *("# c\n", "#", "# é\n", '# "x"\n', "#\ud800\n"),
    *("'", "\x00", "é", "\U0001f600", "\\"),
]


def lexed(text: str) -> list[Token]:
    """graphql-core's tokens of `text`, `<SOF>` first (its lexer raises on what it refuses)."""
    lexer = Lexer(Source(text))
    first = lexer.token
    while lexer.advance().kind is not TokenKind.EOF:
        pass
    tokens = []
    token: Token | None = first
    while token is not None:
        tokens.append(token)
        token = token.next
    return tokens


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=3), max_size=12))
def test_what_the_scan_reads_graphql_core_reads_alike(pieces: list[str]) -> None:
    text = "".join(pieces) + '\n"literal"'  # one literal at least: a scan without any declines
    scanned = scan(text)
    if scanned is None:
        return  # declining is always safe: the document is parsed
    tokens = lexed(text)  # a text the scan reads, graphql-core reads too
    read = [t for t in tokens if t.kind not in (TokenKind.SOF, TokenKind.EOF, TokenKind.COMMENT)]
    assert scanned.starts == [t.start for t in read]
    assert scanned.ends == [t.end for t in read]
    assert scanned.shape == shape_of_tokens(tokens[0])


@pytest.mark.parametrize(
    "text",
    [
        '{ job(id: "JOB-1") { id } }',
        'mutation {\r\n  submitJob(input: {task: "t", payload: {a: -1.5e3, b: [0, "x"]}}) { __typename }\n}',
        '# a comment { "x" }\nquery Q($a: Int = 5) { jobs(first: $a, after: "c") { __typename } }',
        '\ufeff{ a: job(id: "é ü 中 \U0001f600") { id } ...F } fragment F on Query { __typename }',
    ],
)
def test_the_scan_reads_what_clients_send(text: str) -> None:
    scanned = scan(text)
    assert scanned is not None
    assert scanned.shape == shape_of(parse(text))


@pytest.mark.parametrize(
    "text",
    [
        '{ job(id: "a\\"b") { id } }',  # an escape
        '{ job(id: """block""") { id } }',
        "{ jobs(first: 0123) { __typename } }",  # graphql-core refuses it
        '{ job(id: "JOB") { id } } ?',
        "{ jobs(first: 5) { __typename } }\x00",
    ],
)
def test_the_scan_declines_the_rest(text: str) -> None:
    assert scan(text) is None


def test_a_document_without_literals_is_its_own_shape() -> None:
    assert scan("query ($id: ID!) { job(id: $id) { id } }") is None


# -- a derived document is the parsed one ---------------------------------------------------------

#: Documents with holes for free literals (strings at ID/String arguments, anything in JSON).
SHAPES = [
    '{{ job(id: "{0}") {{ id status }} }}',
    'mutation {{ submitJob(input: {{task: "{0}", payload: {{a: {1}, b: "{2}", c: [{1}.5, "{3}"]}}, '
    'tags: ["{2}", "{3}"]}}) {{ ... on SubmitJobSuccess {{ job {{ id }} }} ... on Error {{ message }} }} }}',
    'query Page($n: Int = 5) {{ jobs(first: $n, after: "{0}", filter: {{task: "{1}"}}) '
    "{{ edges {{ node {{ ...F }} }} }} }}\nfragment F on Job {{ id @include(if: true) }}",
    '{{ a: job(id: "{0}") {{ id }} b: job(id: "{1}") {{ id }} c: job(id: "{0}") {{ id }} }}',
    '"the_operation_{1}" query {{ job(id: "{0}") {{ id }} }}',
]
BLANKS = st.text(alphabet=" \t,\n\r", max_size=3) | st.sampled_from(["# note\n", " #{x}\r\n"])
#: String values the scan reads (no escapes, no control characters, no surrogates).
VALUE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='"\\'), max_size=12
)


def _filled(shape: str, values: list[str], blank: str) -> str:
    """The shape with its holes filled, and `blank` after each of its spaces (blanks differ too)."""
    return shape.replace(" ", " " + blank.replace("{", "{{").replace("}", "}}")).format(*values)


def _parsed_dict(document: DocumentNode) -> dict[str, Any]:
    result: dict[str, Any] = ast_to_dict(document, locations=True)
    return result


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(SHAPES),
    st.lists(VALUE, min_size=4, max_size=4, unique=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    BLANKS,
)
def test_a_derived_document_is_the_parsed_one(
    shape: str, strings: list[str], number: int, blank: str
) -> None:
    first = _filled(shape, ["v0", "0", "v2", "v3"], "")
    second = _filled(shape, [strings[0], str(number), strings[1], strings[2]], blank)
    document = parse(first)
    template = Template.of(document, first, shape_of(document))  # type: ignore[arg-type]
    assert template is not None, first
    scanned = scan(second)
    assert scanned is not None
    assume(scanned.shape.text == shape_of(document).text)  # type: ignore[union-attr]  # same equalities
    derived = template.derive(second, scanned)
    parsed = parse(second)
    assert _parsed_dict(derived) == _parsed_dict(parsed)
    assert vars(derived).get("token_count") == vars(parsed).get("token_count")  # comments included
    assert _parsed_dict(document) == _parsed_dict(parse(first))  # the template's own is untouched
    assert all(loc.source.body == second for loc in _locations(derived))


def _locations(document: DocumentNode) -> list[Any]:
    found = []

    def walk(node: Any) -> None:
        if hasattr(node, "loc") and node.loc is not None:
            found.append(node.loc)
            for value in node.__dict__.values():
                for item in value if isinstance(value, tuple) else (value,):
                    walk(item)

    walk(document)
    return found


def test_no_template_from_a_text_the_scan_reads_otherwise() -> None:
    text = '{ job(id: "a\\u0041") { id } }'
    document = parse(text)
    assert Template.of(document, text, shape_of(document)) is None  # type: ignore[arg-type]


# -- the checker derives where the shape's verdict holds ------------------------------------------


@pytest.fixture
def checker() -> DocumentChecker:
    schema = build_schema(make_settings())
    return DocumentChecker(schema._schema, schema.documents.limits, DocumentCache(10**8, 10**6))


def test_a_document_of_a_passing_shape_is_derived_and_not_kept(checker: DocumentChecker) -> None:
    checker.check('{ job(id: "JOB-a") { id status } }', derive=True)
    entries, weight = len(checker.cache), checker.cache.total_bytes
    for i in range(200):
        query = f'{{\n  job(id: "JOB-{"b" * i}") {{ id status }} }}'
        checked = checker.check(query, derive=True)
        assert checked.errors == ()
        assert checked.document is not None
        assert _parsed_dict(checked.document) == _parsed_dict(parse(query))
    assert checker.cache.derived == 200
    assert (len(checker.cache), checker.cache.total_bytes) == (entries, weight)


def test_only_the_short_path_asks_for_derived_documents(checker: DocumentChecker) -> None:
    checker.check('{ job(id: "JOB-a") { id } }')
    checked = checker.check('{ job(id: "JOB-b") { id } }')
    assert checker.cache.derived == 0
    assert checked.document is not None and checked.document.loc is not None
    assert checked.document.loc.start_token is not None  # parsed: tokens and all


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (
            "{ jobs(first: 5) { edges { node { id } } } }",
            "{ jobs(first: 99999999999) { edges { node { id } } } }",
        ),
        (
            '{ jobs(filter: {submittedAfter: "2026-01-01T00:00:00+00:00"}) { edges { node { id } } } }',
            '{ jobs(filter: {submittedAfter: "not a time"}) { edges { node { id } } } }',
        ),
        (
            '{ a: job(id: "x") { id } a: job(id: "y") { id } }',  # refused: never a shape to derive from
            '{ a: job(id: "z") { id } a: job(id: "w") { id } }',
        ),
    ],
)
def test_a_pinned_literal_that_differs_is_checked_in_full(
    checker: DocumentChecker, first: str, second: str
) -> None:
    checker.check(first, derive=True)
    alone = DocumentChecker(checker.schema, checker.limits, DocumentCache(10**8, 10**6)).check(second)
    checked = checker.check(second, derive=True)
    assert checker.cache.derived == 0
    assert [e.formatted for e in checked.errors] == [e.formatted for e in alone.errors]
    assert checked.tenant_cost == alone.tenant_cost


def test_a_derived_document_costs_what_its_shape_costs(checker: DocumentChecker) -> None:
    page = '{ jobs(first: 20, filter: {task: "%s"}) { edges { node { id status } } } }'
    first = checker.check(page % "a", derive=True)
    derived = checker.check(page % "another", derive=True)
    assert checker.cache.derived == 1
    assert derived.tenant_cost == first.tenant_cost > 0


def test_an_evicted_shape_derives_nothing() -> None:
    schema = build_schema(make_settings())
    checker = DocumentChecker(schema._schema, schema.documents.limits, DocumentCache(60_000, 10**6))
    checker.check('{ job(id: "JOB-a") { id } }', derive=True)
    for i in range(100):  # other documents push the shape out of the byte budget
        checker.check(f"query Q{i} {{ __typename }}")
    gc.collect()
    checked = checker.check('{ job(id: "JOB-b") { id } }', derive=True)
    assert checker.cache.derived == 0
    assert checked.document is not None and checked.errors == ()


def test_comments_count_against_the_token_limit_as_graphql_core_counts_them(checker: DocumentChecker) -> None:
    """graphql-core counts comments against `max_tokens`: a known shape padded with comments past
    the limit is parsed, and refused as parsing refuses it."""
    limit = checker.limits.max_tokens
    checker.check('{ job(id: "a") { id } }', derive=True)
    within = '{ job(id: "b") { id } }' + "#\n" * (limit - 11)  # 11 tokens, and comments to the limit
    checked = checker.check(within, derive=True)
    assert checker.cache.derived == 1 and checked.errors == ()
    assert checked.document is not None and vars(checked.document)["token_count"] == limit
    padded = '{ job(id: "b") { id } }' + "#\n" * (limit - 10)
    refused = checker.check(padded, derive=True)
    assert checker.cache.derived == 1
    assert [e.message for e in refused.errors] == [
        f"Syntax Error: Document contains more than {limit} tokens. Parsing aborted."
    ]


def test_a_syntax_error_is_never_derived(checker: DocumentChecker) -> None:
    checker.check('{ job(id: "JOB-a") { id } }', derive=True)
    checked = checker.check('{ job(id: "JOB-b") { id } ', derive=True)
    assert checker.cache.derived == 0
    assert checked.document is None
    with pytest.raises(GraphQLSyntaxError):
        parse('{ job(id: "JOB-b") { id } ')


FIELDS = "id status task queue payload tags description submittedAt createdAt enqueuedAt result"


@pytest.mark.parametrize(
    "query",
    [
        "{ " + " ".join(f'j{i}: job(id: "{"x" * 200}{i}") {{ {FIELDS} }}' for i in range(30)) + " }",
        '{ job(id: "x") { ' + " ".join(f"a{i}: id" for i in range(20)) + " } }",
        SHAPES[1].format("t", "1", "v", "w"),
    ],
    ids=["aliases-and-long-ids", "many-fields", "submission"],
)
def test_a_shape_s_entry_weighs_at_least_its_template(checker: DocumentChecker, query: str) -> None:
    """What the shape keeps once its document's own entry is gone (derived documents keep it
    recent while their texts are never kept): its weight must cover the template's memory."""
    document = parse(query)
    shape = shape_of(document)
    assert shape is not None
    Template.of(document, query, shape)  # warm what the first one allocates for good
    gc.collect()
    tracemalloc.start()
    template = Template.of(document, query, shape)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert template is not None
    checker.check(query)
    entry = checker.cache.shape(("shape", shape.text))
    assert entry is not None and entry.template is not None
    assert entry.weight >= held, (entry.weight, held)


def test_many_shapes_keep_the_cache_within_its_budget_in_real_memory() -> None:
    """An attacker's stream of distinct shapes (each a passing document with literals, so each
    keeps a template) stays within the byte budget, as estimated and as tracemalloc sees it."""
    schema = build_schema(make_settings())
    budget = 400_000
    checker = DocumentChecker(schema._schema, schema.documents.limits, DocumentCache(budget, 8192))
    checker.check('{ job(id: "warm") { id } }')  # graphql-core's per-schema caches, made once
    gc.collect()
    tracemalloc.start()
    query = ""
    for i in range(400):
        query = "{ " + " ".join(f'a{i}_{k}: job(id: "JOB-{i}-{k}") {{ id status }}' for k in range(5)) + " }"
        assert checker.check(query, derive=True).errors == ()
        assert checker.cache.total_bytes <= budget
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert checker.cache.derived == 0  # every shape new: nothing to derive from
    last = scan(query)
    assert last is not None and checker.cache.shape(("shape", last.shape.text)) is not None  # kept
    assert held <= budget, held
