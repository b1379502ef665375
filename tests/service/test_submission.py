"""Answers that tell the truth (issue #13): crafted cursors, payloads JSON cannot carry, per-item
batch outcomes, submissions whose fate Redis left unknown, and limits no path may skip."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from gql_jobs import jsonvalues
from gql_jobs.app import create_app
from gql_jobs.auth import ANONYMOUS
from gql_jobs.constants import META_PAYLOAD
from gql_jobs.domain import SubmitRequest
from gql_jobs.errors import InvalidPayloadError, PayloadTooLargeError
from gql_jobs.service.jobs import JobService
from gql_jobs.service.submission import prepare
from gql_jobs.settings import SettingsError, load_settings
from gql_jobs.store import listing
from gql_jobs.store.writes import Enqueuer
from tests.auth_helpers import Caller, api_keys_setting
from tests.conftest import make_settings, on_app
from tests.graphql_helpers import client_with, gql, submit, top_level_error

pytestmark = pytest.mark.integration

PAGE = """query ($first: Int, $after: String, $last: Int, $before: String) {
  jobs(first: $first, after: $after, last: $last, before: $before) { edges { cursor node { id } } }
}"""


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# -- crafted cursors ---------------------------------------------------------------------------------

CRAFTED_CURSORS = {
    "huge-ms": b64("99999999999999999999999-1"),
    "huge-seq": b64("5-99999999999999999999"),
    "over-64-bits": b64("18446744073709551616-0"),
    "zero": b64("0-0"),
    "largest-id": b64("18446744073709551615-18446744073709551615"),
    "negative": b64("-1-5"),
    "no-seq": b64("1-"),
    "leading-zero": b64("007-1"),
    "plus-sign": b64("+1-2"),
    "padded": b64("1-2") + "==",
    "not-base64": "%%%not base64%%%",
    "one-kilobyte": "A" * 1024,
}


@pytest.mark.parametrize("direction", ["after", "before"])
@pytest.mark.parametrize("cursor", CRAFTED_CURSORS.values(), ids=CRAFTED_CURSORS.keys())
def test_a_crafted_cursor_is_a_typed_bad_user_input_error(
    client: TestClient, direction: str, cursor: str
) -> None:
    submit(client)
    size = {"first": 2} if direction == "after" else {"last": 2}

    error = top_level_error(gql(client, PAGE, **size, **{direction: cursor}))

    assert (error["message"], error["extensions"]["code"]) == ("Invalid cursor", "BAD_USER_INPUT")


@pytest.mark.parametrize(
    "position", [listing.Position(0, 1), listing.Position(2**64 - 1, 2**64 - 2)], ids=["first", "last"]
)
def test_the_extreme_positions_redis_can_assign_are_valid_cursors(
    client: TestClient, position: listing.Position
) -> None:
    """The bounds of what `decode` accepts are IDs Redis takes in both exclusive ranges."""
    submit(client)
    for size, direction in [("first", "after"), ("last", "before")]:
        body = gql(client, PAGE, **{size: 2, direction: position.encode()})
        assert "errors" not in body, body
        edges: list[dict[str, Any]] = body["data"]["jobs"]["edges"]
        assert len(edges) <= 1


# -- payloads JSON cannot carry ------------------------------------------------------------------

SUBMIT_PAYLOAD = """mutation ($task: String!, $payload: JSON) {
  submitJob(input: {task: $task, payload: $payload}) {
    __typename
    ... on InvalidPayloadError { fieldErrors { path code message } }
    ... on SubmitJobSuccess { job { id } }
  }
}"""


def strict_json(text: str) -> Any:
    """Parse as a strict JSON parser would (Python's own accepts NaN and Infinity)."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def nested(depth: int) -> dict[str, Any]:
    """A payload `depth` levels deep (the payload itself is level 1)."""
    payload: dict[str, Any] = {}
    for _ in range(depth - 1):
        payload = {"a": payload}
    return payload


def post_raw(client: TestClient, path: str, body: str) -> Any:
    return client.post(path, content=body.encode(), headers={"content-type": "application/json"})


NON_FINITE = {"huge": "1e400", "negative-huge": "-1e400", "nan": "NaN", "infinity": "Infinity"}


@pytest.mark.parametrize("literal", NON_FINITE.values(), ids=NON_FINITE.keys())
def test_rest_refuses_a_non_finite_number_with_its_path_and_stores_nothing(
    client: TestClient, redis_client: redis.Redis, literal: str
) -> None:
    body = '{"task":"echo","payload":{"items":[1,{"x":@}]}}'.replace("@", literal)
    response = post_raw(client, "/submit-job", body)

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "payload", "items", 1, "x"], "finite_number")
    assert redis_client.keys("*") == []


