"""API keys and tenant isolation, on both transports, against a real Redis."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from gql_jobs.app import create_app
from gql_jobs.auth import KeyEntry, Scope, hash_key, new_key
from gql_jobs.constants import INDEX_BY_OWNER, OWNER_FIELD
from tests.auth_helpers import SUBMIT, Caller, api_keys_setting, bearer
from tests.conftest import make_settings, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def client(redis_client: redis.Redis) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(api_keys=api_keys_setting(), poll_interval=0.2))) as test_client:
        yield test_client


@pytest.fixture
def alice(client: TestClient) -> Caller:
    return Caller(client, "key-alice")


@pytest.fixture
def bob(client: TestClient) -> Caller:
    return Caller(client, "key-bob")


@pytest.fixture
def root(client: TestClient) -> Caller:
    return Caller(client, "key-root")


# -- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, bearer("wrong-key"), {"Authorization": "Basic a2V5LWFsaWNl"}])
def test_rest_without_a_valid_key_is_401_with_a_json_body(
    client: TestClient, headers: dict[str, str]
) -> None:
    submit = client.post("/submit-job", json={"task": "echo", "payload": {}}, headers=headers)
    status = client.get("/job-status/JOB-x", headers=headers)
    for response in (submit, status):
        assert response.status_code == 401
        assert "API key" in response.json()["detail"]
        assert response.headers["www-authenticate"] == "Bearer"


def test_x_api_key_header_is_accepted(client: TestClient) -> None:
    response = client.post(
        "/submit-job", json={"task": "echo", "payload": {}}, headers={"X-API-Key": "key-alice"}
    )
    assert response.status_code == 200


def test_graphql_mutation_without_a_key_is_an_unauthorized_member(client: TestClient) -> None:
    result = Caller(client, None).gql(SUBMIT, input={"task": "echo"})["data"]["submitJob"]
    assert result["__typename"] == "UnauthorizedError"
    assert result["requiredScope"] is None


def test_graphql_query_without_a_key_is_a_clear_top_level_error(client: TestClient) -> None:
    body = Caller(client, "wrong").gql('{ job(id: "JOB-x") { id } }')
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "API key" in body["errors"][0]["message"]


def test_a_key_without_the_scope_is_refused_on_both_transports(client: TestClient) -> None:
    reader = Caller(client, "key-alice-reader")
    result = reader.gql(SUBMIT, input={"task": "echo"})["data"]["submitJob"]
    assert (result["__typename"], result["requiredScope"]) == ("UnauthorizedError", "submit")
    response = client.post(
        "/submit-job", json={"task": "echo", "payload": {}}, headers=bearer("key-alice-reader")
    )
    assert response.status_code == 403
    submitter = Caller(client, "key-alice-submitter")
    assert submitter.gql("{ jobs { edges { cursor } } }")["errors"][0]["extensions"]["code"] == "FORBIDDEN"


def test_created_keys_work_as_configured(redis_client: redis.Redis) -> None:
    key, line = new_key("carol", [Scope.SUBMIT, Scope.READ])
    entries = {digest: KeyEntry.model_validate(entry) for digest, entry in json.loads(line).items()}
    assert list(entries) == [hash_key(key)]
    with TestClient(create_app(make_settings(api_keys=entries))) as client:
        assert client.post("/submit-job", json={"task": "echo"}, headers=bearer(key)).status_code == 200


@pytest.mark.parametrize("name", ["anonymous", "system"])
def test_reserved_principal_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        KeyEntry.model_validate({"principal": name, "scopes": ["read"]})


def test_a_tenants_jobs_carry_its_name_and_an_open_apis_jobs_no_owner(
    alice: Caller, redis_client: redis.Redis
) -> None:
    job_id = alice.submit()
    assert redis_client.hget(f"rq:job:{job_id}", OWNER_FIELD) == b"alice"
    assert redis_client.xlen(INDEX_BY_OWNER + "alice") == 1

    with TestClient(create_app(make_settings())) as open_api:
        anonymous = open_api.post("/submit-job", json={"task": "echo"}).json()["job_id"]
    assert not redis_client.hexists(f"rq:job:{anonymous}", OWNER_FIELD)
    assert not redis_client.keys(INDEX_BY_OWNER + "anonymous*")
    assert graphql_job(alice, anonymous) is None  # should keys come later: unowned jobs are the admins'


# -- isolation ------------------------------------------------------------------------------------

JOB = "query ($id: ID!) { job(id: $id) { id error { traceback } } }"
JOBS = "{ jobs(first: 50) { totalCount edges { node { id } } } }"
MANAGE = "mutation ($id: ID!) {{ {op}(id: $id) {{ __typename }} }}"


def rest_status(caller: Caller, job_id: str) -> int:
    return int(caller.client.get(f"/job-status/{job_id}", headers=bearer(caller.key)).status_code)


def graphql_job(caller: Caller, job_id: str) -> object:
    return caller.gql(JOB, id=job_id)["data"]["job"]


def listed(caller: Caller) -> set[str]:
    return {edge["node"]["id"] for edge in caller.gql(JOBS)["data"]["jobs"]["edges"]}


def manage(op: str) -> Callable[[Caller, str], str]:
    def run(caller: Caller, job_id: str) -> str:
        return str(caller.gql(MANAGE.format(op=op), id=job_id)["data"][op]["__typename"])

    return run


READS: dict[str, tuple[Callable[[Caller, str], object], object]] = {
    "REST job-status": (rest_status, 404),
    "GraphQL job": (graphql_job, None),
}
MANAGEMENT = ["cancelJob", "requeueJob", "deleteJob"]


@pytest.mark.parametrize("operation", list(READS))
def test_another_tenants_job_reads_as_not_found(alice: Caller, bob: Caller, operation: str) -> None:
    job_id = alice.submit()
    read, not_found = READS[operation]
    assert read(bob, job_id) == not_found
    assert read(alice, job_id) != not_found


@pytest.mark.parametrize("operation", MANAGEMENT)
def test_another_tenants_job_cannot_be_managed(alice: Caller, bob: Caller, operation: str) -> None:
    job_id = alice.submit()
    assert manage(operation)(bob, job_id) == "JobNotFoundError"
    assert graphql_job(alice, job_id) is not None  # untouched


@pytest.mark.parametrize("operation", MANAGEMENT)
def test_an_admin_reaches_every_tenants_jobs(alice: Caller, root: Caller, operation: str) -> None:
    job_id = alice.submit()
    assert rest_status(root, job_id) == 200
    assert graphql_job(root, job_id) is not None
    expected = {
        "cancelJob": "CancelJobSuccess",
        "requeueJob": "InvalidJobStateError",
        "deleteJob": "DeleteJobSuccess",
    }
    assert manage(operation)(root, job_id) == expected[operation]


def test_listing_shows_only_ones_own_jobs(alice: Caller, bob: Caller, root: Caller) -> None:
    mine = {alice.submit() for _ in range(3)}
    theirs = {bob.submit() for _ in range(2)}
    assert listed(alice) == mine
    assert listed(bob) == theirs
    assert listed(root) == mine | theirs
    assert alice.gql(JOBS)["data"]["jobs"]["totalCount"] == 3


def test_not_found_is_the_same_answer_as_for_a_job_that_never_existed(alice: Caller, bob: Caller) -> None:
    job_id = alice.submit()
    stolen = bob.client.get(f"/job-status/{job_id}", headers=bearer(bob.key))
    absent = bob.client.get("/job-status/JOB-00000000-0000-4000-8000-000000000000", headers=bearer(bob.key))
    assert (stolen.status_code, stolen.json()) == (absent.status_code, absent.json())


def test_tracebacks_reach_only_the_owner_and_admins(
    alice: Caller, bob: Caller, root: Caller, drain: Callable[..., None]
) -> None:
    job_id = alice.submit("fail", {"message": "secret detail"})
    drain()
    assert "secret detail" in json.dumps(graphql_job(alice, job_id))
    assert "secret detail" in json.dumps(graphql_job(root, job_id))
    assert graphql_job(bob, job_id) is None
    assert rest_status(bob, job_id) == 404


def test_depending_on_another_tenants_job_is_not_found(alice: Caller, bob: Caller) -> None:
    job_id = alice.submit()
    result = bob.gql(SUBMIT, input={"task": "echo", "dependsOn": [job_id]})["data"]["submitJob"]
    assert result["__typename"] == "JobNotFoundError"


QUEUES = "{ queues { name queued started failed counts { status count } } }"
WORKERS = (
    "{ workers { name state queues currentJobId successfulJobCount failedJobCount pid hostname birth } }"
)


def queues_of(caller: Caller) -> dict[str, dict[str, Any]]:
    return {q["name"]: q for q in caller.gql(QUEUES)["data"]["queues"]}


def workers_of(caller: Caller) -> list[dict[str, Any]]:
    workers: list[dict[str, Any]] = caller.gql(WORKERS)["data"]["workers"]
    return sorted(workers, key=lambda w: w["birth"])


def test_queues_show_a_tenant_only_its_own_queues_and_no_counts(
    alice: Caller, bob: Caller, root: Caller
) -> None:
    alice.submit(queue="alice-q")
    alice.submit(queue="shared")
    bob.submit(queue="bob-q")
    bob.submit(queue="shared")

    assert set(queues_of(alice)) == {"alice-q", "shared"}
    assert set(queues_of(bob)) == {"bob-q", "shared"}
    for queue in [*queues_of(alice).values(), *queues_of(bob).values()]:
        assert (queue["queued"], queue["started"], queue["failed"], queue["counts"]) == (None,) * 4
    everything = queues_of(root)
    assert set(everything) == {"alice-q", "bob-q", "shared"}
    assert everything["shared"]["queued"] == 2


def test_workers_show_a_tenant_only_its_queues_workers_without_host_pid_counts_or_others_jobs(
    alice: Caller,
    bob: Caller,
    root: Caller,
    worker_process: Callable[..., subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    bob.submit(queue="bob-q")
    bobs_shared = bob.submit(queue="shared")
    shared_worker = worker_process("shared")
    bobs_worker = worker_process("bob-q", "ops-internal")
    wait_for(lambda: len(workers_of(root)) == 2 and job_status(bob, bobs_shared) == "FINISHED")
    release = tmp_path / "release"
    alices = alice.submit("wait_for_file", {"path": str(release)}, queue="shared")
    try:
        # RQ marks the job started and the worker busy in separate writes: wait for both.
        wait_for(
            lambda: job_status(alice, alices) == "STARTED" and workers_of(root)[0]["currentJobId"] == alices
        )
        full = workers_of(root)
        assert [w["pid"] for w in full] == [shared_worker.pid, bobs_worker.pid]
        assert full[0]["currentJobId"] == alices
        assert full[1]["queues"] == ["bob-q", "ops-internal"]

        [seen_by_alice] = workers_of(alice)  # bob's worker serves none of alice's queues
        seen_by_bob = workers_of(bob)
        assert [w["queues"] for w in seen_by_bob] == [["shared"], ["bob-q"]]  # not ops-internal
        assert seen_by_alice["currentJobId"] == alices
        assert seen_by_bob[0]["currentJobId"] is None  # alice's job, not bob's
        assert seen_by_alice["name"] == seen_by_bob[0]["name"] == workers_of(alice)[0]["name"]
        for worker in [seen_by_alice, *seen_by_bob]:
            assert worker["name"] not in {w["name"] for w in full}
            assert worker["name"].startswith("worker-")
            assert worker["pid"] is worker["hostname"] is None
            assert worker["successfulJobCount"] is worker["failedJobCount"] is None
            assert worker["state"]
        assert full[0]["hostname"] and full[0]["successfulJobCount"] == 1
    finally:
        release.touch()


def job_status(caller: Caller, job_id: str) -> str:
    return str(caller.gql(f'{{ job(id: "{job_id}") {{ status }} }}')["data"]["job"]["status"])


# -- subscriptions --------------------------------------------------------------------------------


def ws_connect(client: TestClient, payload: dict[str, Any]) -> Any:
    return client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"])


def test_websocket_needs_a_key_in_connection_init(client: TestClient) -> None:
    with ws_connect(client, {}) as ws:
        ws.send_json({"type": "connection_init", "payload": {}})
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4403


def test_websocket_key_in_connection_init_is_accepted(client: TestClient) -> None:
    with ws_connect(client, {}) as ws:
        ws.send_json({"type": "connection_init", "payload": {"Authorization": "Bearer key-alice"}})
        assert ws.receive_json()["type"] == "connection_ack"


def test_job_updates_of_another_tenants_job_is_not_found(
    alice: Caller, bob: Caller, client: TestClient
) -> None:
    job_id = alice.submit()
    query = "subscription ($id: ID!) { jobUpdates(id: $id) { status } }"
    with ws_connect(client, {}) as ws:
        ws.send_json({"type": "connection_init", "payload": {"X-API-Key": "key-bob"}})
        ws.receive_json()
        ws.send_json(
            {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"id": job_id}}}
        )
        message = ws.receive_json()
    assert "Job not found" in json.dumps(message)


def test_job_events_carry_only_the_callers_jobs(
    alice: Caller, bob: Caller, client: TestClient, drain: Callable[..., None]
) -> None:
    query = "subscription { jobEvents { jobId status } }"
    with ws_connect(client, {}) as ws:
        ws.send_json({"type": "connection_init", "payload": {"Authorization": "Bearer key-bob"}})
        ws.receive_json()
        ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
        live = client.app.state.live  # type: ignore[attr-defined]
        from tests.conftest import wait_for

        wait_for(lambda: live.watcher_count == 1)
        alices = alice.submit()
        bobs = bob.submit()
        drain()
        received = [ws.receive_json()["payload"]["data"]["jobEvents"] for _ in range(3)]
    assert {event["jobId"] for event in received} == {bobs}
    assert alices not in json.dumps(received)
