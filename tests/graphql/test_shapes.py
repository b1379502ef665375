"""Validation verdicts shared by documents of one shape (`gql_jobs.graphql.shapes`): a document
checked after another of its shape gets exactly the verdict it gets checked alone, and passing
inline documents that differ only in free literals are validated once."""

from __future__ import annotations

import pytest
from graphql import GraphQLError, validate

from gql_jobs.graphql.documents import Checked, DocumentCache, DocumentChecker
from gql_jobs.graphql.schema import build_schema
from tests.conftest import make_settings

PAGE = "{ jobs(first: %s) { edges { node { id } } } }"
SUBMIT = "mutation { submitJob(input: {task: %s, payload: %s, tags: %s}) { __typename } }"
#: (a passing document, then one of the same shape whose verdict may differ).
PAIRS = [
    ('{ job(id: "JOB-a") { id } }', '{ job(id: "JOB-b") { id } }'),
    (
        '{ a: job(id: "x") { id } a: job(id: "x") { id } }',
        '{ a: job(id: "x") { id } a: job(id: "y") { id } }',
    ),
    (  # a block string prints apart from a string of the same value: a shape apart
        '{ a: job(id: """x""") { id } a: job(id: """x""") { id } }',
        '{ a: job(id: """x""") { id } a: job(id: "x") { id } }',
    ),
    (PAGE % 5, PAGE % 99999999999),
    (PAGE % 5, PAGE % 6),
    (
        '{ jobs(first: 5, after: "c1") { edges { node { id } } } }',
        '{ jobs(first: 5, after: "c2") { edges { node { id } } } }',
    ),
    (
        '{ jobs(filter: {submittedAfter: "2026-01-01T00:00:00+00:00"}) { edges { node { id } } } }',
        '{ jobs(filter: {submittedAfter: "not a time"}) { edges { node { id } } } }',
    ),
    (
        '{ jobs(filter: {status: QUEUED, task: "t"}) { edges { node { id } } } }',
        '{ jobs(filter: {status: NOPE, task: "t"}) { edges { node { id } } } }',
    ),
    (
        "query ($n: Int = 5) { jobs(first: $n) { edges { node { id } } } }",
        "query ($n: Int = 99999999999) { jobs(first: $n) { edges { node { id } } } }",
    ),
    (
        SUBMIT % ('"add"', '{a: 1, b: "x", c: [1.5]}', '["t"]'),
        SUBMIT % ('"add"', '{a: 2, b: "y", c: [2e3]}', '["u"]'),
    ),
    (SUBMIT % ('"add"', "{a: 1}", '["t"]'), SUBMIT % ('"add"', "{a: 1}", '"u"')),
    ('{ job(id: "J") { id @include(if: true) } }', '{ job(id: "J") { id @include(if: false) } }'),
]


def _checkers() -> tuple[DocumentChecker, DocumentChecker]:
    schema = build_schema(make_settings())
    shared = schema.documents
    alone = DocumentChecker(schema._schema, shared.limits, DocumentCache(10**8, 10**6))
    return shared, alone


def _verdict(checked: Checked) -> list[tuple[str, object, object]]:
    return [(e.message, e.locations, e.extensions) for e in checked.errors]


@pytest.mark.parametrize(("first", "second"), PAIRS)
def test_a_shape_seen_before_gives_the_verdict_of_the_document_alone(first: str, second: str) -> None:
    shared, alone = _checkers()
    assert shared.check(first).errors == ()
    checked = shared.check(second)
    expected = alone.check(second)
    assert _verdict(checked) == _verdict(expected)
    assert checked.tenant_cost == expected.tenant_cost


def test_documents_that_differ_in_free_literals_are_validated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    shared, _ = _checkers()
    calls: list[object] = []

    def counted(*args: object, **kwargs: object) -> list[GraphQLError]:
        calls.append(args)
        return validate(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("gql_jobs.graphql.documents.validate", counted)
    for i in range(5):
        assert shared.check(f'{{ job(id: "JOB-{i}") {{ id }} }}').errors == ()
        assert shared.check(SUBMIT % ('"add"', f'{{n: {i}, m: "{i}"}}', f'["t{i}"]')).errors == ()
    assert len(calls) == 2
    assert shared.check(PAGE % 7).errors == ()  # a pinned literal of another value: validated
    assert len(calls) == 3


def test_shapes_count_in_the_caches_byte_budget() -> None:
    schema = build_schema(make_settings())
    cache = DocumentCache(budget_bytes=200_000, entry_bytes=10_000)
    checker = DocumentChecker(schema._schema, schema.documents.limits, cache)
    for i in range(300):
        checker.check(f'{{ job(id: "JOB-{i}") {{ id }} }} # {"x" * i}')
        checker.check(f'{{ j{i}: job(id: "JOB-{i}") {{ id }} }}')  # a new shape each time
        assert cache.total_bytes <= cache.budget_bytes
    assert cache.total_bytes == sum(entry.weight for entry in cache._entries.values())