@pytest.mark.parametrize("literal", NON_FINITE.values(), ids=NON_FINITE.keys())
def test_graphql_refuses_a_non_finite_number_in_variables(
    client: TestClient, redis_client: redis.Redis, literal: str
) -> None:
    body = json.dumps({"query": SUBMIT_PAYLOAD, "variables": {"task": "echo", "payload": "@"}})
    response = post_raw(client, "/graphql", body.replace('"@"', f'{{"x":[{literal}]}}'))

    result = strict_json(response.text)["data"]["submitJob"]
    assert result["__typename"] == "InvalidPayloadError"
    assert result["fieldErrors"][0]["path"] == ["x", "0"]
    assert result["fieldErrors"][0]["code"] == "finite_number"
    assert redis_client.keys("*") == []


def test_graphql_refuses_a_non_finite_inline_literal(client: TestClient) -> None:
    mutation = 'mutation { submitJob(input: {task: "echo", payload: {x: 1e400}}) { __typename } }'
    assert gql(client, mutation)["data"]["submitJob"]["__typename"] == "InvalidPayloadError"


def test_a_number_an_input_model_makes_non_finite_is_refused_too(client: TestClient) -> None:
    """pydantic reads the string "inf" into a float field as infinity: the stored payload is checked."""
    result = gql(client, SUBMIT_PAYLOAD, task="scale", payload={"factor": "inf"})["data"]["submitJob"]
    assert result["__typename"] == "InvalidPayloadError"
    assert result["fieldErrors"][0]["path"] == ["factor"]


def test_a_lone_surrogate_is_refused_on_both_transports(
    client: TestClient, redis_client: redis.Redis
) -> None:
    response = post_raw(client, "/submit-job", '{"task":"echo","payload":{"note":"\\ud800"}}')
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "payload", "note"]
    key = post_raw(client, "/submit-job", '{"task":"echo","payload":{"\\udfff":1}}')
    assert key.status_code == 422, key.text

    body = json.dumps({"query": SUBMIT_PAYLOAD, "variables": {"task": "echo", "payload": {"a": ["\ud800"]}}})
    result = strict_json(post_raw(client, "/graphql", body).text)["data"]["submitJob"]
    assert (result["__typename"], result["fieldErrors"][0]["path"]) == ("InvalidPayloadError", ["a", "0"])
    described_body = json.dumps({"query": SUBMIT_DESCRIBED, "variables": {"description": "\ud800"}})
    described = strict_json(post_raw(client, "/graphql", described_body).text)["data"]["submitJob"]
    assert described == {"__typename": "InvalidInputError", "field": "description"}
    assert redis_client.keys("*") == []


SUBMIT_DESCRIBED = """mutation ($description: String) {
  submitJob(input: {task: "echo", description: $description}) {
    __typename ... on InvalidInputError { field }
  }
}"""


def test_the_issues_600_deep_payload_is_refused_on_both_transports(
    client: TestClient, redis_client: redis.Redis
) -> None:
    rest = client.post("/submit-job", json={"task": "echo", "payload": nested(600)})
    assert rest.status_code == 422, rest.text
    assert rest.json()["detail"][0]["type"] == "too_deep"
    assert len(rest.json()["detail"][0]["loc"]) == 2 + 32  # body, payload, then the path to level 33

    # GraphQL refuses a 600-deep request body before it runs (JSON nesting is bounded for every
    # request); a payload under that bound but past the payload's own limit is refused by the service.
    body = {"query": SUBMIT_PAYLOAD, "variables": {"task": "echo", "payload": nested(600)}}
    refused = client.post("/graphql", json=body)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"]["code"] == "JSON_TOO_DEEP"
    result = gql(client, SUBMIT_PAYLOAD, task="echo", payload=nested(100))["data"]["submitJob"]
    assert result["__typename"] == "InvalidPayloadError"
    assert result["fieldErrors"][0]["code"] == "too_deep"
    assert redis_client.keys("*") == []


def test_the_depth_limit_is_a_setting_and_its_bound_is_exact(redis_client: redis.Redis) -> None:
    with client_with(max_payload_depth=5) as limited:
        assert limited.post("/submit-job", json={"task": "echo", "payload": nested(5)}).status_code == 200
        assert limited.post("/submit-job", json={"task": "echo", "payload": nested(6)}).status_code == 422
        deep_list = {"a": [[[[1]]]]}  # arrays count as levels too: 5 deep
        assert limited.post("/submit-job", json={"task": "echo", "payload": deep_list}).status_code == 200
        too_deep = {"a": [[[[[1]]]]]}
        assert limited.post("/submit-job", json={"task": "echo", "payload": too_deep}).status_code == 422


