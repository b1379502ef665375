"""Relay's global object identification (`graphql.node`): `Node`, `node(id:)` and `nodes(ids:)`,
with `job(id:)`'s ownership rules, and the schema shape Relay's compiler requires."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from graphql import GraphQLInterfaceType, GraphQLNonNull, GraphQLObjectType, build_schema

from gql_jobs.app import create_app
from gql_jobs.graphql.schema import sdl
from tests.auth_helpers import Caller, api_keys_setting
from tests.conftest import make_settings
from tests.graphql_helpers import client_with, data, gql, submit

NODE = "query ($id: ID!) { node(id: $id) { __typename id ... on Job { status task } } }"
NODES = "query ($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }"


def test_the_schema_has_what_relays_compiler_requires() -> None:
    schema = build_schema(sdl())
    node = schema.get_type("Node")
    assert isinstance(node, GraphQLInterfaceType)
    assert str(node.fields["id"].type) == "ID!"
    query = schema.query_type
    assert query is not None
    field = query.fields["node"]
    assert field.type is node  # nullable `Node`
    assert isinstance(field.args["id"].type, GraphQLNonNull)
    assert str(field.args["id"].type) == "ID!"
    job = schema.get_type("Job")
    assert isinstance(job, GraphQLObjectType)
    assert node in job.interfaces


def test_node_refetches_a_job_by_its_own_id(client: TestClient) -> None:
    job = submit(client, "echo", payload={"x": 1})
    found = data(client, NODE, id=job["id"])["node"]
    assert found == {"__typename": "Job", "id": job["id"], "status": "QUEUED", "task": "echo"}
    assert data(client, "query ($id: ID!) { job(id: $id) { id } }", id=job["id"])["job"]["id"] == found["id"]


def test_node_is_null_for_a_missing_or_malformed_id(client: TestClient) -> None:
    assert data(client, NODE, id="JOB-00000000-0000-4000-8000-000000000000")["node"] is None
    assert data(client, NODE, id="not a job id at all")["node"] is None


def test_nodes_answers_in_order_with_nulls_in_place(client: TestClient) -> None:
    first, second = submit(client)["id"], submit(client)["id"]
    nodes = data(client, NODES, ids=[second, "JOB-missing", first])["nodes"]
    assert nodes == [{"__typename": "Job", "id": second}, None, {"__typename": "Job", "id": first}]


def test_nodes_refuses_more_ids_than_a_page(redis_client: redis.Redis) -> None:
    with client_with(max_page_size=3) as client:
        body = gql(client, NODES, ids=["JOB-a", "JOB-b", "JOB-c", "JOB-d"])
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "at most 3 ids" in body["errors"][0]["message"]


def test_nodes_costs_each_id_it_may_read(redis_client: redis.Redis) -> None:
    """A variable list counts at the maximum page size; a literal list at its length."""
    selection = "id " * 20
    with client_with(max_page_size=100, max_query_cost=1000) as client:
        by_variable = gql(client, f"query ($ids: [ID!]!) {{ nodes(ids: $ids) {{ {selection} }} }}", ids=[])
        literal = gql(client, f'{{ nodes(ids: ["JOB-a", "JOB-b"]) {{ {selection} }} }}')
    assert by_variable["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert by_variable["errors"][0]["extensions"]["cost"] == 100 * 21
    assert literal == {"data": {"nodes": [None, None]}}


@pytest.fixture
def keyed(redis_client: redis.Redis) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(api_keys=api_keys_setting()))) as client:
        yield client


def test_another_tenants_job_is_null_through_node_and_nodes(keyed: TestClient) -> None:
    alice, bob, root = Caller(keyed, "key-alice"), Caller(keyed, "key-bob"), Caller(keyed, "key-root")
    job_id = alice.submit()
    assert alice.gql(NODE, id=job_id)["data"]["node"]["id"] == job_id
    assert bob.gql(NODE, id=job_id)["data"]["node"] is None
    assert bob.gql(NODES, ids=[job_id])["data"]["nodes"] == [None]
    assert root.gql(NODE, id=job_id)["data"]["node"]["id"] == job_id  # an admin reads every job


def test_without_a_key_node_is_refused_as_job_is(keyed: TestClient) -> None:
    body = Caller(keyed, None).gql(NODE, id="JOB-x")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
