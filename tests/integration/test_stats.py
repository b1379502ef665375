"""The job history end to end: jobs submitted over GraphQL, run by a real `gql-jobs worker --burst`
(RQ's fork worker: each job in a work horse), read back with the `stats` query."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import redis
from fastapi.testclient import TestClient

from gql_jobs.constants import STATS_TTL
from tests.conftest import run_cli, subprocess_env
from tests.graphql_helpers import data

pytestmark = pytest.mark.integration

SUBMIT_MANY = """mutation ($inputs: [SubmitJobInput!]!) { submitJobs(inputs: $inputs) { __typename } }"""
STATS = """query ($task: String) {
  stats(window: 5, step: 1, task: $task) {
    ... on JobStats {
      buckets { start submitted finished failed runTime { count } }
      totals { submitted finished failed runTime { count p50 p90 p99 max mean } }
    }
  }
}"""
ECHOES, SLEEPS, FAILURES = 8, 2, 3
SLEEP_SECONDS = 0.3


def minute_start(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp // 60 * 60, UTC)


def test_a_real_workers_jobs_show_in_the_history(client: TestClient, redis_client: redis.Redis) -> None:
    inputs = (
        [{"task": "echo"}] * ECHOES
        + [{"task": "sleep", "payload": {"seconds": SLEEP_SECONDS}}] * SLEEPS
        + [{"task": "fail"}] * FAILURES
    )
    outcomes = data(client, SUBMIT_MANY, inputs=inputs)["submitJobs"]
    assert {o["__typename"] for o in outcomes} == {"SubmitJobSuccess"}

    worker = run_cli("worker", "--burst", env=subprocess_env())
    assert worker.returncode == 0, worker.stdout.decode() + worker.stderr.decode()

    before = time.time()
    found = data(client, STATS)["stats"]
    after = time.time()

    totals = found["totals"]
    finished = ECHOES + SLEEPS
    assert (totals["submitted"], totals["finished"], totals["failed"]) == (len(inputs), finished, FAILURES)
    run_time = totals["runTime"]
    assert run_time["count"] == finished
    assert run_time["p50"] <= run_time["p90"] <= run_time["p99"] <= run_time["max"]
    assert run_time["p99"] >= SLEEP_SECONDS  # ranks 9 and 10 of 10 are the sleeps: bounds never undershoot
    assert SLEEP_SECONDS * SLEEPS / finished <= run_time["mean"]

    # The buckets end with the server's current minute; the jobs are in it (or the one before,
    # should the minute have turned while they ran), and every bucket adds up to the totals.
    buckets = found["buckets"]
    assert datetime.fromisoformat(buckets[-1]["start"]) in {minute_start(before), minute_start(after)}
    for field in ("submitted", "finished", "failed"):
        assert sum(bucket[field] for bucket in buckets) == totals[field]
    assert sum(bucket["runTime"]["count"] for bucket in buckets) == finished
    busy = [bucket for bucket in buckets if bucket["submitted"] or bucket["finished"] or bucket["failed"]]
    assert busy and busy[-1] in buckets[-2:]

    sleeps = data(client, STATS, task="sleep")["stats"]["totals"]
    assert (sleeps["finished"], sleeps["runTime"]["count"]) == (SLEEPS, SLEEPS)
    assert sleeps["runTime"]["p50"] >= SLEEP_SECONDS
    for key in redis_client.scan_iter("gql_jobs:stats:*"):
        assert 0 < redis_client.ttl(key) <= STATS_TTL
