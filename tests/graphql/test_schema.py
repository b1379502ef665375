"""The schema as a contract: the committed SDL, introspection, documentation, and protective limits."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    InterfaceTypeDefinitionNode,
    ObjectTypeDefinitionNode,
    UnionTypeDefinitionNode,
    get_introspection_query,
    parse,
)

from gql_jobs.cli import _parser
from gql_jobs.graphql.schema import GuardedSchema, build_schema, possible_types, sdl
from tests.conftest import make_settings, subprocess_env
from tests.graphql_helpers import client_with, data, gql, top_level_error

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BUILTIN_SCALARS = {"String", "Int", "Float", "Boolean", "ID"}


def our_types() -> Iterator[GraphQLNamedType]:
    """Every named type we define (not GraphQL's introspection types or built-in scalars)."""
    schema = build_schema(make_settings())
    for name, named_type in schema._schema.type_map.items():
        if not name.startswith("__") and name not in BUILTIN_SCALARS:
            yield named_type


def nested_dependencies(depth: int) -> str:
    """`job { dependsOn { ... { id } } }` at `depth` as the limiter counts it (`job { id }` is depth 1)."""
    inner = "id"
    for _ in range(depth - 1):
        inner = f"dependsOn {{ {inner} }}"
    return f'{{ job(id: "JOB-x") {{ {inner} }} }}'


# -- the committed SDL -------------------------------------------------------------------------------


def test_committed_schema_matches_the_code() -> None:
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")

    assert committed == sdl(), "schema.graphql is stale: run `gql-jobs export-schema --output schema.graphql`"


def declared_supertypes() -> dict[str, set[str]]:
    """Each union's members and each interface's implementations, read from the committed SDL's
    syntax tree (not from a schema object, as `possible_types` is)."""
    document = parse((ROOT / "schema.graphql").read_text(encoding="utf-8"))
    found: dict[str, set[str]] = {}
    for definition in document.definitions:
        if isinstance(definition, UnionTypeDefinitionNode):
            members = {t.name.value for t in definition.types or ()}
            found.setdefault(definition.name.value, set()).update(members)
        elif isinstance(definition, InterfaceTypeDefinitionNode):
            found.setdefault(definition.name.value, set())
        elif isinstance(definition, ObjectTypeDefinitionNode):
            for interface in definition.interfaces or ():
                found.setdefault(interface.name.value, set()).add(definition.name.value)
    return found


def test_possible_types_lists_what_the_sdl_declares() -> None:
    computed = possible_types()

    assert {name: set(members) for name, members in computed.items()} == declared_supertypes()
    assert all(len(members) == len(set(members)) for members in computed.values())
    assert "SubmitJobSuccess" in computed["SubmitJobResult"]
    assert "UnknownTaskError" in computed["Error"]  # what `... on Error { message }` needs
    assert computed["Node"] == ["Job"]


def test_the_possible_types_command_prints_that_json(tmp_path: Path) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "gql_jobs", "possible-types"],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    written = tmp_path / "possibleTypes.json"
    subprocess.run(
        [sys.executable, "-m", "gql_jobs", "possible-types", "--output", str(written)],
        env=subprocess_env(),
        timeout=60,
        check=True,
    )

    assert json.loads(printed) == possible_types()
    assert written.read_text(encoding="utf-8") == printed


def test_the_possible_types_command_is_in_the_help() -> None:
    usage = _parser().format_help()

    assert "possible-types" in usage
    assert "possibleTypes" in usage


# -- introspection -----------------------------------------------------------------------------------


def test_introspection_query_over_http_succeeds(client: TestClient) -> None:
    body = gql(client, get_introspection_query(descriptions=True))

    assert "errors" not in body, body.get("errors")
    names = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert {"Job", "JobConnection", "SubmitJobInput", "SubmitJobResult", "JSON", "DateTime"} <= names


def test_introspection_reports_input_defaults(client: TestClient) -> None:
    query = '{ __type(name: "SubmitJobInput") { inputFields { name defaultValue } } }'

    fields = {f["name"]: f["defaultValue"] for f in data(client, query)["__type"]["inputFields"]}

    assert fields["payload"] == "null"
    assert fields["atFront"] == "false"


