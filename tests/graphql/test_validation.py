"""Rules created with their methods looked up once per class (`gql_jobs.graphql.validation`) find
the same errors as graphql-core's own, in the same order."""

from __future__ import annotations

import pytest
from graphql import parse, specified_rules, validate

from gql_jobs.graphql.schema import build_schema
from gql_jobs.graphql.validation import fast_rules
from tests.conftest import make_settings

DOCUMENTS = [
    '{ job(id: "JOB-1") { id status } }',
    "{ job(id: 1) { nope ...F } } fragment F on Job { status { x } }",
    "query ($a: Int) { jobs(first: $b) { edges { node { id } } } } fragment G on Job { id }",
    'mutation { submitJob(input: {task: 3, payload: {a: 1}, tags: "x"}) { __typename } }',
    "{ jobs { edges { node { id: status id: task } } } }",
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_the_same_errors_as_graphql_core(document: str) -> None:
    schema = build_schema(make_settings())._schema
    ast = parse(document)
    ours = validate(schema, ast, fast_rules(specified_rules))
    assert [(e.message, e.locations) for e in ours] == [
        (e.message, e.locations) for e in validate(schema, ast, specified_rules)
    ]
    assert bool(ours) == (document != DOCUMENTS[0])
