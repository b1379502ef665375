"""Operating jobs over GraphQL (issue #17): filters, bulk actions, attempts, queue and worker control.

Real app, real Redis, real RQ workers (burst in-process, or `gql-jobs worker` subprocesses)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.graphql_helpers import data, submit

pytestmark = pytest.mark.integration

Drain = Callable[..., None]

BULK = """
mutation Bulk($filter: JobFilter!, $after: String) {
  cancelJobs(filter: $filter, after: $after) { ...Outcome }
}
fragment Outcome on BulkResult {
  __typename
  ... on BulkActionResult { matched acted actedIds truncated cursor skipped { id reason status message } }
  ... on Error { message }
  ... on InvalidInputError { field }
}
"""

LIST = """
query List($filter: JobFilter, $order: JobOrder!, $first: Int, $after: String) {
  jobs(filter: $filter, order: $order, first: $first, after: $after) {
    edges { node { id status } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


def _ids(client: TestClient, **variables: Any) -> list[str]:
    page = data(client, LIST, **variables)["jobs"]
    return [edge["node"]["id"] for edge in page["edges"]]


def test_cancel_jobs_by_filter_then_by_ids_and_list_them_oldest_first(
    client: TestClient, drain: Drain
) -> None:
    done = submit(client, tags=["ops"])["id"]
    drain()
    waiting = [submit(client, tags=["ops"])["id"] for _ in range(3)]

    result = data(client, BULK, filter={"tags": ["ops", "other"]})["cancelJobs"]
    assert result["__typename"] == "BulkActionResult"
    assert (result["matched"], result["acted"], result["truncated"], result["skipped"]) == (3, 3, False, [])
    assert sorted(result["actedIds"]) == sorted(waiting)

    again = data(client, BULK, filter={"ids": [done, waiting[0]]})["cancelJobs"]
    assert again["acted"] == 0
    assert [(s["id"], s["reason"], s["status"]) for s in again["skipped"]] == [
        (done, "INVALID_STATE", "FINISHED"),
        (waiting[0], "INVALID_STATE", "CANCELED"),
    ]
    assert _ids(client, filter={"status": "CANCELED"}, order="OLDEST_FIRST") == waiting


def test_a_bulk_action_over_its_bound_is_an_invalid_input_error(client: TestClient) -> None:
    too_many = [f"JOB-{i}" for i in range(1001)]
    result = data(client, BULK, filter={"ids": too_many})["cancelJobs"]
    assert (result["__typename"], result["field"]) == ("InvalidInputError", "ids")