# -- documentation -----------------------------------------------------------------------------------


def test_every_type_has_a_description() -> None:
    undocumented = [t.name for t in our_types() if not (t.description or "").strip()]

    assert undocumented == []


def test_every_field_and_input_field_has_a_description() -> None:
    undocumented = [
        f"{t.name}.{name}"
        for t in our_types()
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType)
        for name, field in t.fields.items()
        if not (field.description or "").strip()
    ]

    assert undocumented == []


def test_every_enum_value_has_a_description() -> None:
    undocumented = [
        f"{t.name}.{name}"
        for t in our_types()
        if isinstance(t, GraphQLEnumType)
        for name, value in t.values.items()
        if not (value.description or "").strip()
    ]

    assert undocumented == []


def test_every_argument_has_a_description() -> None:
    undocumented = [
        f"{t.name}.{field_name}({arg_name})"
        for t in our_types()
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType)
        for field_name, field in t.fields.items()
        for arg_name, argument in field.args.items()
        if not (argument.description or "").strip()
    ]

    assert undocumented == []


# -- protective limits -------------------------------------------------------------------------------


def test_query_at_the_depth_limit_is_accepted(client: TestClient) -> None:
    body = gql(client, nested_dependencies(10))

    assert body == {"data": {"job": None}}


def test_query_deeper_than_the_depth_limit_is_refused(client: TestClient) -> None:
    error = top_level_error(gql(client, nested_dependencies(11)))

    assert "depth" in error["message"]


def test_alias_bomb_is_refused(client: TestClient) -> None:
    query = "{ " + " ".join(f"a{i}: tasks {{ name }}" for i in range(50)) + " }"

    error = top_level_error(gql(client, query))

    assert "aliases" in error["message"]


def test_a_query_with_too_many_tokens_is_refused() -> None:
    query = "{ " + "__typename " * 60 + "}"  # 62 tokens
    with client_with(max_query_tokens=61) as strict:
        error = top_level_error(gql(strict, query))
        assert gql(strict, "{ " + "__typename " * 59 + "}") == {"data": {"__typename": "Query"}}

    assert "more than 61 tokens" in error["message"]


async def _run(schema: GuardedSchema, query: str) -> list[str]:
    result = await schema.execute(query)
    return [error.message for error in result.errors or []]


def test_each_distinct_document_is_parsed_and_validated_once() -> None:
    schema = build_schema(make_settings())
    assert isinstance(schema, GuardedSchema)
    deep = nested_dependencies(11)
    first = asyncio.run(_run(schema, deep))
    again = asyncio.run(_run(schema, deep))
    asyncio.run(_run(schema, "{ __typename }"))

    assert first == again and "depth" in first[0]  # the cached verdict is the same verdict
    cache = schema.documents.cache
    assert (cache.hits, cache.misses) == (1, 2)
    assert asyncio.run(_run(schema, "{ job(")) and len(cache) == 3  # syntax errors are verdicts too


def test_introspection_can_be_disabled() -> None:
    with client_with(introspection=False) as locked:
        body = gql(locked, get_introspection_query())

    assert body.get("errors")
    assert body.get("data") is None
    assert "introspection" in body["errors"][0]["message"].lower()


def test_without_introspection_errors_suggest_no_field_names() -> None:
    with client_with(introspection=False) as locked:
        error = top_level_error(gql(locked, "{ jobz }"))

    assert "Cannot query field 'jobz'" in error["message"]
    assert "Did you mean" not in error["message"]


def test_with_introspection_errors_suggest_field_names(client: TestClient) -> None:
    error = top_level_error(gql(client, "{ jobz }"))

    assert "Did you mean" in error["message"]


# -- GraphiQL ----------------------------------------------------------------------------------------


def test_graphiql_is_served_to_browsers(client: TestClient) -> None:
    response = client.get("/graphql", headers={"Accept": "text/html"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()


def test_graphiql_can_be_switched_off() -> None:
    with client_with(graphiql=False) as plain:
        response = plain.get("/graphql", headers={"Accept": "text/html"})

    assert response.status_code != 200
    assert "graphiql" not in response.text.lower()
