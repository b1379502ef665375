"""The `stats` query over HTTP: the job history for admins, typed errors for everyone else."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from gql_jobs.constants import STATS_MAX_WINDOW
from tests.auth_helpers import Caller, api_keys_setting
from tests.graphql_helpers import client_with, data

pytestmark = pytest.mark.integration

STATS = """
query Stats($window: Int!, $step: Int!, $queue: String, $task: String) {
  stats(window: $window, step: $step, queue: $queue, task: $task) {
    __typename
    ... on Error { message }
    ... on InvalidInputError { field }
    ... on UnauthorizedError { requiredScope }
    ... on JobStats {
      window step queue task
      buckets { start minutes submitted finished failed runTime { count p50 p90 p99 max mean } }
      totals { start minutes submitted finished failed runTime { count p50 } }
    }
  }
}
"""


def test_an_admin_reads_buckets_and_totals(client: TestClient) -> None:
    for _ in range(3):
        data(client, 'mutation { submitJob(input: {task: "echo"}) { __typename } }')

    found = data(client, STATS, window=10, step=5, task="echo")["stats"]

    assert found["__typename"] == "JobStats"
    assert (found["window"], found["step"], found["queue"], found["task"]) == (10, 5, None, "echo")
    assert [b["minutes"] for b in found["buckets"]] == [5, 5]
    starts = [datetime.fromisoformat(b["start"]) for b in found["buckets"]]
    assert (starts[1] - starts[0]).total_seconds() == 300
    assert starts[0] == datetime.fromisoformat(found["totals"]["start"])
    assert found["totals"]["submitted"] == 3
    assert found["totals"]["runTime"] == {"count": 0, "p50": None}  # none ran


def test_the_defaults_are_the_last_hour_by_the_minute(client: TestClient) -> None:
    found = data(client, "{ stats { ... on JobStats { window step buckets { minutes } } } }")["stats"]

    assert (found["window"], found["step"], len(found["buckets"])) == (60, 1, 60)


@pytest.mark.parametrize(
    ("window", "step", "field"), [(STATS_MAX_WINDOW + 1, 1, "window"), (0, 1, "window"), (60, 7, "step")]
)
def test_a_window_out_of_range_is_an_invalid_input_error(
    client: TestClient, window: int, step: int, field: str
) -> None:
    refused = data(client, STATS, window=window, step=step)["stats"]

    assert refused["__typename"] == "InvalidInputError"
    assert refused["field"] == field
    assert refused["message"].startswith(f"{field}: must ")


def test_other_keys_are_told_the_history_is_for_admins() -> None:
    with client_with(api_keys=api_keys_setting()) as keyed:
        tenant = Caller(keyed, "key-alice").gql(STATS, window=60, step=1)["data"]["stats"]
        nobody = Caller(keyed, None).gql(STATS, window=60, step=1)["data"]["stats"]
        admin = Caller(keyed, "key-root").gql(STATS, window=60, step=1)["data"]["stats"]

    assert tenant["__typename"] == "UnauthorizedError"
    assert tenant["requiredScope"] == "admin"
    assert "only admins" in tenant["message"]
    assert nobody == {"__typename": "UnauthorizedError", "message": nobody["message"], "requiredScope": None}
    assert admin["__typename"] == "JobStats"


def test_redis_down_is_a_service_unavailable_error() -> None:
    with client_with(redis_url="redis://127.0.0.1:1/0") as down:
        refused = data(down, STATS, window=60, step=1)["stats"]

    assert refused["__typename"] == "ServiceUnavailableError"