@pytest.mark.anyio
async def test_a_payload_too_deep_for_json_itself_is_refused_not_crashed(
    service: JobService, redis_client: redis.Redis
) -> None:
    """The service's own callers (not only JSON parsers) can hand it a payload deeper than `json`
    can encode: refused as too deep, with no RecursionError escaping."""
    with pytest.raises(InvalidPayloadError, match="nested too deeply"):
        await service.submit(ANONYMOUS, SubmitRequest("echo", nested(100_000)))
    assert redis_client.keys("*") == []


def test_the_depth_setting_must_be_positive(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("GQL_JOBS_MAX_PAYLOAD_DEPTH", "0")
    with pytest.raises(SettingsError, match="GQL_JOBS_MAX_PAYLOAD_DEPTH"):
        load_settings()


def store_as_an_older_version_would(client: TestClient, service: JobService, payload: dict[str, Any]) -> str:
    """Write a job holding values `check` now refuses, past the check, as earlier versions did."""
    checked = prepare(SubmitRequest("echo", {}), service.registry, service.settings, owner=None)
    job = dataclasses.replace(checked, payload=payload, meta={**checked.meta, META_PAYLOAD: payload})
    enqueuer = Enqueuer(service.connection, service.async_connection, service.settings)
    on_app(client, enqueuer.enqueue, [job])
    return job.job_id


LISTING = "{ jobs(first: 10) { edges { node { id payload meta result } } } }"


def test_a_stored_non_finite_number_reads_as_null_on_both_transports(
    client: TestClient, service: JobService, drain: Callable[..., None]
) -> None:
    stored = {"nan": math.nan, "big": math.inf, "small": -math.inf, "note": "\ud800", "ok": 1.5}
    job_id = store_as_an_older_version_would(client, service, stored)
    drain()  # echo returns the payload: the result holds them too
    expected = {"nan": None, "big": None, "small": None, "note": "\ud800", "ok": 1.5}

    status = client.get(f"/job-status/{job_id}")
    assert status.status_code == 200, status.text
    body = strict_json(status.text)
    assert (body["status"], body["meta"]["payload"], body["result"]) == ("finished", expected, expected)

    listed = strict_json(client.post("/graphql", json={"query": LISTING}).text)["data"]["jobs"]
    one = f'{{ job(id: "{job_id}") {{ id payload meta result }} }}'
    for node in [
        listed["edges"][0]["node"],
        strict_json(client.post("/graphql", json={"query": one}).text)["data"]["job"],
    ]:
        assert (node["payload"], node["meta"]["payload"], node["result"]) == (expected, expected, expected)


@pytest.mark.parametrize(
    "body",
    ['{"task":"echo","payload":NaN}', '{"task":1e400}', '{"task":"echo","payload":"\\ud800"}'],
    ids=["nan-payload", "infinite-task", "surrogate-payload"],
)
def test_fastapis_own_422_quoting_such_input_is_valid_json(client: TestClient, body: str) -> None:
    response = post_raw(client, "/submit-job", body)
    assert response.status_code == 422, response.text
    assert strict_json(response.text)["detail"][0]["loc"][0] == "body"


def test_a_clean_payload_costs_no_walk_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-value walk (the slow part) runs only once C-speed checks know something is wrong."""
    walks: list[object] = []
    monkeypatch.setattr(jsonvalues, "_locate", lambda *args: walks.append(args))
    clean = {"items": [{"i": i, "price": i / 3, "note": "ünïcödé"} for i in range(1500)]}
    jsonvalues.check(clean, max_depth=32, max_bytes=1 << 20)
    assert walks == []
    jsonvalues.check({"x": [math.nan]}, max_depth=32, max_bytes=1 << 20)
    assert len(walks) == 1


def test_the_size_limit_is_checked_before_any_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    walks: list[object] = []
    monkeypatch.setattr(jsonvalues, "_locate", lambda *args: walks.append(args))
    with pytest.raises(PayloadTooLargeError):
        jsonvalues.check({"x": [math.nan] * 100_000}, max_depth=32, max_bytes=65536)
    assert walks == []


def test_the_words_nan_and_infinity_in_text_are_fine(client: TestClient) -> None:
    payload = {"note": "NaN, Infinity and -Infinity are words here", "NaN": 1}
    response = client.post("/submit-job", json={"task": "echo", "payload": payload})
    assert response.status_code == 200, response.text


# -- a batch: each item its own outcome ------------------------------------------------------------

SUBMIT_MANY = """mutation ($inputs: [SubmitJobInput!]!) {
  submitJobs(inputs: $inputs) {
    __typename
    ... on SubmitJobSuccess { deduplicated job { id } }
    ... on IdempotencyConflictError { idempotencyKey }
  }
}"""


def stored_jobs(redis_client: redis.Redis) -> set[str]:
    """Ids of the jobs Redis holds (a job hash has `data`; a bare owner field is no job)."""
    return {
        key.decode().removeprefix("rq:job:")
        for key in redis_client.scan_iter("rq:job:*")
        if redis_client.hexists(key, "data")
    }


def test_one_items_key_conflict_fails_that_item_alone(client: TestClient, redis_client: redis.Redis) -> None:
    """The issue's batch: 3 of 4 were stored and ran, yet all 4 were answered the conflict."""
    inputs = [
        {"task": "echo", "payload": {"n": 1}, "idempotencyKey": "k1"},
        {"task": "echo", "payload": {"n": 2}, "idempotencyKey": "k2"},
        {"task": "echo", "payload": {"n": 3}, "idempotencyKey": "k3"},
        {"task": "echo", "payload": {"n": 4}, "idempotencyKey": "k1"},  # k1 again, another payload
    ]
    first = gql(client, SUBMIT_MANY, inputs=inputs)["data"]["submitJobs"]

    assert [r["__typename"] for r in first] == ["SubmitJobSuccess"] * 3 + ["IdempotencyConflictError"]
    assert first[3]["idempotencyKey"] == "k1"
    created = {r["job"]["id"] for r in first[:3]}
    assert stored_jobs(redis_client) == created
    assert redis_client.llen("rq:queue:default") == 3

    again = gql(client, SUBMIT_MANY, inputs=inputs)["data"]["submitJobs"]  # the client retries it all

    assert [r["__typename"] for r in again] == ["SubmitJobSuccess"] * 3 + ["IdempotencyConflictError"]
    assert [(r["job"]["id"], r["deduplicated"]) for r in again[:3]] == [
        (r["job"]["id"], True) for r in first[:3]
    ]
    assert stored_jobs(redis_client) == created
    assert redis_client.llen("rq:queue:default") == 3


def test_plain_jobs_of_a_batch_are_reported_stored_beside_a_conflict(
    client: TestClient, redis_client: redis.Redis
) -> None:
    submit(client, payload={"n": 0}, idempotencyKey="taken")
    inputs = [
        {"task": "echo", "payload": {"n": 1}},
        {"task": "echo", "payload": {"n": 2}, "idempotencyKey": "taken"},
        {"task": "echo", "payload": {"n": 3}},
        {"task": "echo", "payload": {"n": 4}, "idempotencyKey": "free"},
    ]
    results = gql(client, SUBMIT_MANY, inputs=inputs)["data"]["submitJobs"]

    names = [r["__typename"] for r in results]
    assert names == ["SubmitJobSuccess", "IdempotencyConflictError", "SubmitJobSuccess", "SubmitJobSuccess"]
    assert len(stored_jobs(redis_client)) == 1 + 3


# -- limits no path may skip -------------------------------------------------------------------------

REQUEUE = """mutation ($id: ID!) {
  requeueJob(id: $id) {
    __typename
    ... on RequeueJobSuccess { job { status } }
    ... on RateLimitedError { retryAfterSeconds }
  }
}"""


def test_requeue_takes_from_the_callers_rate_limit(
    redis_client: redis.Redis, drain: Callable[..., None]
) -> None:
    """The issue: one failing job requeued in a loop ran 182 times in 10 s against 5/s. With a
    burst of 2 (and a refill too slow to matter here), the submission and one requeue pass."""
    settings = make_settings(api_keys=api_keys_setting(), rate_limit=0.001, rate_limit_burst=2)
    with TestClient(create_app(settings)) as client:
        alice, bob = Caller(client, "key-alice"), Caller(client, "key-bob")
        job_id = alice.submit("fail")
        drain()
        assert alice.gql(REQUEUE, id=job_id)["data"]["requeueJob"]["__typename"] == "RequeueJobSuccess"
        drain()

        refused = [alice.gql(REQUEUE, id=job_id)["data"]["requeueJob"] for _ in range(5)]

        assert [r["__typename"] for r in refused] == ["RateLimitedError"] * 5
        assert all(r["retryAfterSeconds"] > 0 for r in refused)
        assert alice.gql(JOB_STATUS, id=job_id)["data"]["job"]["status"] == "FAILED"
        assert redis_client.llen("rq:queue:default") == 0
        assert bob.submit() is not None  # another principal's bucket is its own


def test_a_requeue_refused_for_its_state_costs_no_token(redis_client: redis.Redis) -> None:
    settings = make_settings(api_keys=api_keys_setting(), rate_limit=0.001, rate_limit_burst=2)
    with TestClient(create_app(settings)) as client:
        alice = Caller(client, "key-alice")
        job_id = alice.submit()  # queued: not requeueable
        for _ in range(3):
            answer = alice.gql(REQUEUE, id=job_id)["data"]["requeueJob"]
            assert answer["__typename"] == "InvalidJobStateError"
        assert alice.submit() is not None  # the second token is still there


JOB_STATUS = "query ($id: ID!) { job(id: $id) { status } }"
